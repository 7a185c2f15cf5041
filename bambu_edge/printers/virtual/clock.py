"""A virtual printer's simulated time: it follows real time (times nothing: ``time_scale`` shortens
prints, not seconds), or it is held, and only ``VirtualPrinter.advance``/``finish`` move it. Tests
hold it, so a print is exactly as far as they say, however busy the machine is."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class SimClock:
    held: bool = False
    _last: float | None = None

    def tick(self, now: float) -> float:
        """Simulated seconds since the last tick: the real ones while running, none while held."""
        last, self._last = self._last, now
        if self.held or last is None:
            return 0.0
        return max(now - last, 0.0)

    def hold(self) -> None:
        self.held = True

    def run(self) -> None:
        """Follow real time again, from now on (held time is not caught up)."""
        self.held = False
        self._last = None
