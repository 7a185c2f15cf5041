"""Trust in a printer's TLS certificate (BAMBU.md section 2), shared by MQTT and FTPS.

Modes, in order of preference:
- ``tls.ca_file``: verify the chain against that CA, then check the leaf's CN is the serial.
- a pinned certificate (stored after first use, or matching ``tls.fingerprint``): the leaf itself is
  the only trust anchor (VERIFY_X509_PARTIAL_CHAIN), so the real connection is verified, with no
  check-then-connect race. A printer presenting anything else fails the handshake.
- nothing yet: fetch the certificate once (trust on first use), pin it, then use the pinned mode.

Printer certificates are not web certificates: the CN is the serial (we connect by IP, so no hostname
check) and Bambu's CAs lack keyUsage, which Python >= 3.13's VERIFY_X509_STRICT rejects; strict mode
is cleared on purpose, everything else stays verified.
"""

from __future__ import annotations

import asyncio
import ssl

from bambu_edge.certs import fingerprint_der


class TlsMismatch(Exception):
    def __init__(self, offered_pem: str, offered_fingerprint: str, message: str):
        super().__init__(message)
        self.offered_pem = offered_pem
        self.offered_fingerprint = offered_fingerprint


def _base_context() -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.check_hostname = False  # CN is the serial, we dial an IP address
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.verify_flags &= ~getattr(ssl, "VERIFY_X509_STRICT", 0)
    return ctx


def pinned_context(pem: str) -> ssl.SSLContext:
    ctx = _base_context()
    ctx.load_verify_locations(cadata=pem)
    ctx.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    return ctx


def ca_context(ca_file: str) -> ssl.SSLContext:
    ctx = _base_context()
    ctx.load_verify_locations(cafile=ca_file)
    return ctx


def leaf_common_name(ssl_object: ssl.SSLObject | ssl.SSLSocket) -> str | None:
    cert = ssl_object.getpeercert()
    for rdn in (cert or {}).get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return value
    return None


async def fetch_certificate(host: str, port: int, limit_s: float = 10.0) -> tuple[str, str]:
    """The certificate a printer presents: (PEM, SHA-256 hex). No trust is implied."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    _reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port, ssl=ctx), limit_s)
    try:
        ssl_obj = writer.get_extra_info("ssl_object")
        der = ssl_obj.getpeercert(binary_form=True)
        if not der:
            raise ssl.SSLError("the printer presented no certificate")
        return ssl.DER_cert_to_PEM_cert(der), fingerprint_der(der)
    finally:
        writer.close()
        try:
            await asyncio.wait_for(writer.wait_closed(), 2)
        except (OSError, TimeoutError, ssl.SSLError):
            pass


def is_verify_failure(exc: BaseException) -> bool:
    seen: set[int] = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY_FAILED" in str(e):
            return True
        e = e.__cause__ or e.__context__
    return False
