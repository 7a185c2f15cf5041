"""Server-to-client WebSocket frames built by hand, for messages written straight to a transport.

A message sent to many sockets (a printer event to every dashboard, a video fragment to every
viewer) is framed once and the same bytes are written to each: no per-client framing, no
per-client task. RFC 6455 5.2: final, unmasked (server to client), uncompressed frames.
"""

from __future__ import annotations

import struct

OP_TEXT = 0x1
OP_BINARY = 0x2
_FIN = 0x80


def frame_header(size: int, opcode: int) -> bytes:
    first = _FIN | opcode
    if size < 126:
        return bytes((first, size))
    if size < 1 << 16:
        return struct.pack("!BBH", first, 126, size)
    return struct.pack("!BBQ", first, 127, size)


def text_frame(payload: bytes) -> bytes:
    """``payload`` is UTF-8 (orjson's output)."""
    return frame_header(len(payload), OP_TEXT) + payload


def binary_frame(payload: bytes) -> bytes:
    return frame_header(len(payload), OP_BINARY) + payload
