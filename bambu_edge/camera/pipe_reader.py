"""ffmpeg's stdout, read in the event loop's own callback into one buffer reused for every read.

asyncio's pipe transport reads up to 256 KiB into a fresh bytes object each time (in a daemon with
threads: an mmap, page faults, then an munmap that interrupts the other cores to flush their TLBs)
and wakes a task through a StreamReader. For the five fragments a second of a camera that was most
of the daemon's own share of the stream (bench/camera_cpu.py). Here a readable pipe is read with
``readv`` into the same buffer, and the bytes go to ``on_data`` there and then.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
from collections.abc import Callable

READ_BLOCK = 256 * 1024  # a 720p fragment (~100 kB) in one read
_F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)


def pipe_for_child() -> tuple[int, int]:
    """(our read end, non-blocking; the child's write end, to pass as its stdout and then close).
    The pipe holds a whole fragment, so ffmpeg writes it in one go and we read it in one."""
    r, w = os.pipe()
    os.set_blocking(r, False)
    with contextlib.suppress(OSError):  # not Linux, or above /proc/sys/fs/pipe-max-size
        fcntl.fcntl(w, _F_SETPIPE_SZ, READ_BLOCK)
    return r, w


async def read_pipe(fd: int, on_data: Callable[[memoryview], None], size: int = READ_BLOCK) -> None:
    """Until the pipe's end, each read handed to ``on_data`` (a view of the shared buffer, valid
    during the call only: copy what must be kept). An exception from ``on_data`` or the read ends
    the reading and is raised here; cancelling stops it."""
    loop = asyncio.get_running_loop()
    buf = bytearray(size)
    view = memoryview(buf)
    done: asyncio.Future[None] = loop.create_future()

    def finish(error: BaseException | None) -> None:
        loop.remove_reader(fd)
        if not done.done():
            if error is None:
                done.set_result(None)
            else:
                done.set_exception(error)

    def readable() -> None:
        try:
            n = os.readv(fd, [buf])
        except (BlockingIOError, InterruptedError):
            return
        except OSError as e:
            return finish(e)
        if n == 0:
            return finish(None)
        try:
            on_data(view[:n])
        except Exception as e:
            finish(e)

    loop.add_reader(fd, readable)
    try:
        await done
    finally:
        loop.remove_reader(fd)
