import random

from bambu_edge.printers.backoff import Backoff, slow_backoff


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_steps_double_to_the_cap():
    b = Backoff(initial=1.0, cap=60.0, rng=lambda: 0.0)  # rng 0 -> the whole step
    assert [b.next() for _ in range(9)] == [1, 2, 4, 8, 16, 32, 60, 60, 60]


def test_full_jitter_spreads_each_wait_over_the_whole_step():
    b = Backoff(initial=1.0, cap=60.0, rng=random.Random(1).random)
    waits = []
    for _ in range(200):
        b.attempt = 10  # capped step
        waits.append(b.next())
    assert all(0.0 < w <= 60.0 for w in waits)
    assert min(waits) < 10.0 and max(waits) > 50.0  # uniform over (0, 60], not lockstep
    assert len({round(w, 6) for w in waits}) == len(waits)


def test_retrying_forever_never_overflows():
    b = Backoff(initial=1.0, cap=60.0, rng=lambda: 0.0)
    for _ in range(5000):  # three and a half days of one-minute retries
        assert b.next() <= 60.0
    assert b.attempt < 10


def test_a_stable_connection_resets_the_schedule():
    clock = Clock()
    b = Backoff(initial=1.0, cap=60.0, stable_after=30.0, rng=lambda: 0.0, clock=clock)
    for _ in range(6):
        b.next()
    b.ok()
    clock.now += 45.0
    b.ok()  # reports kept coming for 45 s
    assert b.next() == 1.0


def test_a_connection_that_dies_or_goes_silent_soon_keeps_growing_the_waits():
    clock = Clock()
    b = Backoff(initial=1.0, cap=60.0, stable_after=30.0, rng=lambda: 0.0, clock=clock)
    assert [b.next(), b.next(), b.next()] == [1, 2, 4]
    b.ok()  # one report, then nothing
    clock.now += 100.0
    assert b.next() == 8.0
    b.ok()
    clock.now += 5.0
    b.ok()
    assert b.next() == 16.0


def test_reset():
    b = Backoff(rng=lambda: 0.0)
    b.next(), b.next()
    b.reset()
    assert b.next() == 1.0


def test_slow_schedule_is_minutes_and_never_quick():
    b = slow_backoff(rng=random.Random(2).random)
    waits = [b.next() for _ in range(12)]
    assert waits[0] >= 48.0  # 60 s with at most 20 % jitter
    assert all(w >= 48.0 for w in waits)
    assert max(waits) <= 900.0 and max(waits) >= 720.0  # 15 min cap reached
