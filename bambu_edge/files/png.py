"""Is this really a PNG, and how big is it? Checked from the bytes, never from a file name.

The signature and the IHDR chunk (PNG spec, section 5.2 and 11.2.2): 8 signature bytes, then a chunk
of length 13 and type ``IHDR`` carrying width and height as big-endian 32-bit integers.
"""

from __future__ import annotations

import struct

SIGNATURE = b"\x89PNG\r\n\x1a\n"
MAX_SIDE = 8192  # slicer thumbnails are 128..512 px; a bigger "thumbnail" is not one


def png_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) if ``data`` starts like a PNG with a sane IHDR, else None."""
    if len(data) < 33 or not data.startswith(SIGNATURE):
        return None
    length, kind = struct.unpack(">I4s", data[8:16])
    if length != 13 or kind != b"IHDR":
        return None
    width, height = struct.unpack(">II", data[16:24])
    if not (0 < width <= MAX_SIDE and 0 < height <= MAX_SIDE):
        return None
    return width, height
