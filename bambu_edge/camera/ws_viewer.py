"""A WebSocket viewer fed in the upstream's own callback, with no task of its own per message.

Each fragment (or JPEG) is framed as one binary WebSocket message and handed to the viewer's
transport when the upstream delivers it: one ``write`` per viewer and fragment, no queue, no task
woken. Measured with 5 viewers of a 720p30 camera (bench/camera_cpu.py), the queue-and-task path
and aiohttp's writer cost the daemon more CPU than the copy itself.

The transport's write buffer is the viewer's bounded buffer (ViewerQueue's rule): while a chunk
would take it past ``max_bytes`` the viewer skips chunks and resumes at the next keyframe, so a
slow viewer never stalls the others and never grows the daemon's memory.
"""

from __future__ import annotations

import asyncio

from bambu_edge.camera.viewers import DEFAULT_MAX_BYTES
from bambu_edge.web.ws_frames import binary_frame

# The last chunk and its frame: every viewer of a camera is handed the same chunk object, so it is
# framed (and copied) once, not once per viewer.
_memo: list[bytes] = [b"", binary_frame(b"")]


def _framed(chunk: bytes) -> bytes:
    if _memo[0] is not chunk:
        _memo[0], _memo[1] = chunk, binary_frame(chunk)
    return _memo[1]


class WsViewer:
    """``closed`` resolves with the reason once nothing more will be sent (the camera stopped or
    restarted, or the viewer left)."""

    def __init__(
        self,
        transport: asyncio.BaseTransport,
        head: list[bytes] | None = None,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ):
        assert isinstance(transport, asyncio.WriteTransport)
        self.transport = transport
        self.max_bytes = max_bytes
        self.skipped = 0
        self.closed: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._waiting_key = True  # a joiner starts at a keyframe
        for chunk in head or ():
            self._send(chunk)

    @property
    def buffered(self) -> int:
        return self.transport.get_write_buffer_size()

    def put(self, chunk: bytes, keyframe: bool) -> None:
        if self.closed.done():
            return
        if self.transport.is_closing():
            self.close("viewer left")
            return
        if (self._waiting_key and not keyframe) or self.buffered + len(chunk) > self.max_bytes:
            self._waiting_key = True
            self.skipped += 1
            return
        self._waiting_key = False
        self._send(chunk)

    def put_head(self, chunk: bytes) -> None:
        """The init segment, arrived after the viewer joined: before any fragment, so at once."""
        if not self.closed.done() and not self.transport.is_closing():
            self._send(chunk)

    def _send(self, chunk: bytes) -> None:
        self.transport.write(_framed(chunk))

    def close(self, reason: str = "the camera stopped") -> None:
        if not self.closed.done():
            self.closed.set_result(reason)
