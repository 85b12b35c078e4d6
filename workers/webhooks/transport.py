"""An HTTP session that connects only to the addresses :mod:`core.targets` allows.

The host is resolved once per connection and the socket goes to a checked
address, so DNS rebinding finds no second lookup to slip through; TLS still
verifies the certificate against the host name.
Design: docs/design/security.md#outbound-targets-no-ssrf
"""

import socket
from socket import timeout as SocketTimeout  # noqa: N812 - urllib3's own name
from typing import Callable

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection
from urllib3.connection import HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool
from urllib3.connectionpool import HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError
from urllib3.exceptions import NewConnectionError
from urllib3.util import connection

from core.targets import Targets

Resolver = Callable[..., list]


class RefusedAddress(NewConnectionError):
    """Every address the host resolves to is refused by the target rule."""

    def __init__(self, conn, detail: str):
        super().__init__(conn, detail)
        self.detail = detail


def guarded_session(
    targets: Targets, resolve: Resolver = socket.getaddrinfo
) -> requests.Session:
    """A ``requests.Session`` whose connections go only where ``targets`` allows.

    ``resolve`` is ``socket.getaddrinfo`` (tests pass their own). Proxies from
    the environment are ignored: the checked address must be the one dialled.
    """
    session = requests.Session()
    session.trust_env = False
    adapter = _GuardedAdapter(targets, resolve)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


class _GuardedAdapter(HTTPAdapter):
    def __init__(self, targets: Targets, resolve: Resolver):
        self._targets = targets
        self._resolve = resolve
        super().__init__()

    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        guard = {"_targets": self._targets, "_resolve": staticmethod(self._resolve)}
        http = type("GuardedHTTPConnection", (_Guarded, HTTPConnection), guard)
        https = type("GuardedHTTPSConnection", (_Guarded, HTTPSConnection), guard)
        self.poolmanager.pool_classes_by_scheme = {
            "http": type("GuardedPool", (HTTPConnectionPool,), {"ConnectionCls": http}),
            "https": type(
                "GuardedHTTPSPool", (HTTPSConnectionPool,), {"ConnectionCls": https}
            ),
        }


class _Guarded:
    """Mixin of urllib3 connections: resolve, check, connect to a checked address."""

    _targets: Targets
    _resolve: Resolver

    def _new_conn(self) -> socket.socket:
        host = self._dns_host
        try:
            found = self._resolve(host, self.port, 0, socket.SOCK_STREAM)
        except socket.gaierror as ex:
            raise NewConnectionError(self, f"cannot resolve {host}: {ex}") from ex
        addresses = [info[4][0] for info in found]
        allowed = [a for a in addresses if self._targets.address_allowed(host, a)]
        if not allowed:
            raise RefusedAddress(
                self,
                f"refused: {host} resolves to {', '.join(dict.fromkeys(addresses))}, "
                "a loopback, private or reserved address (ALLOWED_PRIVATE_TARGETS)",
            )
        error = None
        for address in dict.fromkeys(allowed):
            try:
                return connection.create_connection(
                    (address, self.port),
                    self.timeout,
                    source_address=self.source_address,
                    socket_options=self.socket_options,
                )
            except SocketTimeout as ex:
                raise ConnectTimeoutError(
                    self, f"Connection to {host} timed out ({self.timeout})"
                ) from ex
            except OSError as ex:
                error = ex
        raise NewConnectionError(
            self, f"Failed to establish a new connection: {error}"
        ) from error
