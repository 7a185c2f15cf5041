"""X.509 helpers: generated certificates (dashboard HTTPS, demo broker) and fingerprints.

Certificates are v3 with keyUsage/basicConstraints/SKI/AKI so they pass Python >= 3.13's
VERIFY_X509_STRICT (see shared/TESTBED.md G3). EC P-256 keys: fast to make on a Pi Zero.

``cryptography`` is imported only by the functions that make certificates: it costs the daemon
about 10 MB of RSS, and the daemon itself only needs fingerprints (hashlib + ssl). The dashboard
certificate is made in a child process (``python -m bambu_edge.certs``, see web/tls.py).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import json
import os
import ssl
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import ec


@dataclass(frozen=True)
class KeyPair:
    cert_pem: bytes
    key_pem: bytes

    def write(self, cert_path: Path, key_path: Path) -> None:
        cert_path.parent.mkdir(parents=True, exist_ok=True)
        cert_path.write_bytes(self.cert_pem)
        # Key files are private to the service user.
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(self.key_pem)


def _name(cn: str) -> x509.Name:
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _sans(names: list[str]) -> list[x509.GeneralName]:
    from cryptography import x509

    out: list[x509.GeneralName] = []
    for n in names:
        try:
            out.append(x509.IPAddress(ipaddress.ip_address(n)))
        except ValueError:
            out.append(x509.DNSName(n))
    return out


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def make_ca(cn: str, days: int = 3650) -> KeyPair:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(_name(cn))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return KeyPair(cert.public_bytes(serialization.Encoding.PEM), _pem_key(key))


def make_server_cert(cn: str, names: list[str], issuer: KeyPair | None = None, days: int = 3650) -> KeyPair:
    """A TLS server certificate for ``names`` (DNS names or IPs), signed by ``issuer`` or self-signed."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID

    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    if issuer is not None:
        ca_cert = x509.load_pem_x509_certificate(issuer.cert_pem)
        ca_key = serialization.load_pem_private_key(issuer.key_pem, password=None)
        issuer_name, signer = ca_cert.subject, ca_key
        aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key())  # type: ignore[arg-type]
    else:
        issuer_name, signer = _name(cn), key
        aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key())
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=True,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(aki, critical=False)
    )
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(_sans(names)), critical=False)
    cert = builder.sign(signer, hashes.SHA256())  # type: ignore[arg-type]
    return KeyPair(cert.public_bytes(serialization.Encoding.PEM), _pem_key(key))


def fingerprint_der(der: bytes) -> str:
    """SHA-256 of a DER certificate, lower-case hex without separators."""
    return hashlib.sha256(der).hexdigest()


def fingerprint_pem(pem: bytes | str) -> str:
    text = pem.decode() if isinstance(pem, bytes) else pem
    return fingerprint_der(ssl.PEM_cert_to_DER_cert(text))


# --- the dashboard's self-signed certificate ---------------------------------------------------------

DASHBOARD_CERT, DASHBOARD_KEY, DASHBOARD_META = "server.crt", "server.key", "server.json"
RENEW_BEFORE_S = 30 * 86400


def dashboard_cert_ok(directory: Path, now: float | None = None) -> bool:
    """The generated dashboard certificate is there, matches its key and has a month to go. Reads
    the expiry recorded when it was made (server.json), so no X.509 parser is needed."""
    cert, key, meta = (directory / n for n in (DASHBOARD_CERT, DASHBOARD_KEY, DASHBOARD_META))
    try:
        info = json.loads(meta.read_text(encoding="utf-8"))
        if info.get("fingerprint") != fingerprint_pem(cert.read_bytes()):
            return False  # replaced by hand since: check it properly
        if float(info["not_after"]) - (time.time() if now is None else now) < RENEW_BEFORE_S:
            return False
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(cert, key)
    except (OSError, ValueError, KeyError, TypeError, ssl.SSLError):
        return False
    return True


def ensure_dashboard_cert(directory: Path, names: list[str]) -> bool:
    """Keep a usable certificate (the one the user's browser already accepted), or make a new one.
    Records its expiry in server.json. Returns True if a new one was made."""
    from cryptography import x509

    cert, key, meta = (directory / n for n in (DASHBOARD_CERT, DASHBOARD_KEY, DASHBOARD_META))
    made = False
    try:
        parsed = x509.load_pem_x509_certificate(cert.read_bytes())
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(cert, key)
        not_after = parsed.not_valid_after_utc.timestamp()
        usable = not_after - time.time() >= RENEW_BEFORE_S
    except (OSError, ValueError, ssl.SSLError):
        usable = False
    if not usable:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        make_server_cert(names[0], names).write(cert, key)
        not_after = x509.load_pem_x509_certificate(cert.read_bytes()).not_valid_after_utc.timestamp()
        made = True
    info = {"fingerprint": fingerprint_pem(cert.read_bytes()), "not_after": not_after}
    meta.write_text(json.dumps(info) + "\n", encoding="utf-8")
    return made


def main(argv: list[str]) -> int:
    """``python -m bambu_edge.certs dashboard DIR NAME...``: ensure_dashboard_cert in a child
    process, so the daemon never loads cryptography. Prints "made" or "kept"."""
    if len(argv) < 3 or argv[0] != "dashboard":
        print("usage: python -m bambu_edge.certs dashboard DIR NAME...", file=sys.stderr)
        return 2
    made = ensure_dashboard_cert(Path(argv[1]), argv[2:])
    print("made" if made else "kept")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
