"""Bounded byte pipes between the event loop and an FTPS worker thread.

A browser upload is fed to the printer as it arrives, and a printer download goes to the browser as
it arrives: nothing is spooled to the SD card, and at most ``max_chunks`` chunks wait in memory in
either direction (the faster side waits for the slower one: TCP back-pressure on both ends).

- ``FeedReader``: the loop ``await put(chunk)``s; the worker thread ``read()``s it like a file
  (what ``ImplicitFTPS.write_from`` wants).
- ``Drain``: the worker thread ``write()``s; the loop ``await get()``s.

Either side can end the pipe (``fail``/``close``), which wakes the other; a side that waits longer
than ``timeout`` for the other gives up with TimeoutError (a stalled browser cannot hold a printer's
only FTPS session forever).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import threading
import time
from typing import Any

DEFAULT_CHUNKS = 8  # x 64 kB: at most ~0.5 MB in flight per transfer


class PipeClosed(Exception):
    """The other side of the pipe went away."""


class StallError(TimeoutError):
    """The other side of the pipe went quiet for longer than the timeout."""


class FeedReader:
    """Loop -> thread. ``read(n)`` returns at most ``n`` bytes, b"" at the end."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, *, max_chunks: int = DEFAULT_CHUNKS, timeout: float = 30.0
    ):
        self.loop = loop
        self.max_chunks = max_chunks
        self.timeout = timeout
        self._cond = threading.Condition()
        self._chunks: collections.deque[bytes] = collections.deque()
        self._ended = False
        self._error: BaseException | None = None
        self._closed = False  # the reader is gone
        self._space = asyncio.Event()
        self.consumed = 0

    # -- loop side --

    async def put(self, chunk: bytes) -> None:
        if not chunk:
            return
        while True:
            with self._cond:
                if self._closed:
                    raise PipeClosed("the printer side of the upload has ended")
                if len(self._chunks) < self.max_chunks:
                    self._chunks.append(bytes(chunk))
                    self._cond.notify_all()
                    return
                self._space.clear()
            try:
                await asyncio.wait_for(self._space.wait(), self.timeout)
            except TimeoutError:
                raise StallError("the printer stopped taking the upload") from None

    def finish(self) -> None:
        with self._cond:
            self._ended = True
            self._cond.notify_all()

    def fail(self, error: BaseException) -> None:
        """End the pipe with ``error``: the reader's next read() raises it."""
        with self._cond:
            if self._error is None and not self._ended:
                self._error = error
            self._ended = True
            self._cond.notify_all()

    # -- thread side --

    def read(self, n: int = -1) -> bytes:
        deadline = time.monotonic() + self.timeout
        with self._cond:
            while not self._chunks and not self._ended:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise StallError("the upload stalled: no data came for too long")
                self._cond.wait(remaining)
            if self._chunks:
                chunk = self._chunks.popleft()
                if 0 <= n < len(chunk):
                    chunk, rest = chunk[:n], chunk[n:]
                    self._chunks.appendleft(rest)
                self.consumed += len(chunk)
                self._wake_writer()
                return chunk
            if self._error is not None:
                raise self._error
            return b""

    def close(self) -> None:
        """The reader is done (finished or failed): a waiting writer is told so."""
        with self._cond:
            self._closed = True
            self._chunks.clear()
        self._wake_writer()

    def _wake_writer(self) -> None:
        with contextlib.suppress(RuntimeError):  # loop closed: nobody waits
            self.loop.call_soon_threadsafe(self._space.set)


class Drain:
    """Thread -> loop. Items are ``("start", size)``, ``("data", bytes)``; the producer's end is
    signalled by the owner with ``end(result)`` on the loop."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, *, max_chunks: int = DEFAULT_CHUNKS, timeout: float = 30.0
    ):
        self.loop = loop
        self.timeout = timeout
        self._queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        self._slots = threading.Semaphore(max_chunks)
        self._closed = threading.Event()

    # -- thread side --

    def start(self, size: int | None) -> None:
        self._post(("start", size))

    def write(self, data: bytes) -> None:
        if not self._slots.acquire(timeout=self.timeout):
            raise StallError("the browser stopped reading the download")
        if self._closed.is_set():
            raise PipeClosed("the browser side of the download has ended")
        self._post(("data", data))

    def _post(self, item: tuple[str, Any]) -> None:
        if self._closed.is_set():
            raise PipeClosed("the browser side of the download has ended")
        try:
            self.loop.call_soon_threadsafe(self._queue.put_nowait, item)
        except RuntimeError:  # loop closed
            raise PipeClosed("the event loop has stopped") from None

    # -- loop side --

    def end(self, outcome: Any) -> None:
        """The producer finished (``outcome`` is the finished asyncio future)."""
        self._queue.put_nowait(("end", outcome))

    async def get(self) -> tuple[str, Any]:
        item = await self._queue.get()
        if item[0] == "data":
            self._slots.release()
        return item

    def close(self) -> None:
        """The consumer is gone: a blocked or later write() raises PipeClosed."""
        self._closed.set()
        self._slots.release()
