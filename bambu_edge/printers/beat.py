"""One beat for every periodic check, so that they wake the process together.

Each link's keepalive and silence checks, and the daemon's samplers, used to sleep a fixed period
from wherever they started: ten idle printers woke the daemon a dozen times a second, each wake-up a
trip through epoll and the event loop for a few microseconds of work, and at one report a second that
was a third of the daemon's CPU. Sleeping to the next multiple of the period on the loop's clock
puts every timer of the same period (and of any period dividing it) on the same instants, and the
loop runs timers that are due together in one pass.
"""

from __future__ import annotations

import asyncio


async def sleep_to_beat(period: float) -> float:
    """Sleep until the next multiple of ``period`` seconds on the running loop's clock; returns
    that instant (the caller can tell how late it woke: ``loop.time() - returned``)."""
    loop = asyncio.get_running_loop()
    now = loop.time()
    due = now - now % period + period
    if due - now < period * 0.01:
        # The loop runs a timer up to its clock's resolution early: just short of the beat we
        # woke for, the next beat is one period away, not a hair's breadth.
        due += period
    await asyncio.sleep(due - now)
    return due
