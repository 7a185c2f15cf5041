"""``GET /metrics`` as a component: what Prometheus scrapes, gathered at each scrape from the live
state (nothing is kept for it but a report counter, read off the report tap, and a one-minute
window of event-loop lag and report counts, sampled on the daemon's five-second beat).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections import deque
from typing import Any

from aiohttp import web

from bambu_edge.component import Component
from bambu_edge.jobs.history import HistoryFilter
from bambu_edge.metrics import api
from bambu_edge.metrics.exposition import Family, render
from bambu_edge.printers.beat import sleep_to_beat
from bambu_edge.printers.components import PrintersComponent

log = logging.getLogger(__name__)

SAMPLE_S = 5.0  # on the shared beat (printers/beat.py): no wake-up of its own
WINDOW = 12  # samples: the last minute
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
TEMPS = ("nozzle", "bed", "chamber")


def rss_bytes() -> int | None:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * PAGE_SIZE
    except (OSError, ValueError, IndexError):
        return None


class MetricsComponent(Component):
    name = "metrics"
    optional = True
    requires = ("printers",)

    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        self.reports = 0
        self.lag_s = 0.0
        self._samples: deque[tuple[float, int, float]] = deque(maxlen=WINDOW + 1)  # (t, reports, lag)
        self._untap: Any = None

    async def start(self) -> None:
        manager = self.ctx.require("printers", PrintersComponent).manager
        self._untap = manager.tap_reports(self._count)
        self._samples.append((time.monotonic(), self.reports, 0.0))
        self.ctx.tasks.spawn(self._sample(), name="metrics-sampler")

    async def stop(self) -> None:
        if self._untap is not None:
            self._untap()
            self._untap = None

    def _count(self, _printer_id: str, _payload: bytes, _msg: dict[str, Any]) -> None:
        self.reports += 1

    async def _sample(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            due = await sleep_to_beat(SAMPLE_S)
            self.lag_s = max(0.0, loop.time() - due)
            self._samples.append((time.monotonic(), self.reports, self.lag_s))

    def reports_per_s(self) -> float:
        """Over the last minute (or since start), up to now: the count goes on between samples."""
        if not self._samples:
            return 0.0
        t0, n0, _ = self._samples[0]
        t1 = time.monotonic()
        return (self.reports - n0) / (t1 - t0) if t1 - t0 >= 1.0 else 0.0

    # --- families ----------------------------------------------------------------------------------

    def _printers(self) -> list[Family]:
        manager = self.ctx.require("printers", PrintersComponent).manager
        up = Family("bambu_edge_printer_up", "gauge", "1 while the printer's link is connected")
        info = Family("bambu_edge_printer_info", "gauge", "the printer's name and model (always 1)")
        state = Family(
            "bambu_edge_printer_state",
            "gauge",
            "the printer's print state (gcode_state), 1 for the current one",
        )
        link = Family("bambu_edge_printer_link_state", "gauge", "the link's state, 1 for the current one")
        progress = Family("bambu_edge_printer_progress_percent", "gauge", "progress of the current print")
        remaining = Family("bambu_edge_printer_remaining_seconds", "gauge", "time left in the current print")
        temps = Family("bambu_edge_printer_temperature_celsius", "gauge", "temperatures, current and target")
        hms = Family("bambu_edge_printer_hms_messages", "gauge", "HMS messages the printer shows now")
        reconnects = Family(
            "bambu_edge_printer_reconnects_total", "counter", "connection attempts after the first"
        )
        for lk in manager.links():
            view = lk.state.view()
            p = view["id"]
            up.add(view["link"]["state"] == "connected", printer=p)
            info.add(1, printer=p, name=str(view.get("name") or ""), model=str(view.get("model") or ""))
            link.add(1, printer=p, state=str(view["link"]["state"]))
            pr = view.get("print") or {}
            if pr.get("state") is not None:
                state.add(1, printer=p, state=str(pr["state"]))
            progress.add(_num(pr.get("progress")), printer=p)
            remaining.add(_num(pr.get("remaining_s")), printer=p)
            for sensor in TEMPS:
                t = (view.get("temps") or {}).get(sensor) or {}
                temps.add(_num(t.get("current")), printer=p, sensor=sensor, kind="current")
                temps.add(_num(t.get("target")), printer=p, sensor=sensor, kind="target")
            hms.add(len(view.get("hms") or []), printer=p)
            attempts = getattr(lk, "connect_attempts", None)
            reconnects.add(max(attempts - 1, 0) if isinstance(attempts, int) else None, printer=p)
        return [up, info, state, link, progress, remaining, temps, hms, reconnects]

    def _daemon(self) -> list[Family]:
        reports = Family("bambu_edge_reports_total", "counter", "messages received from printers")
        reports.add(self.reports)
        rate = Family(
            "bambu_edge_reports_per_second", "gauge", "printer messages per second over the last minute"
        )
        rate.add(round(self.reports_per_s(), 3))
        lag = Family(
            "bambu_edge_event_loop_lag_seconds",
            "gauge",
            "how late the event loop woke a 1 s timer, last time",
        )
        lag.add(round(self.lag_s, 6))
        lag_max = Family(
            "bambu_edge_event_loop_lag_max_seconds", "gauge", "the worst event loop lag in the last minute"
        )
        lag_max.add(round(max((s[2] for s in self._samples), default=self.lag_s), 6))
        ws = Family("bambu_edge_ws_clients", "gauge", "browsers on the WebSocket")
        hub = self.ctx.registry.running("ws")
        ws.add(len(hub.hub.clients) if hub is not None and getattr(hub, "hub", None) else 0)
        rss = Family("process_resident_memory_bytes", "gauge", "resident memory of the daemon")
        rss.add(rss_bytes())
        t = os.times()
        cpu = Family("process_cpu_seconds_total", "counter", "CPU time of the daemon (user + system)")
        cpu.add(round(t.user + t.system, 3))
        comps = Family("bambu_edge_component_up", "gauge", "1 while the component runs")
        for name, entry in self.ctx.registry.health().items():
            comps.add(entry.get("state") == "running", component=name)
        out = [reports, rate, lag, lag_max, ws, rss, cpu, comps]
        fanout = self.ctx.registry.running("fanout")
        bridge = getattr(fanout, "bridge", None)
        if bridge is not None:
            c = bridge.counters
            for key, text in (
                ("reports", "printer messages relayed to the fan-out endpoint"),
                ("answered", "fan-out requests answered from state (pushall, get_version)"),
                ("forwarded", "fan-out requests forwarded to a printer"),
                ("refused", "fan-out requests refused"),
                ("limited", "fan-out requests dropped by the rate limit"),
            ):
                fam = Family(f"bambu_edge_fanout_{key}_total", "counter", text)
                fam.add(getattr(c, key))
                out.append(fam)
        return out

    async def _jobs(self) -> list[Family]:
        out = []
        queue = self.ctx.registry.running("queue")
        dispatcher = getattr(queue, "dispatcher", None)
        if dispatcher is not None:
            jobs = Family("bambu_edge_queue_jobs", "gauge", "unfinished queue jobs by state")
            counts: dict[str, int] = {}
            for job in await dispatcher.store.active_jobs():
                counts[job.state] = counts.get(job.state, 0) + 1
            for st, n in sorted(counts.items()):
                jobs.add(n, state=st)
            paused = Family("bambu_edge_queue_paused", "gauge", "1 while the queue is paused")
            paused.add(dispatcher.paused)
            out += [jobs, paused]
        history = self.ctx.registry.running("history")
        service = getattr(history, "service", None)
        if service is not None:
            totals = await service.repo.totals(HistoryFilter())
            records = Family("bambu_edge_history_records", "gauge", "print history records by outcome")
            for outcome, n in totals["by_outcome"].items():
                records.add(n, outcome=outcome)
            hours = Family("bambu_edge_history_print_hours", "gauge", "hours of ended prints in the history")
            hours.add(totals["print_hours"])
            out += [records, hours]
        return out

    async def exposition(self) -> str:
        return render([*self._printers(), *self._daemon(), *await self._jobs()])

    def routes(self) -> list[web.RouteDef]:
        return api.routes(lambda: self)


def _num(v: Any) -> float | None:
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None
