"""CurveZMQ for the ZeroMQ sockets: the key files, and who may connect.

A server (the collatz broker, the push worker's PUB socket) admits only the
client keys in a folder of its own, asked through pyzmq's ZAP handler
(:class:`Admitted`); ``python -m api zmq-keys DIR`` makes the files
(:func:`make_keys`), :data:`FILES` says who reads which, and :func:`server_keys`
refuses a server bound beyond loopback without keys under ``ZMQ_AUTH=on``.
"""

import logging
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Dict
from typing import List
from typing import NamedTuple
from typing import Optional
from urllib.parse import urlsplit

import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator

from core.addresses import is_loopback
from core.settings import Settings

log = logging.getLogger("gateways.curve")

BROKER = "collatz-broker"
PUB = "push-pub"


class Client(NamedTuple):
    """A client's key file name, the server it talks to, the folder that admits it."""

    name: str
    server: str
    admitted_by: str


API = Client("api", BROKER, "collatz-clients")
WORKER = Client("collatz-worker", BROKER, "collatz-workers")
SUBSCRIBER = Client("subscriber", PUB, "push-subscribers")
CLIENTS = (API, WORKER, SUBSCRIBER)

#: What each process reads in ``ZMQ_KEYS_DIR`` (docs/operations/security.md).
FILES = {
    "collatz broker": [
        f"{BROKER}.key_secret",
        f"{API.admitted_by}/",
        f"{WORKER.admitted_by}/",
    ],
    "collatz worker": [f"{WORKER.name}.key_secret", f"{BROKER}.key"],
    "API": [f"{API.name}.key_secret", f"{BROKER}.key"],
    "push worker": [f"{PUB}.key_secret", f"{SUBSCRIBER.admitted_by}/"],
    "SUB client": [f"{SUBSCRIBER.name}.key_secret", f"{PUB}.key"],
}

#: A refused key is logged once per this many seconds (clients retry often).
DENIAL_LOG_INTERVAL = 60.0


class CurveError(ValueError):
    """CURVE cannot be set up as configured; the message says what to do."""


class ClientKeys(NamedTuple):
    """A client's key pair and its server's public key (z85 bytes)."""

    public: bytes
    secret: bytes
    server: bytes

    def apply(self, sock: zmq.Socket) -> None:
        """Make ``sock`` a CURVE client (before it connects)."""
        sock.curve_secretkey = self.secret
        sock.curve_publickey = self.public
        sock.curve_serverkey = self.server


class ServerKeys(NamedTuple):
    """A server's key pair and the folder its admitted clients' keys are in."""

    public: bytes
    secret: bytes
    folder: Path


def endpoint_is_local(endpoint: str) -> bool:
    """Whether a ZeroMQ endpoint stays on this machine.

    ``inproc://`` and ``ipc://`` do; ``tcp://`` does when its host is a
    loopback address or name (``*``, ``0.0.0.0`` and interface names do
    not); every other transport counts as beyond loopback.
    """
    transport, _, rest = endpoint.partition("://")
    if transport in ("inproc", "ipc"):
        return True
    if transport != "tcp":
        return False
    # A connect endpoint may name a source first: tcp://source;host:port.
    try:
        host = urlsplit("//" + rest.rpartition(";")[2]).hostname or ""
    except ValueError:  # an unbalanced [ or ]
        return False
    return is_loopback(host)


def enabled(settings: Settings) -> bool:
    """Whether the ZeroMQ sockets use CURVE (``ZMQ_AUTH`` and ``ZMQ_KEYS_DIR``)."""
    if settings.zmq_auth not in ("on", "off"):
        raise CurveError(f"ZMQ_AUTH must be on or off, got {settings.zmq_auth!r}")
    return settings.zmq_auth == "on" and bool(settings.zmq_keys_dir)


def server_keys(
    settings: Settings, server: str, endpoints: Dict[str, str]
) -> Optional[ServerKeys]:
    """The keys of ``server`` (:data:`BROKER`, :data:`PUB`), or None without CURVE.

    Args:
        settings: ``ZMQ_AUTH`` and ``ZMQ_KEYS_DIR`` are read.
        server: The server's key file name.
        endpoints: The setting names and endpoints the server binds.

    Raises:
        CurveError: a bound endpoint is beyond loopback while CURVE is off
            and ``ZMQ_AUTH`` is not ``off``; or a key file is missing.
    """
    if not enabled(settings):
        beyond = [
            f"{name}={endpoint}"
            for name, endpoint in endpoints.items()
            if not endpoint_is_local(endpoint)
        ]
        if beyond and settings.zmq_auth == "on":
            raise CurveError(
                f"{', '.join(beyond)} is beyond loopback and ZMQ_KEYS_DIR is "
                "empty: anyone who reaches it could connect. Make keys with "
                "'python -m api zmq-keys DIR' and set ZMQ_KEYS_DIR=DIR, or set "
                "ZMQ_AUTH=off on a trusted network"
            )
        return None
    folder = Path(settings.zmq_keys_dir)
    public, secret = _load(folder / f"{server}.key_secret", secret=True)
    return ServerKeys(public, secret, folder)


