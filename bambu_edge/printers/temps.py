"""The last hour of temperatures per printer, in memory (the SD card is spared: nothing is written).

One point per ``period_s`` per printer: (t, nozzle, nozzle_target, bed, bed_target, chamber). An
offline printer records no points, so the chart shows a gap rather than invented values.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

from bambu_edge.printers.beat import sleep_to_beat
from bambu_edge.printers.values import num
from bambu_edge.tasks import TaskSet

FIELDS = ("t", "nozzle", "nozzle_target", "bed", "bed_target", "chamber")
Point = tuple[float, float | None, float | None, float | None, float | None, float | None]


def _num(v: Any) -> float | None:
    n = num(v)
    return None if n is None else round(n, 1)


def point_from_view(view: dict[str, Any], now: float) -> Point | None:
    if (view.get("link") or {}).get("state") != "connected":
        return None
    temps = view.get("temps") or {}

    def pair(name: str) -> tuple[float | None, float | None]:
        t = temps.get(name) or {}
        return _num(t.get("current")), _num(t.get("target"))

    nozzle, nozzle_t = pair("nozzle")
    bed, bed_t = pair("bed")
    chamber, _ = pair("chamber")
    if nozzle is None and bed is None and chamber is None:
        return None
    return (round(now, 1), nozzle, nozzle_t, bed, bed_t, chamber)


class TempHistory:
    def __init__(self, window_s: float = 3600.0, period_s: float = 10.0):
        self.period_s = period_s
        self.size = int(window_s // period_s)
        self._rings: dict[str, deque[Point]] = {}

    def record(self, printer_id: str, point: Point | None) -> None:
        if point is None:
            return
        ring = self._rings.get(printer_id)
        if ring is None:
            ring = self._rings[printer_id] = deque(maxlen=self.size)
        ring.append(point)

    def points(self, printer_id: str, since: float | None = None) -> list[Point]:
        ring = self._rings.get(printer_id, ())
        return [p for p in ring if since is None or p[0] > since]

    def forget(self, printer_id: str) -> None:
        self._rings.pop(printer_id, None)

    def sample(self, views: Iterable[dict[str, Any]], now: float) -> None:
        for view in views:
            self.record(view["id"], point_from_view(view, now))


class TempSampler:
    """Service: samples every printer's view once per period."""

    def __init__(
        self,
        history: TempHistory,
        views: Callable[[], Iterable[dict[str, Any]]],
        tasks: TaskSet | None = None,
    ):
        self.history = history
        self._views = views
        self.tasks = tasks or TaskSet("temperature sampler")
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = self.tasks.spawn(self._run(), name="temp-sampler")

    async def stop(self) -> None:
        if self._task:
            await self.tasks.cancel([self._task])
            self._task = None

    async def _run(self) -> None:
        while True:
            self.history.sample(self._views(), time.time())
            await sleep_to_beat(self.history.period_s)
