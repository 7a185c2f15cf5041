"""The panel button: how long it was held decides what a release does.

gpiozero calls back from its own thread; the watcher hands each press and release to the event
loop. The action is taken at the release (a 10 s hold must not power off at 3 s on its way), and
while the button is held the LED tells which action a release would take.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, Literal

Press = Literal["short", "shutdown", "setup"]


def classify_press(held_s: float, shutdown_s: float, setup_s: float, shutdown_enabled: bool) -> Press:
    if held_s >= setup_s:
        return "setup"
    if held_s >= shutdown_s and shutdown_enabled:
        return "shutdown"
    return "short"


class ButtonWatcher:
    """Calls ``on_press()`` and ``on_release(held_s)`` on the event loop for a gpiozero Button."""

    def __init__(
        self,
        button: Any,
        loop: asyncio.AbstractEventLoop,
        on_press: Callable[[], None],
        on_release: Callable[[float], None],
    ):
        self.button = button
        self._loop = loop
        self._on_press, self._on_release = on_press, on_release
        self._pressed_at: float | None = None
        button.when_pressed = self._pressed
        button.when_released = self._released

    def _pressed(self) -> None:  # gpiozero's thread
        self._pressed_at = time.monotonic()
        self._loop.call_soon_threadsafe(self._on_press)

    def _released(self) -> None:  # gpiozero's thread
        started, self._pressed_at = self._pressed_at, None
        if started is not None:
            self._loop.call_soon_threadsafe(self._on_release, time.monotonic() - started)

    def close(self) -> None:
        self.button.when_pressed = self.button.when_released = None
        self.button.close()
