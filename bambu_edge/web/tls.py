"""The dashboard's TLS: the configured certificate, or a self-signed one made once under
``data_dir/tls/`` and reused across restarts (so browsers keep the exception the user accepted)."""

from __future__ import annotations

import datetime as dt
import logging
import socket
import ssl
from pathlib import Path

from cryptography import x509

from bambu_edge.certs import make_server_cert
from bambu_edge.config import Config

log = logging.getLogger(__name__)

RENEW_BEFORE = dt.timedelta(days=30)


def _names(bind: str) -> list[str]:
    host = socket.gethostname() or "bambu-edge"
    names = [host, f"{host}.local", "localhost", "127.0.0.1", "::1"]
    if bind not in ("0.0.0.0", "::", ""):
        names.append(bind)
    return list(dict.fromkeys(names))


def _usable(cert: Path, key: Path) -> bool:
    try:
        parsed = x509.load_pem_x509_certificate(cert.read_bytes())
        if parsed.not_valid_after_utc - dt.datetime.now(dt.UTC) < RENEW_BEFORE:
            return False
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
    except (OSError, ValueError, ssl.SSLError):
        return False
    return True


def cert_paths(config: Config) -> tuple[Path, Path]:
    """The certificate and key to serve: configured ones, else generated (once) under data_dir/tls/."""
    web = config.web
    if web.tls_cert and web.tls_key:
        return Path(web.tls_cert), Path(web.tls_key)
    d = config.data_dir / "tls"
    cert, key = d / "server.crt", d / "server.key"
    if not _usable(cert, key):
        d.mkdir(parents=True, exist_ok=True, mode=0o700)
        names = _names(web.bind)
        make_server_cert(names[0], names).write(cert, key)
        log.info("generated a self-signed dashboard certificate in %s", d)
    return cert, key


def server_context(config: Config) -> ssl.SSLContext:
    cert, key = cert_paths(config)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.options |= ssl.OP_NO_COMPRESSION
    ctx.load_cert_chain(cert, key)
    return ctx
