"""systemd's watchdog pings and the status line (``systemctl status``) as a component.

A task on the event loop sends ``WATCHDOG=1`` every half ``WatchdogSec``: a loop that is stuck (a
blocking call, a busy loop) sends nothing, and systemd kills the daemon with SIGABRT and restarts
it. faulthandler prints every thread's stack on that SIGABRT, so the journal shows where it hung.

A live loop can still be useless when the part everything else waits on is wedged. That part is the
database's worker thread: every statement on it is short (a lock wait ends after the 5 s busy
timeout), so a ``SELECT 1`` unanswered for a whole watchdog timeout means it is stuck for good (a
write hung on a failing SD card, say). Each round asks it; while it has not answered for that long,
the pings stop too and ``STATUS=`` says why. Nothing else is probed, because nothing else has a
sound deadline: printers fall silent when switched off, the default thread pool is legitimately
busy for minutes with FTPS uploads, and the web server runs on the loop itself.
"""

from __future__ import annotations

import asyncio
import faulthandler
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field

from bambu_edge import sdnotify
from bambu_edge.bus import Event
from bambu_edge.component import Component, Context
from bambu_edge.printers.base import PRINTER_EVENT, LinkState
from bambu_edge.printers.components import PrintersComponent
from bambu_edge.printers.manager import PrinterManager

log = logging.getLogger(__name__)

Probe = Callable[[], Awaitable[object]]


def status_line(manager: PrinterManager | None) -> str:
    links = manager.links() if manager else []
    connected = sum(1 for link in links if link.state.view()["link"]["state"] == LinkState.CONNECTED)
    return f"{len(links)} printers, {connected} connected"


def _link_changed(event: Event) -> bool:
    return "link" in event.data.changes


@dataclass
class Liveness:
    """When each probe last answered, over a monotonic clock (pure bookkeeping, no I/O)."""

    deadline_s: float
    last_answer: dict[str, float] = field(default_factory=dict)

    @classmethod
    def starting(cls, names: Iterable[str], now: float, deadline_s: float) -> Liveness:
        return cls(deadline_s, dict.fromkeys(names, now))

    def answered(self, name: str, now: float) -> None:
        self.last_answer[name] = now

    def excuse(self, seconds: float) -> None:
        """The event loop itself was held up for ``seconds``: answers could not be heard meanwhile,
        so that time does not count against the probes (a stuck loop stops the pings anyway)."""
        for name in self.last_answer:
            self.last_answer[name] += seconds

    def stale(self, now: float) -> list[str]:
        """The probes that have not answered within the deadline: pings must stop."""
        return [name for name, t in self.last_answer.items() if now - t > self.deadline_s]


async def feed_watchdog(
    interval: float,
    deadline_s: float,
    probes: Mapping[str, Probe],
    status: Callable[[], str],
    notify: Callable[..., bool] = sdnotify.notify,
) -> None:
    """Ping every ``interval`` while every probe has answered within ``deadline_s``."""
    liveness = Liveness.starting(probes, time.monotonic(), deadline_s)
    pending: dict[str, asyncio.Task[object]] = {}

    def ended(name: str, task: asyncio.Task[object]) -> None:
        pending.pop(name, None)
        if task.cancelled():
            return
        if (exc := task.exception()) is not None:
            log.warning("watchdog: %s did not answer: %s", name, exc)
        else:
            liveness.answered(name, time.monotonic())

    wedged: list[str] = []
    try:
        while True:
            for name, probe in probes.items():
                if name not in pending:  # one question at a time: a wedged part is not asked twice
                    task = asyncio.ensure_future(probe())
                    pending[name] = task
                    task.add_done_callback(lambda t, n=name: ended(n, t))
            stale = liveness.stale(time.monotonic())
            if stale != wedged:
                if stale:
                    log.error(
                        "%s not answering for %g s: withholding the watchdog ping, systemd will restart us",
                        ", ".join(stale),
                        deadline_s,
                    )
                    notify(f"STATUS={', '.join(stale)} not answering; restart pending")
                else:
                    log.warning("%s answering again: watchdog pings resume", ", ".join(wedged))
                    notify(f"STATUS={status()}")
                wedged = stale
            if not stale:
                notify("WATCHDOG=1")
            wake = time.monotonic() + interval
            await asyncio.sleep(interval)
            liveness.excuse(max(0.0, time.monotonic() - wake))
    finally:
        for task in pending.values():
            task.cancel()


class SystemdComponent(Component):
    """Does nothing without systemd (no NOTIFY_SOCKET): ``sdnotify`` then sends nothing."""

    name = "systemd"
    optional = True
    requires = ("printers",)

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self._enabled_faulthandler = False

    async def start(self) -> None:
        manager = self.ctx.require("printers", PrintersComponent).manager
        timeout, interval = sdnotify.watchdog_timeout(), sdnotify.watchdog_interval()
        if timeout and interval:
            if not faulthandler.is_enabled():
                # systemd's watchdog kills with SIGABRT: print every thread's stack first.
                faulthandler.enable(all_threads=True)
                self._enabled_faulthandler = True
            probes = {"database": self._ask_database}
            self.ctx.tasks.spawn(
                feed_watchdog(interval, timeout, probes, lambda: status_line(manager)), name="watchdog"
            )
        self.ctx.tasks.spawn(self._status_loop(manager), name="sd-status")

    async def stop(self) -> None:
        if self._enabled_faulthandler:
            faulthandler.disable()
            self._enabled_faulthandler = False

    async def _ask_database(self) -> object:
        return await self.ctx.store.db.fetchone("SELECT 1")

    async def _status_loop(self, manager: PrinterManager) -> None:
        # systemctl status shows how many printers are up; updated only when a link changes.
        with self.ctx.bus.subscribe(PRINTER_EVENT, maxsize=64, where=_link_changed) as sub:
            last = ""
            while True:
                await sub.get()
                line = status_line(manager)
                if line != last:
                    sdnotify.notify(f"STATUS={line}")
                    last = line
