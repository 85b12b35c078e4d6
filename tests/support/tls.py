"""Throwaway certificates for TLS tests, made by the ``openssl`` command.

:func:`make_certificates` writes, into a folder of the test's: a CA, a
server certificate it signed for ``127.0.0.1`` and ``localhost`` (with its
key), and a second CA that signed nothing (the wrong one to trust).
"""

import dataclasses
import shutil
import subprocess
from pathlib import Path
from typing import Optional

#: A P-256 key: quick to make, and what RethinkDB's default ciphers expect.
_NEW_KEY = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"


@dataclasses.dataclass(frozen=True)
class Certificates:
    """The files :func:`make_certificates` made."""

    ca: Path
    server_cert: Path
    server_key: Path
    other_ca: Path


def openssl() -> Optional[str]:
    """The ``openssl`` command, or None where it is not installed."""
    return shutil.which("openssl")


def make_certificates(folder: Path) -> Certificates:
    """A CA, a server certificate and key it signed, and another CA, in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("ca", "other-ca"):
        _openssl(
            folder,
            f"req -x509 {_NEW_KEY} -days 2 -keyout {name}.key -out {name}.pem",
            "-subj",
            f"/CN=test {name}",
        )
    _openssl(
        folder,
        f"req {_NEW_KEY} -keyout server.key -out server.csr",
        "-subj",
        "/CN=127.0.0.1",
    )
    (folder / "server.ext").write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n"
    )
    _openssl(
        folder,
        "x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 "
        "-extfile server.ext -out server.pem",
    )
    return Certificates(
        ca=folder / "ca.pem",
        server_cert=folder / "server.pem",
        server_key=folder / "server.key",
        other_ca=folder / "other-ca.pem",
    )


def _openssl(folder: Path, words: str, *args: str) -> None:
    """``openssl`` with the space-separated ``words``, then ``args`` as they are."""
    subprocess.run(
        [openssl() or "openssl", *words.split(), *args],
        cwd=folder,
        check=True,
        capture_output=True,
        timeout=60,
    )
