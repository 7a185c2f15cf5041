"""Drives the status LED through a Pattern's steps from the event loop.

The stepping is an asyncio task on purpose: if the loop freezes, the LED stops blinking (stuck lit
or dark), which is how a frozen daemon is noticed at a glance.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from bambu_edge.panel.patterns import Pattern


class LedDriver:
    """``device`` is a gpiozero LED (on/off) or RGBLED (``color``)."""

    def __init__(self, device: Any):
        self.device = device
        self.pattern: Pattern | None = None
        self._task: asyncio.Task[None] | None = None

    def show(self, pattern: Pattern) -> None:
        if pattern == self.pattern and self._task is not None:
            return
        self.pattern = pattern
        if self._task is not None:
            self._task.cancel()
        self._task = asyncio.get_running_loop().create_task(self._run(pattern), name="panel-led")

    def _light(self, lit: bool, pattern: Pattern) -> None:
        if hasattr(self.device, "color"):
            self.device.color = pattern.color if lit else (0, 0, 0)
        elif lit:
            self.device.on()
        else:
            self.device.off()

    async def _run(self, pattern: Pattern) -> None:
        while True:
            for lit, seconds in pattern.steps:
                self._light(lit, pattern)
                await asyncio.sleep(seconds)

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        with contextlib.suppress(Exception):
            self.device.off()
        self.device.close()
