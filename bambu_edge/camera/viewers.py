"""What one viewer has not been sent yet: a bounded queue that skips ahead to a keyframe.

The producer (one upstream per camera) never waits for a viewer: ``put`` never blocks. A viewer
that falls behind by more than ``max_bytes`` loses its backlog and resumes at the next keyframe
(for fragmented MP4: a fragment a decoder can start at; every JPEG frame is one), so a slow phone
on Wi-Fi never stalls the others and never makes the daemon's memory grow.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Protocol

DEFAULT_MAX_BYTES = 4 * 1024 * 1024  # a few seconds of 720p H.264, a dozen 720p JPEGs


class Viewer(Protocol):
    """What the upstream feeds: a ``ViewerQueue``, or a ``ws_viewer.WsViewer`` that writes at once."""

    def put(self, chunk: bytes, keyframe: bool) -> None: ...

    def put_head(self, chunk: bytes) -> None: ...

    def close(self, reason: str = ...) -> None: ...


class ViewerClosed(Exception):
    """The camera stopped (or the viewer was dropped): nothing more will come."""


class ViewerQueue:
    def __init__(self, head: list[bytes] | None = None, max_bytes: int = DEFAULT_MAX_BYTES):
        """``head``: what the viewer must get first whatever happens (the fMP4 init segment)."""
        self.max_bytes = max_bytes
        self._items: deque[bytes] = deque(head or ())
        self._size = sum(len(b) for b in self._items)
        self._pinned = len(self._items)  # head items are never dropped
        self._waiting_key = True  # a joiner starts at a keyframe
        self._ready = asyncio.Event()
        self._closed: str | None = None
        self.skipped = 0  # chunks dropped to keep up
        if self._items:
            self._ready.set()

    @property
    def buffered(self) -> int:
        return self._size

    def put(self, chunk: bytes, keyframe: bool) -> None:
        if self._closed is not None:
            return
        if self._waiting_key and not keyframe:
            self.skipped += 1
            return
        if self._size + len(chunk) > self.max_bytes:
            self._drop_backlog()
            if not keyframe:
                self._waiting_key = True
                self.skipped += 1
                return
        self._waiting_key = False
        self._items.append(chunk)
        self._size += len(chunk)
        self._ready.set()

    def _drop_backlog(self) -> None:
        keep = [self._items.popleft() for _ in range(self._pinned)]
        self.skipped += len(self._items)
        self._items.clear()
        self._items.extend(keep)
        self._size = sum(len(b) for b in keep)

    def put_head(self, chunk: bytes) -> None:
        """Something the viewer must get before anything queued (an init segment that arrived after
        the viewer joined); never dropped."""
        self._items.appendleft(chunk)
        self._size += len(chunk)
        self._pinned += 1
        self._ready.set()

    async def get(self) -> bytes:
        """The next chunk; ViewerClosed once the queue is closed and empty."""
        while not self._items:
            if self._closed is not None:
                raise ViewerClosed(self._closed)
            self._ready.clear()
            await self._ready.wait()
        chunk = self._items.popleft()
        self._size -= len(chunk)
        if self._pinned:
            self._pinned -= 1
        return chunk

    def close(self, reason: str = "the camera stopped") -> None:
        """No more chunks; what is queued may still be read."""
        if self._closed is None:
            self._closed = reason
        self._ready.set()
