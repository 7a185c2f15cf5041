"""The printers' cameras (protocol/BAMBU.md section 8).

Two sources, chosen by model (``models.capabilities(model).camera``):

- RTSPS on port 322 (X1, X1C, X1E, P2S, H2*): ``rtsps://bblp:<access code>@<ip>:322/streaming/live/1``,
  H.264 over RTSP inside TLS with the printer's certificate. H2 printers report
  ``ipcam.rtsp_url == "disable"`` until "LAN Only Liveview" is switched on at the touchscreen.
- TLS JPEG frames on port 6000 (P1P, P1S, A1, A1 mini): an 80-byte auth packet, then each frame is a
  16-byte header (``u32 LE`` payload size, three more u32) and that many bytes of JPEG.

Both connections are verified with the printer's own trust (the SSLContext its MQTT link uses:
the pinned leaf, or its CA + the serial, checked here after the handshake since asyncio's TLS does
not run ``ca_context``'s socket hook).
"""

from __future__ import annotations

import asyncio
import ssl
import struct
from collections.abc import AsyncIterator, Mapping
from typing import Any

from bambu_edge.printers.bambu import models
from bambu_edge.printers.bambu.tls import SERIAL_MISMATCH, common_name

RTSPS_PORT = 322
JPEG_PORT = 6000
RTSP_PATH = "/streaming/live/1"
USERNAME = "bblp"

AUTH_PAYLOAD_SIZE = 0x40
AUTH_TYPE = 0x3000
FRAME_HEADER = struct.Struct("<IIII")  # payload size, itrack, flags, reserved
# A 1280x720 JPEG is ~100-300 kB; anything far above is a broken or hostile stream, not a frame.
MAX_FRAME_BYTES = 4 * 1024 * 1024
JPEG_SOI = b"\xff\xd8"
JPEG_EOI = b"\xff\xd9"

# ipcam.rtsp_url on H2 printers with the LAN live view switched off (section 8).
RTSP_URL_DISABLED = "disable"
LIVE_VIEW_DISABLED_MESSAGE = (
    "The printer's LAN live view is switched off. Turn on \"LAN Only Liveview\" on the printer's "
    "touchscreen, then open the camera again."
)


class CameraProtocolError(Exception):
    """The camera sent something that is not its protocol (a frame too large, not a JPEG)."""


def source_for_model(model: str | None) -> str:
    """``"rtsps"`` or ``"jpeg6000"``: the camera a printer of this model has (``camera: auto``)."""
    return models.capabilities(model).camera


def default_port(kind: str) -> int:
    return JPEG_PORT if kind == models.CAMERA_JPEG6000 else RTSPS_PORT


def live_view_disabled(report: Mapping[str, Any]) -> bool:
    """True when a printer's ``print`` report says its LAN live view is off (``ipcam.rtsp_url``)."""
    ipcam = report.get("ipcam")
    return isinstance(ipcam, Mapping) and ipcam.get("rtsp_url") == RTSP_URL_DISABLED


def auth_packet(access_code: str, username: str = USERNAME) -> bytes:
    """The 80-byte login of the port-6000 stream: four u32 LE, then user and code NUL-padded to 32."""
    user = username.encode("ascii")
    code = access_code.encode("ascii")
    if len(user) > 32 or len(code) > 32:
        raise ValueError("user name and access code must fit in 32 bytes each")
    return (
        struct.pack("<IIII", AUTH_PAYLOAD_SIZE, AUTH_TYPE, 0, 0)
        + user.ljust(32, b"\0")
        + code.ljust(32, b"\0")
    )


def frame_size(header: bytes, limit: int = MAX_FRAME_BYTES) -> int:
    """The payload size a 16-byte frame header announces; CameraProtocolError if it cannot be a frame."""
    if len(header) != FRAME_HEADER.size:
        raise CameraProtocolError(f"a frame header is {FRAME_HEADER.size} bytes, got {len(header)}")
    size = FRAME_HEADER.unpack(header)[0]
    if size == 0 or size > limit:
        raise CameraProtocolError(f"the camera announced a frame of {size} bytes (limit {limit})")
    return size


def check_jpeg(frame: bytes) -> bytes:
    if not (frame.startswith(JPEG_SOI) and frame.endswith(JPEG_EOI)):
        raise CameraProtocolError("the camera sent a frame that is not a JPEG image")
    return frame


def check_serial(ssl_object: ssl.SSLObject | None, serial: str) -> None:
    """After a handshake verified against the printer's CA: the leaf must be issued to ``serial``,
    before the access code is sent."""
    cn = common_name(ssl_object.getpeercert()) if ssl_object is not None else None
    if cn != serial:
        raise ssl.SSLCertVerificationError(f"{SERIAL_MISMATCH} {cn!r}, not {serial!r}")


async def open_tls(
    host: str,
    port: int,
    context: ssl.SSLContext,
    *,
    serial: str | None = None,
    timeout: float = 10.0,
    limit: int = 2**16,
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A verified TLS connection to one of the printer's ports. ``serial``: also require the leaf's
    CN to be it (the CA mode; a pinned leaf needs no name check)."""
    async with asyncio.timeout(timeout):
        reader, writer = await asyncio.open_connection(host, port, ssl=context, limit=limit)
    if serial is not None:
        try:
            check_serial(writer.get_extra_info("ssl_object"), serial)
        except ssl.SSLError:
            writer.close()
            raise
    return reader, writer


async def jpeg_frames(
    host: str,
    access_code: str,
    context: ssl.SSLContext,
    *,
    port: int = JPEG_PORT,
    serial: str | None = None,
    connect_timeout: float = 10.0,
    frame_timeout: float = 15.0,
    max_frame: int = MAX_FRAME_BYTES,
) -> AsyncIterator[bytes]:
    """The JPEG frames of a port-6000 camera, as they arrive, until the camera closes (EOFError) or
    goes silent for ``frame_timeout`` (TimeoutError). The printer never answers the login: a wrong
    access code shows as no frames, then a close."""
    reader, writer = await open_tls(host, port, context, serial=serial, timeout=connect_timeout)
    try:
        writer.write(auth_packet(access_code))
        await writer.drain()
        while True:
            async with asyncio.timeout(frame_timeout):
                try:
                    header = await reader.readexactly(FRAME_HEADER.size)
                    payload = await reader.readexactly(frame_size(header, max_frame))
                except asyncio.IncompleteReadError as e:
                    raise EOFError("the camera closed the connection") from e
            yield check_jpeg(payload)
    finally:
        writer.close()
        try:
            async with asyncio.timeout(1.0):
                await writer.wait_closed()
        except (OSError, TimeoutError, ssl.SSLError):
            pass
