"""The one place where services are built and wired: started in order, stopped in reverse.

Start-up order: store (database, migrations) -> printers (links) -> history (print tracker) ->
queue (dispatcher) -> web (API, dashboard).
A stop (SIGTERM/SIGINT) stops them in reverse within STOP_BUDGET_S, so systemd never has to kill us.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from typing import Protocol

from bambu_edge import __version__, sdnotify
from bambu_edge.bus import EventBus
from bambu_edge.config import Config
from bambu_edge.files.thumbnails import ThumbnailCache
from bambu_edge.jobs.dispatcher import Dispatcher
from bambu_edge.jobs.history_service import HistoryService
from bambu_edge.jobs.queue import QueueStore
from bambu_edge.printers.base import PRINTER_EVENT, LinkState
from bambu_edge.printers.manager import PrinterManager
from bambu_edge.store.db import Store
from bambu_edge.web.server import WebService

log = logging.getLogger(__name__)

STOP_BUDGET_S = 5.0


class Service(Protocol):
    async def start(self) -> None: ...
    async def stop(self) -> None: ...


class Daemon:
    def __init__(self, config: Config):
        self.config = config
        self.bus = EventBus()
        self.store = Store(config)
        self.manager: PrinterManager | None = None
        self.history: HistoryService | None = None
        self.queue: Dispatcher | None = None
        self.web: WebService | None = None
        self._started: list[tuple[str, Service]] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._stop_requested = asyncio.Event()
        self.ready_at: float | None = None

    async def start(self) -> None:
        t0 = time.monotonic()
        try:
            await self._start("store", self.store)
            self.manager = PrinterManager(self.config, self.bus, self.store.pins, self.store.printers)
            await self._start("printers", self.manager)
            # One thumbnail cache, shared by the job services.
            thumbnails = await asyncio.to_thread(ThumbnailCache.in_data_dir, self.config.data_dir)
            self.history = HistoryService(self.store, self.manager, self.bus, thumbnails=thumbnails)
            await self._start("history", self.history)
            self.queue = Dispatcher(
                self.config,
                QueueStore(self.store.db),
                self.manager,
                self.bus,
                self.history,
                thumbnails=thumbnails,
            )
            await self._start("queue", self.queue)
            self.web = WebService(
                self.config, self.store, self.manager, self.bus, history=self.history, queue=self.queue
            )
            await self._start("web", self.web)
        except BaseException:
            await self.stop()
            raise
        self.ready_at = time.monotonic()
        log.info("bambu-edge %s ready in %.2f s", __version__, self.ready_at - t0)
        sdnotify.notify("READY=1", f"STATUS={self.status_line()}")
        interval = sdnotify.watchdog_interval()
        if interval:
            self._tasks.append(asyncio.create_task(sdnotify.watchdog_loop(interval), name="watchdog"))
        self._tasks.append(asyncio.create_task(self._status_loop(), name="sd-status"))

    async def _start(self, name: str, service: Service) -> None:
        sdnotify.notify(f"STATUS=starting {name}")
        await service.start()
        self._started.append((name, service))
        log.debug("service %s started", name)

    async def stop(self) -> None:
        sdnotify.notify("STOPPING=1")
        deadline = time.monotonic() + STOP_BUDGET_S
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        while self._started:
            name, service = self._started.pop()
            remaining = max(deadline - time.monotonic(), 0.1)
            try:
                await asyncio.wait_for(service.stop(), remaining)
            except TimeoutError:
                log.error("service %s did not stop in time", name)
            except Exception:
                log.exception("service %s failed while stopping", name)

    def request_stop(self) -> None:
        self._stop_requested.set()

    async def run(self) -> None:
        """Start, serve until SIGTERM/SIGINT, stop."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.request_stop)
        try:
            await self.start()
            await self._stop_requested.wait()
            log.info("stopping")
        finally:
            await self.stop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)

    def status_line(self) -> str:
        links = self.manager.links() if self.manager else []
        connected = sum(1 for link in links if link.state.view()["link"]["state"] == LinkState.CONNECTED)
        return f"{len(links)} printers, {connected} connected"

    async def _status_loop(self) -> None:
        # systemctl status shows how many printers are up; updated only when a link changes.
        with self.bus.subscribe(PRINTER_EVENT, maxsize=64) as sub:
            last = ""
            while True:
                event = await sub.get()
                if "link" not in event.data.changes:
                    continue
                line = self.status_line()
                if line != last:
                    sdnotify.notify(f"STATUS={line}")
                    last = line
