"""A circuit breaker for one plug. Pure: the clock is injected.

After ``threshold`` failed requests in a row the plug is left alone for a while (the wait grows
like a lost printer link's, printers/backoff.py), so a dead plug costs one quick "unreachable"
instead of a timeout per caller; when the wait is over one request tries again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from bambu_edge.printers.backoff import Backoff


def _open_backoff() -> Backoff:
    return Backoff(initial=10.0, cap=300.0, jitter=0.2)


@dataclass
class CircuitBreaker:
    threshold: int = 3
    clock: Callable[[], float] = time.monotonic
    backoff: Backoff = field(default_factory=_open_backoff)
    failures: int = 0
    open_until: float | None = None

    def allow(self) -> bool:
        """May a request go out now?"""
        return self.open_until is None or self.clock() >= self.open_until

    def retry_in(self) -> float:
        return 0.0 if self.open_until is None else max(self.open_until - self.clock(), 0.0)

    def success(self) -> None:
        self.failures = 0
        self.open_until = None
        self.backoff.reset()

    def failure(self) -> None:
        self.failures += 1
        if self.failures >= self.threshold:
            self.open_until = self.clock() + self.backoff.next()
