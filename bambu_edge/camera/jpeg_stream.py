"""Concatenated JPEG frames (ffmpeg's ``-f mjpeg`` output) back into frames. Pure.

Inside a JPEG's entropy-coded data every 0xFF is followed by 0x00 or a restart marker, so an end of
image (FFD9) directly followed by a start of image (FFD8) can only be a boundary between frames.
"""

from __future__ import annotations

SOI = b"\xff\xd8"
EOI = b"\xff\xd9"
MAX_FRAME_BYTES = 8 * 1024 * 1024


class JpegStreamError(Exception):
    pass


class JpegSplitter:
    def __init__(self, max_frame: int = MAX_FRAME_BYTES):
        self.max_frame = max_frame
        self._buf = bytearray()

    def feed(self, data: bytes | memoryview) -> list[bytes]:
        self._buf += data
        frames: list[bytes] = []
        while True:
            if self._buf and not self._buf.startswith(SOI[: len(self._buf)]):
                start = self._buf.find(SOI)
                if start < 0:  # garbage; keep a last 0xFF that may begin the next frame
                    del self._buf[: -1 if self._buf.endswith(b"\xff") else len(self._buf)]
                    break
                del self._buf[:start]
            cut = self._buf.find(EOI + SOI)
            if cut < 0:
                break
            frames.append(bytes(self._buf[: cut + 2]))
            del self._buf[: cut + 2]
        if len(self._buf) > self.max_frame:
            raise JpegStreamError(f"a JPEG frame over {self.max_frame} bytes")
        return frames

    def flush(self) -> bytes | None:
        """The last frame, at the end of the stream (no next frame marks where it ends)."""
        buf, self._buf = bytes(self._buf), bytearray()
        return buf if buf.startswith(SOI) and buf.endswith(EOI) else None


def last_jpeg(data: bytes) -> bytes | None:
    """The last complete frame of a finished stream."""
    splitter = JpegSplitter(max_frame=len(data) + 1)
    frames = splitter.feed(data)
    tail = splitter.flush()
    return tail or (frames[-1] if frames else None)
