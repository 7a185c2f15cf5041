"""Periodic checks share a beat: timers of one period started at different moments wake together."""

from __future__ import annotations

import asyncio

from bambu_edge.printers.beat import sleep_to_beat

PERIOD = 0.2


async def test_sleepers_started_apart_wake_on_the_same_instant() -> None:
    loop = asyncio.get_running_loop()
    woke: list[tuple[float, float]] = []

    async def sleeper() -> None:
        due = await sleep_to_beat(PERIOD)
        woke.append((due, loop.time()))

    await sleep_to_beat(PERIOD)  # just past a beat: both sleepers below start within one period
    first = asyncio.create_task(sleeper())
    await asyncio.sleep(PERIOD / 3)
    second = asyncio.create_task(sleeper())
    await asyncio.gather(first, second)
    (due1, t1), (due2, t2) = woke
    assert due1 == due2  # the same beat, though the second started a third of a period later
    assert abs(round(due1 / PERIOD) * PERIOD - due1) < 1e-6  # a multiple of the period
    assert t1 >= due1 - 0.001 and t2 >= due2 - 0.001  # not woken early


async def test_a_sleeper_on_the_beat_waits_a_whole_period_not_a_hair() -> None:
    loop = asyncio.get_running_loop()
    due = await sleep_to_beat(PERIOD)
    again = await sleep_to_beat(PERIOD)  # started right at (or a hair before) a beat
    assert abs((again - due) - PERIOD) < 1e-6
    assert loop.time() >= again - 0.001
