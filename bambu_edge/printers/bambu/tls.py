"""Trust in a printer's TLS certificate (BAMBU.md section 2).

Modes, in order of preference:
- ``tls.ca_file``: verify the chain against that CA; the leaf's CN must be the printer's serial,
  checked inside the handshake, so the access code is never sent to another printer.
- a pinned certificate (stored after first use, or matching ``tls.fingerprint``): the leaf itself is
  the only trust anchor (VERIFY_X509_PARTIAL_CHAIN), so the real MQTT connection is verified, with no
  check-then-connect race. A printer presenting anything else fails the handshake.
- nothing yet: ``fetch_certificate`` reads the certificate once (trust on first use); the caller pins
  it and then connects in the pinned mode.

Printer certificates are not web certificates: the CN is the serial and we dial an IP address, so
there is no hostname check.

Pins are kept by the program that uses the link, behind ``TrustStore`` (the daemon's is
``store.pins.CertPins``, in its database).
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import ssl
from dataclasses import dataclass, replace
from typing import Protocol

SERIAL_MISMATCH = "the printer's certificate is for serial"  # marks our own handshake failure
# X509_V_FLAG_NO_CHECK_TIME (OpenSSL >= 1.1): not exported by the ssl module.
_NO_CHECK_TIME = 0x200000


class TrustedCertificate(Protocol):
    """A printer's pinned certificate as a trust store returns it."""

    @property
    def fingerprint(self) -> str: ...  # SHA-256 of the DER, lower-case hex without colons

    @property
    def pem(self) -> str: ...


class TrustStore(Protocol):
    """Where a link keeps each printer's pinned certificate, and a changed one the user has not
    accepted yet (*pending*: never trusted on its own)."""

    async def get(self, printer_id: str) -> TrustedCertificate | None: ...

    async def pin(self, printer_id: str, pem: str, fingerprint: str) -> object:
        """Trust this certificate, replacing any earlier pin and pending one."""
        ...

    async def set_pending(self, printer_id: str, pem: str, fingerprint: str) -> object:
        """Remember a certificate that differs from the pinned one, for the user to accept."""
        ...

    async def accept_pending(self, printer_id: str) -> bool:
        """Pin the pending certificate. False if there is none."""
        ...


def fingerprint_der(der: bytes) -> str:
    """SHA-256 of a DER certificate, lower-case hex without separators (the pins' form)."""
    return hashlib.sha256(der).hexdigest()


@dataclass(frozen=True)
class PeerCertificate:
    pem: str
    fingerprint: str  # SHA-256 of the DER, lower-case hex
    common_name: str | None


def _base_context() -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.check_hostname = False  # the CN is the serial and we dial an IP address
    ctx.verify_mode = ssl.CERT_REQUIRED
    # Bambu's printer CAs lack the keyUsage extension, which VERIFY_X509_STRICT (the default from
    # Python 3.13) rejects ("CA cert does not include key usage extension"); every other check stays.
    ctx.verify_flags &= ~ssl.VERIFY_X509_STRICT
    return ctx


@functools.lru_cache(maxsize=64)
def pinned_context(pem: str) -> ssl.SSLContext:
    """Trust exactly this certificate and nothing else. One context per certificate, shared by the
    MQTT link, FTPS and the camera (a context is made to be shared; making one loads the
    certificate again, at every FTPS operation)."""
    ctx = _base_context()
    ctx.load_verify_locations(cadata=pem)
    # The pinned leaf is its own trust anchor: no chain to its CA is needed or wanted.
    ctx.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    # The exact bytes are trusted, so validity dates add nothing; and a Pi has no real-time clock, on
    # a LAN-only network it may never learn the time, and must still reach its printers.
    ctx.verify_flags |= _NO_CHECK_TIME
    return ctx


def ca_context(ca_file: str, serial: str) -> ssl.SSLContext:
    """Verify the chain against ``ca_file`` and require the leaf's CN to be ``serial``."""
    ctx = _base_context()
    ctx.load_verify_locations(cafile=ca_file)
    ctx.sslsocket_class = _serial_checked_socket(serial)
    return ctx


