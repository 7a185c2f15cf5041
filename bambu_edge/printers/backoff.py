"""Reconnect delays: exponential with full jitter, capped; a slow schedule after auth failures."""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass
class Backoff:
    initial: float = 1.0
    cap: float = 60.0
    factor: float = 2.0
    rng: random.Random = field(default_factory=random.Random)
    attempt: int = 0

    def next(self) -> float:
        """The wait before the next attempt. Full jitter keeps a farm of units from reconnecting
        to a rebooted printer in lockstep; never below half the step so it is not a hammer."""
        step = min(self.cap, self.initial * self.factor**self.attempt)
        self.attempt += 1
        return self.rng.uniform(step / 2, step)

    def reset(self) -> None:
        self.attempt = 0


def auth_backoff(rng: random.Random | None = None) -> Backoff:
    # A wrong access code will not fix itself: retry in minutes, not seconds.
    return Backoff(initial=60.0, cap=900.0, rng=rng or random.Random())
