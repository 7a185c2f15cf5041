"""Request rate limits, pure logic (the clock is passed in).

- General: a token bucket per client, 200 requests/minute with a burst of the same size.
- Login: failures per client grow a delay (1 s, 2 s, 4 s ... capped at 5 min) during which further
  attempts get 429 with Retry-After; a success clears it. Keyed by client address only: keying by
  username would let anyone on the LAN lock the admin out by failing on purpose.
Memory is bounded: idle entries are dropped, and the table has a hard cap.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass


@dataclass(slots=True)
class _Bucket:
    tokens: float
    stamp: float


class TokenBucketLimiter:
    def __init__(self, per_minute: int = 200, burst: int | None = None, max_clients: int = 4096):
        self.rate = per_minute / 60.0
        self.burst = float(burst if burst is not None else per_minute)
        self.max_clients = max_clients
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def check(self, client: str, now: float) -> float:
        """0.0 if the request may go ahead, else the seconds until it may."""
        b = self._buckets.get(client)
        if b is None:
            b = _Bucket(self.burst, now)
            self._buckets[client] = b
            if len(self._buckets) > self.max_clients:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(client)
            b.tokens = min(self.burst, b.tokens + (now - b.stamp) * self.rate)
            b.stamp = now
        if b.tokens >= 1.0:
            b.tokens -= 1.0
            return 0.0
        return (1.0 - b.tokens) / self.rate

    def __len__(self) -> int:
        return len(self._buckets)


@dataclass(slots=True)
class _Failures:
    count: int
    blocked_until: float
    last: float


class LoginThrottle:
    """Growing delays after failed logins, per client address."""

    def __init__(
        self, base_s: float = 1.0, cap_s: float = 300.0, forget_s: float = 3600.0, max_keys: int = 4096
    ):
        self.base_s, self.cap_s, self.forget_s, self.max_keys = base_s, cap_s, forget_s, max_keys
        self._fails: OrderedDict[str, _Failures] = OrderedDict()

    def retry_after(self, client: str, now: float) -> float:
        f = self._fails.get(client)
        if f is None:
            return 0.0
        if now - f.last > self.forget_s:
            del self._fails[client]
            return 0.0
        return max(f.blocked_until - now, 0.0)

    def failed(self, client: str, now: float) -> float:
        """Record a failure; returns the delay now imposed on this client."""
        f = self._fails.get(client)
        if f is None or now - f.last > self.forget_s:
            f = _Failures(0, now, now)
            self._fails[client] = f
        self._fails.move_to_end(client)
        f.count += 1
        f.last = now
        # The first two mistakes are free: people mistype.
        delay = 0.0 if f.count <= 2 else min(self.base_s * 2 ** (f.count - 3), self.cap_s)
        f.blocked_until = now + delay
        while len(self._fails) > self.max_keys:
            self._fails.popitem(last=False)
        return delay

    def succeeded(self, client: str) -> None:
        self._fails.pop(client, None)
