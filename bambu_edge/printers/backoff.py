"""Reconnect delays: exponential with jitter, capped, reset after a stable connection.

Pure: the random source and the clock are injected, so tests (and a farm of units) are deterministic.
Two schedules: ``Backoff()`` for lost links (1 s doubling to 60 s, full jitter) and ``slow_backoff()``
for failures that will not fix themselves (a wrong access code, a changed certificate): 60 s doubling
to 15 min, so a printer is never hammered with logins it will refuse.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Backoff:
    initial: float = 1.0
    cap: float = 60.0
    factor: float = 2.0
    # Share of each step that is random: 1.0 is "full jitter" (uniform over (0, step]), which keeps
    # many clients from reconnecting to a rebooted printer in lockstep; 0.0 is no jitter.
    jitter: float = 1.0
    # A connection that kept working this long counts as stable: the next failure starts from
    # `initial` again. One that dies soon after connecting (or goes silent) keeps growing the waits.
    stable_after: float = 30.0
    rng: Callable[[], float] = random.random  # the process's one generator: 2.5 KB of state, not one each
    clock: Callable[[], float] = time.monotonic
    attempt: int = 0
    _up_since: float | None = field(default=None, repr=False)
    _ok_at: float | None = field(default=None, repr=False)

    def next(self) -> float:
        """The wait before the next attempt, after a failed attempt or a lost connection."""
        if self._up_since is not None and self._ok_at is not None:
            if self._ok_at - self._up_since >= self.stable_after:
                self.attempt = 0
        self._up_since = self._ok_at = None
        step = self.step()
        if step < self.cap:
            # Stop counting once capped: a link that retries forever must not overflow the power.
            self.attempt += 1
        return step * (1.0 - self.jitter * self.rng())

    def step(self) -> float:
        """The current step before jitter (the longest the next wait can be)."""
        return min(self.cap, self.initial * self.factor**self.attempt)

    def ok(self) -> None:
        """The connection just proved it works (e.g. a report arrived). Once it has kept working for
        ``stable_after``, the next failure starts the schedule from the beginning."""
        now = self.clock()
        if self._up_since is None:
            self._up_since = now
        self._ok_at = now

    def reset(self) -> None:
        self.attempt = 0
        self._up_since = self._ok_at = None


def slow_backoff(
    rng: Callable[[], float] | None = None, clock: Callable[[], float] = time.monotonic
) -> Backoff:
    """Minutes, not seconds: a wrong access code or a changed certificate needs the user."""
    return Backoff(
        initial=60.0,
        cap=900.0,
        jitter=0.2,  # 48-60 s, 96-120 s, ...: spread out, but never a quick retry
        rng=rng or random.random,
        clock=clock,
    )