def _serial_checked_socket(serial: str) -> type[ssl.SSLSocket]:
    # paho wraps a blocking socket and then calls do_handshake(); checking here means a printer that
    # is not this one (another printer given this IP by DHCP) fails before CONNECT carries the
    # access code.
    class SerialCheckedSocket(ssl.SSLSocket):
        def do_handshake(self, block: bool = False) -> None:
            super().do_handshake(block)
            cn = common_name(self.getpeercert())  # verified against the CA, so ssl parsed it
            if cn != serial:
                self.close()
                raise ssl.SSLCertVerificationError(f"{SERIAL_MISMATCH} {cn!r}, not {serial!r}")

    return SerialCheckedSocket


def common_name(cert: object) -> str | None:
    """The subject CN of a certificate as ``SSLSocket.getpeercert()`` gives it for a verified peer
    (ssl parses only those; an unverified peer gives {}). No X.509 parser of our own or in memory."""
    subject = cert.get("subject") if isinstance(cert, dict) else None
    for rdn in subject if isinstance(subject, tuple) else ():
        for pair in rdn if isinstance(rdn, tuple) else ():
            if isinstance(pair, tuple) and len(pair) == 2 and pair[0] == "commonName":
                return pair[1] if isinstance(pair[1], str) else None
    return None


async def _handshake(host: str, port: int, ctx: ssl.SSLContext, timeout: float) -> ssl.SSLObject | None:
    async with asyncio.timeout(timeout):
        _reader, writer = await asyncio.open_connection(host, port, ssl=ctx)
    try:
        return writer.get_extra_info("ssl_object")
    finally:
        writer.close()
        try:
            async with asyncio.timeout(1.0):
                await writer.wait_closed()
        except (OSError, TimeoutError):
            pass


async def with_common_name(host: str, port: int, peer: PeerCertificate, timeout: float) -> PeerCertificate:
    """``peer`` with its CN, read by a second handshake that trusts exactly that certificate (then
    ssl hands out the parsed subject; no x509 library in the daemon). CN None if the printer does
    not present it again."""
    try:
        ssl_object = await _handshake(host, port, pinned_context(peer.pem), timeout)
        cn = common_name(ssl_object.getpeercert()) if ssl_object else None
    except (OSError, TimeoutError, ssl.SSLError):
        cn = None
    return replace(peer, common_name=cn)


async def fetch_certificate(
    host: str, port: int, timeout: float = 5.0, *, with_name: bool = True
) -> PeerCertificate:
    """The certificate a printer presents, from a short TLS handshake. No trust is implied: the
    caller compares or pins it. Raises OSError/TimeoutError when the printer cannot be reached.
    ``with_name=False``: without the CN, which costs a second handshake (``with_common_name``)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ssl_object = await _handshake(host, port, ctx, timeout)
    der = ssl_object.getpeercert(binary_form=True) if ssl_object else None
    if not der:
        raise ssl.SSLError("the printer presented no certificate")
    pem = ssl.DER_cert_to_PEM_cert(der)
    peer = PeerCertificate(pem, fingerprint_der(der), None)
    return await with_common_name(host, port, peer, timeout) if with_name else peer


def _chain(exc: BaseException) -> list[BaseException]:
    out: list[BaseException] = []
    e: BaseException | None = exc
    while e is not None and e not in out:
        out.append(e)
        e = e.__cause__ or e.__context__
    return out


def is_serial_mismatch(exc: BaseException) -> bool:
    return any(SERIAL_MISMATCH in str(e) for e in _chain(exc))


def is_verify_failure(exc: BaseException) -> bool:
    """True when the handshake failed because the certificate was not trusted. aiomqtt re-raises
    paho's errors as MqttError(str(error)), so the OpenSSL reason in the text counts too."""
    return any(
        isinstance(e, ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY_FAILED" in str(e)
        for e in _chain(exc)
    )
