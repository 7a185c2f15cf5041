"""The ordered list of components: built (no I/O), started in order, stopped in reverse.

Adding a subsystem is one component class in its own folder and one line in ``COMPONENTS``.
An optional component whose start fails (raises, or takes longer than its ``start_timeout_s``) is
logged and shown as failed in ``GET /api/health``, and the daemon runs on without it (so do the
components that require it); a core one stops start-up with one message (``StartError``). A stop
(SIGTERM/SIGINT) stops the started components in reverse within STOP_BUDGET_S, each one's TaskSet
closed after its ``stop()`` (tasks cancelled, children reaped), so systemd never has to kill us.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from aiohttp import web

from bambu_edge import __version__, sdnotify
from bambu_edge.backup.component import BackupComponent
from bambu_edge.bus import EventBus
from bambu_edge.camera.component import CameraComponent
from bambu_edge.component import Component, ComponentError, Context, StartError, TaskSet
from bambu_edge.config import Config, SectionSpec, default_section
from bambu_edge.discovery.component import DiscoveryComponent
from bambu_edge.fanout.component import FanoutComponent
from bambu_edge.farm.component import FarmComponent
from bambu_edge.homeassistant.component import HomeAssistantComponent
from bambu_edge.jobs.components import HistoryComponent, QueueComponent
from bambu_edge.jobs.dispatcher import Dispatcher
from bambu_edge.jobs.history_service import HistoryService
from bambu_edge.metrics.component import MetricsComponent
from bambu_edge.node import NodeComponent
from bambu_edge.panel.component import PanelComponent
from bambu_edge.power.component import PowerComponent
from bambu_edge.printers.components import PrintersComponent, TempsComponent
from bambu_edge.printers.manager import PrinterManager
from bambu_edge.store.components import StoreComponent
from bambu_edge.store.db import Store
from bambu_edge.updates.component import UpdatesComponent
from bambu_edge.usb.component import UsbComponent
from bambu_edge.watchdog import SystemdComponent, status_line
from bambu_edge.web.components import WebComponent, WsHubComponent
from bambu_edge.web.server import WebService

log = logging.getLogger(__name__)

STOP_BUDGET_S = 5.0

COMPONENTS: tuple[type[Component], ...] = (
    NodeComponent,
    BackupComponent,  # before the store: it holds the data folder's lock and swaps a staged restore in
    StoreComponent,
    PrintersComponent,
    HistoryComponent,
    QueueComponent,
    TempsComponent,
    CameraComponent,
    PanelComponent,
    UsbComponent,
    PowerComponent,
    FarmComponent,  # farm: null leaves it idle
    WebComponent,
    WsHubComponent,  # after web: stopped first, its clients hear "going away" while it still serves
    DiscoveryComponent,  # after web: it announces the dashboard's port
    FanoutComponent,  # after web: it serves the dashboard's certificate
    HomeAssistantComponent,
    MetricsComponent,
    SystemdComponent,
    UpdatesComponent,  # GET /api/version: what apt knows about the bambu-edge package
)

State = Literal["running", "failed", "stopped"]
C = TypeVar("C", bound=Component)


def config_sections(components: Sequence[type[Component]] = COMPONENTS) -> list[SectionSpec]:
    """The config sections the components declare, for ``load_config`` and ``check-config``."""
    return [c.config_section for c in components if c.config_section is not None]


@dataclass
class _Slot:
    component: Component
    tasks: TaskSet
    state: State = "stopped"
    error: str | None = None


def _describe(e: BaseException) -> str:
    return str(e) or type(e).__name__


class Daemon:
    """The components of ``components`` (default: ``COMPONENTS``) over one bus and one store."""

    def __init__(self, config: Config, components: Sequence[type[Component]] = COMPONENTS):
        self.config = config
        self.bus = EventBus()
        self.store = Store(config)
        self._slots: dict[str, _Slot] = {}
        for cls in components:
            self._build(cls)
        self._stop_requested = asyncio.Event()
        self.ready_at: float | None = None
        self.restart_requested = False

    def _build(self, cls: type[Component]) -> None:
        name = cls.name
        if name in self._slots:
            raise ValueError(f"two components are named {name!r}")
        missing = [r for r in cls.requires if r not in self._slots]
        if missing:
            raise ValueError(f"component {name!r} requires {missing}, which must come before it in the list")
        spec = cls.config_section
        section = None
        if spec is not None:
            section = self.config.section(spec.key)
            if section is None:  # a Config built in code: the section's defaults
                section = default_section(spec)
        tasks = TaskSet(name)
        ctx = Context(
            config=self.config,
            section=section,
            bus=self.bus,
            store=self.store,
            tasks=tasks,
            requires={r: self._slots[r].component for r in cls.requires},
            registry=self,
        )
        self._slots[name] = _Slot(cls(ctx), tasks)

    # --- what the components see (Registry) ---------------------------------------------------------

    def routes(self) -> list[web.RouteDef]:
        return [route for slot in self._slots.values() for route in slot.component.routes()]

    def event_kinds(self) -> tuple[str, ...]:
        kinds: dict[str, None] = {}
        for slot in self._slots.values():
            kinds.update(dict.fromkeys(slot.component.event_kinds))
        return tuple(kinds)

    def health(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for name, slot in self._slots.items():
            comp = slot.component
            entry: dict[str, Any] = {"state": slot.state, "optional": comp.optional, "error": slot.error}
            if slot.state == "running":
                try:
                    extra = comp.health()
                except Exception as e:  # a health report must never break the health route
                    log.exception("component %s: health() failed", name)
                    extra = {"health_error": _describe(e)}
                entry.update({k: v for k, v in extra.items() if k not in entry})
            out[name] = entry
        return out

    def running(self, name: str) -> Component | None:
        slot = self._slots.get(name)
        return slot.component if slot is not None and slot.state == "running" else None

    def component(self, name: str) -> Component:
        return self._slots[name].component

    # --- the services tests and tools reach for -------------------------------------------------------

    def _find(self, name: str, kind: type[C]) -> C | None:
        slot = self._slots.get(name)
        return slot.component if slot is not None and isinstance(slot.component, kind) else None

    @property
    def manager(self) -> PrinterManager | None:
        comp = self._find("printers", PrintersComponent)
        return comp.service if comp else None

    @property
    def history(self) -> HistoryService | None:
        comp = self._find("history", HistoryComponent)
        return comp.service if comp else None

    @property
    def queue(self) -> Dispatcher | None:
        comp = self._find("queue", QueueComponent)
        return comp.dispatcher if comp else None

    @property
    def web(self) -> WebService | None:
        comp = self._find("web", WebComponent)
        return comp.service if comp else None

    # --- lifecycle ------------------------------------------------------------------------------------

    async def start(self) -> None:
        t0 = time.monotonic()
        try:
            for name, slot in self._slots.items():
                await self._start(name, slot)
        except BaseException:
            await self.stop()
            raise
        self.ready_at = time.monotonic()
        failed = [name for name, slot in self._slots.items() if slot.state == "failed"]
        log.info(
            "bambu-edge %s ready in %.2f s%s",
            __version__,
            self.ready_at - t0,
            f" (without {', '.join(failed)})" if failed else "",
        )
        sdnotify.notify("READY=1", f"STATUS={self.status_line()}")

    async def _start(self, name: str, slot: _Slot) -> None:
        comp = slot.component
        down = [r for r in comp.requires if self._slots[r].state != "running"]
        if down:
            error = f"needs {', '.join(down)}, which did not start"
        else:
            sdnotify.notify(f"STATUS=starting {name}")
            timeout = comp.start_timeout_s if comp.optional else None
            try:
                await asyncio.wait_for(comp.start(), timeout)
            except TimeoutError:
                error = f"did not start within {timeout:g} s"
            except (OSError, ComponentError) as e:
                error = _describe(e)
            except Exception as e:
                log.error("component %s failed to start", name, exc_info=e)
                error = _describe(e)
            else:
                slot.state = "running"  # start() returned: stop() is owed
                log.debug("component %s started", name)
                return
        slot.state, slot.error = "failed", error
        if not comp.optional:
            raise StartError(name, error)
        log.warning("component %s failed to start; running without it: %s", name, error)
        await slot.tasks.close()  # what it spawned before failing ends now, not at the daemon's stop

    async def stop(self) -> None:
        # A restart in this process (cli.run_daemon) is a reload to systemd, not a stop.
        sdnotify.notify("RELOADING=1" if self.restart_requested else "STOPPING=1")
        deadline = time.monotonic() + STOP_BUDGET_S
        for name, slot in reversed(self._slots.items()):
            if slot.state == "running":
                slot.state = "stopped"  # before awaiting: a second stop() does not stop it again
                try:
                    await asyncio.wait_for(slot.component.stop(), max(deadline - time.monotonic(), 0.1))
                except TimeoutError:
                    log.error("component %s did not stop in time", name)
                except Exception:
                    log.exception("component %s failed while stopping", name)
            # Whatever the component left running (or spawned before its start failed) ends here.
            await slot.tasks.close(max(deadline - time.monotonic(), 0.1))

    def request_stop(self) -> None:
        self._stop_requested.set()

    def request_restart(self) -> None:
        """Stop, then start again in this process (cli.run_daemon builds a fresh Daemon): a
        restore staged by the dashboard is swapped in between."""
        self.restart_requested = True
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
        return status_line(self.manager)