def client_keys(settings: Settings, client: Client) -> Optional[ClientKeys]:
    """The keys ``client`` (:data:`API`, :data:`WORKER`, ...) connects with, or None.

    Raises:
        CurveError: CURVE is on and a key file is missing or unreadable.
    """
    if not enabled(settings):
        return None
    folder = Path(settings.zmq_keys_dir)
    public, secret = _load(folder / f"{client.name}.key_secret", secret=True)
    server, _ = _load(folder / f"{client.server}.key", secret=False)
    return ClientKeys(public, secret, server)


def _load(path: Path, secret: bool):
    try:
        public, secret_key = zmq.auth.load_certificate(path)
    except (OSError, ValueError) as ex:
        raise CurveError(
            f"cannot read the CURVE key {path} (ZMQ_KEYS_DIR): {ex}; "
            "'python -m api zmq-keys DIR' makes the missing keys"
        ) from None
    if secret:
        if secret_key is None:
            raise CurveError(f"{path} holds no secret key")
        if path.stat().st_mode & 0o077:
            log.warning("%s is readable by other users: chmod 600 it", path)
    return public, secret_key


class Admitted:
    """The public keys a server admits: the ``*.key`` files of one folder.

    pyzmq's ZAP handler calls :meth:`callback` for each CURVE handshake.
    The folder is read once, at start: a server restart applies changes.
    """

    def __init__(self, folder: Path):
        self.folder = folder
        try:
            self.keys = zmq.auth.load_certificates(folder)
        except (OSError, ValueError) as ex:
            raise CurveError(
                f"cannot read the admitted CURVE keys in {folder}: {ex}"
            ) from None
        if not self.keys:
            log.warning("no public key in %s: no client can connect", folder)
        self._logged: Dict[bytes, float] = {}

    def callback(self, domain: str, key: bytes) -> bool:
        if key in self.keys:
            return True
        now = time.monotonic()
        if now - self._logged.get(key, -DENIAL_LOG_INTERVAL) >= DENIAL_LOG_INTERVAL:
            if len(self._logged) > 10_000:
                self._logged.clear()
            self._logged[key] = now
            log.warning(
                "refused a ZeroMQ client on %s: its CURVE key %s is not in %s",
                domain,
                key.decode("ascii", "replace"),
                self.folder,
            )
        return False


class Gate:
    """The ZAP handler of one context, for the server sockets it guards.

    Start it before binding: without a ZAP handler libzmq lets every CURVE
    client in.
    """

    def __init__(self, context: zmq.Context, keys: ServerKeys):
        self.keys = keys
        self._authenticator = ThreadAuthenticator(context, log=log)
        self._authenticator.start()

    def guard(self, sock: zmq.Socket, admitted_by: str) -> None:
        """Make ``sock`` a CURVE server admitting the keys in ``admitted_by``."""
        admitted = Admitted(self.keys.folder / admitted_by)
        self._authenticator.configure_curve_callback(admitted_by, admitted)
        sock.zap_domain = admitted_by.encode("ascii")
        sock.curve_server = True
        sock.curve_secretkey = self.keys.secret
        sock.curve_publickey = self.keys.public

    def stop(self) -> None:
        """End the ZAP handler (after the guarded sockets are closed)."""
        self._authenticator.stop()


def make_keys(folder: Path) -> List[Path]:
    """Make the key pairs missing in ``folder``; the files made.

    A pair is made when its secret file is missing; existing pairs are kept,
    so running it again changes nothing. A client's public key goes into
    the folder of the server that admits it. Secret files have mode 0600
    from the start (they are written in a private temporary folder first).
    """
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    made = []
    pairs = [(server, None) for server in (BROKER, PUB)]
    pairs += [(client.name, client.admitted_by) for client in CLIENTS]
    for name, admitted_by in pairs:
        secret = folder / f"{name}.key_secret"
        if secret.exists():
            continue
        public_dir = folder if admitted_by is None else folder / admitted_by
        public_dir.mkdir(exist_ok=True)
        public = public_dir / f"{name}.key"
        scratch = tempfile.mkdtemp(dir=folder)
        try:
            made_public, made_secret = zmq.auth.create_certificates(scratch, name)
            os.chmod(made_secret, 0o600)
            os.chmod(made_public, 0o644)
            os.replace(made_public, public)
            os.replace(made_secret, secret)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        made += [secret, public]
    for client in CLIENTS:  # admits nobody until a key is put there
        (folder / client.admitted_by).mkdir(exist_ok=True)
    return made
