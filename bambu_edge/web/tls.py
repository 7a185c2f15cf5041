"""The dashboard's TLS: the configured certificate, or a self-signed one made once under
``data_dir/tls/`` and reused across restarts (so browsers keep the exception the user accepted)."""

from __future__ import annotations

import logging
import socket
import ssl
import subprocess
import sys
from pathlib import Path

from bambu_edge import certs
from bambu_edge.config import Config

log = logging.getLogger(__name__)

MAKE_TIMEOUT_S = 120  # a Pi Zero makes an EC key in well under a second; this is a safety bound

# asyncio gives every TLS connection a read buffer of SSLProtocol.max_size (256 KiB), allocated and
# zeroed when the connection is accepted; each browser keeps a few open (the live socket, API
# requests, a camera): 2 MB of the daemon's memory with five dashboards. A TLS record is at most
# 16 KiB, so reading 64 KiB at a time loses nothing.
TLS_READ_BUFFER = 64 * 1024


def trim_tls_read_buffers() -> None:
    """For every TLS connection asyncio makes from now on, in this process."""
    from asyncio import sslproto

    if getattr(sslproto.SSLProtocol, "max_size", 0) > TLS_READ_BUFFER:
        sslproto.SSLProtocol.max_size = TLS_READ_BUFFER


def _names(bind: str) -> list[str]:
    host = socket.gethostname() or "bambu-edge"
    names = [host, f"{host}.local", "localhost", "127.0.0.1", "::1"]
    if bind not in ("0.0.0.0", "::", ""):
        names.append(bind)
    return list(dict.fromkeys(names))


def _ensure(directory: Path, names: list[str]) -> bool:
    """certs.ensure_dashboard_cert, in a child process unless cryptography is loaded already
    (tests, the demo): the daemon should not carry it in memory for a once-a-decade job."""
    if "cryptography" in sys.modules:
        return certs.ensure_dashboard_cert(directory, names)
    done = subprocess.run(
        [sys.executable, "-m", "bambu_edge.certs", "dashboard", str(directory), *names],
        capture_output=True,
        text=True,
        timeout=MAKE_TIMEOUT_S,
        check=False,
    )
    if done.returncode != 0:
        raise OSError(f"could not make the dashboard certificate: {done.stderr.strip()[-500:]}")
    return done.stdout.strip() == "made"


def cert_paths(config: Config) -> tuple[Path, Path]:
    """The certificate and key to serve: configured ones, else generated (once) under data_dir/tls/."""
    web = config.web
    if web.tls_cert and web.tls_key:
        return Path(web.tls_cert), Path(web.tls_key)
    d = config.data_dir / "tls"
    if not certs.dashboard_cert_ok(d):
        d.mkdir(parents=True, exist_ok=True, mode=0o700)
        if _ensure(d, _names(web.bind)):
            log.info("generated a self-signed dashboard certificate in %s", d)
    return d / certs.DASHBOARD_CERT, d / certs.DASHBOARD_KEY


def server_context(config: Config) -> ssl.SSLContext:
    cert, key = cert_paths(config)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.options |= ssl.OP_NO_COMPRESSION
    ctx.load_cert_chain(cert, key)
    return ctx
