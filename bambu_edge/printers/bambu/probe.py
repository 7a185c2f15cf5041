"""The "test connection" step for a printer that is not added yet: one real attempt, bounded by a timeout.

1. TLS to the printer's MQTT port; its certificate is read and its CN must be the serial the user
   typed (a Bambu printer's certificate is issued to its serial), so a wrong IP address shows up as
   a certificate for another printer before the access code is sent anywhere.
2. MQTT CONNECT as ``bblp`` with the access code, trusting exactly the certificate just read, then
   DISCONNECT at once (the daemon stays the printer's only long-lived client).

The answer is one of ``connected``, ``auth_failed``, ``tls_mismatch``, ``unreachable`` with a
message in plain words, and the certificate's fingerprint when one was seen. Never the access code.
"""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
from dataclasses import asdict, dataclass
from typing import Any

import aiomqtt
from aiomqtt.exceptions import MqttConnectError

from bambu_edge.printers.bambu.link import AUTH_CODES, USERNAME, describe_error
from bambu_edge.printers.bambu.tls import (
    PeerCertificate,
    fetch_certificate,
    is_verify_failure,
    pinned_context,
)

CONNECTED = "connected"
AUTH_FAILED = "auth_failed"
TLS_MISMATCH = "tls_mismatch"
UNREACHABLE = "unreachable"


@dataclass(frozen=True)
class ProbeResult:
    state: str
    message: str
    fingerprint: str | None = None  # SHA-256 of the printer's certificate, hex

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _where(host: str, port: int) -> str:
    return f"{host}:{port}" if port != 8883 else host


def _unreachable_words(e: BaseException, host: str, port: int, timeout: float) -> str:
    where = _where(host, port)
    if isinstance(e, TimeoutError):
        return f"Nothing answered at {where} within {timeout:g} seconds."
    if isinstance(e, ssl.SSLError) and not isinstance(e, ssl.SSLCertVerificationError):
        return (
            f"Something answers at {where}, but not with TLS as a Bambu printer does. "
            "Check the address and the port."
        )
    if isinstance(e, socket.gaierror):
        return f"The name {host!r} could not be found on the network."
    return f"{where}: {describe_error(e)}."


def check_serial_of(peer: PeerCertificate, serial: str, host: str) -> str | None:
    """Why the certificate is not this printer's, or None if its CN is the serial."""
    cn = peer.common_name
    if cn == serial:
        return None
    if cn is None:
        return (
            f"The device at {host} presents a certificate without a serial number: it is not a Bambu printer."
        )
    if cn.lower() == serial.lower():
        return (
            f"The printer at {host} has serial {cn}; serial numbers are case-sensitive, so type it "
            "exactly like that."
        )
    return (
        f"The printer at {host} has serial {cn}, not {serial}: is this the right IP address, "
        "or the right serial number?"
    )


async def probe_printer(
    host: str, serial: str, access_code: str, *, mqtt_port: int = 8883, timeout: float = 10.0
) -> ProbeResult:
    """One connection attempt. Never raises for what the network or the printer does."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    try:
        peer = await fetch_certificate(host, mqtt_port, min(timeout, 5.0))
    except (OSError, TimeoutError) as e:
        return ProbeResult(UNREACHABLE, _unreachable_words(e, host, mqtt_port, min(timeout, 5.0)))
    wrong = check_serial_of(peer, serial, host)
    if wrong is not None:
        return ProbeResult(TLS_MISMATCH, wrong, peer.fingerprint)
    remaining = max(deadline - loop.time(), 1.0)
    try:
        async with asyncio.timeout(remaining):
            async with aiomqtt.Client(
                host,
                mqtt_port,
                username=USERNAME,
                password=access_code,
                identifier=f"bambu-edge-test-{os.urandom(3).hex()}",
                tls_context=pinned_context(peer.pem),
                keepalive=15,
                timeout=remaining,
                clean_session=True,
            ):
                pass
    except MqttConnectError as e:
        if getattr(e.rc, "value", e.rc) in AUTH_CODES:
            return ProbeResult(
                AUTH_FAILED, f"The printer {serial} at {host} refused the access code.", peer.fingerprint
            )
        return ProbeResult(UNREACHABLE, f"The printer refused the connection: {e}.", peer.fingerprint)
    except (aiomqtt.MqttError, OSError, TimeoutError) as e:
        if is_verify_failure(e):
            return ProbeResult(
                TLS_MISMATCH,
                f"The device at {host} changed its certificate during the test; try again.",
                peer.fingerprint,
            )
        if isinstance(e, TimeoutError):
            message = f"The printer at {_where(host, mqtt_port)} did not finish the MQTT login in time."
        else:
            message = _unreachable_words(e, host, mqtt_port, remaining)
        return ProbeResult(UNREACHABLE, message, peer.fingerprint)
    return ProbeResult(
        CONNECTED,
        f"The printer {serial} at {host} answered and accepted the access code.",
        peer.fingerprint,
    )
