"""The panel as a component: the LED shows the folded state, the button acknowledges, powers off or
reopens the web setup.

State comes from the bus (printer updates, the queue's bed marks); one snapshot of the printers'
views and the queue's beds is taken at start, for what happened before the panel subscribed.
``panel: null`` drives no GPIO, but the state is still folded: the dashboard's header shows it.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from bambu_edge.bus import Event
from bambu_edge.component import Component, ComponentError, Context
from bambu_edge.jobs.components import QueueComponent
from bambu_edge.jobs.dispatcher import QUEUE_EVENT
from bambu_edge.panel import api, gpio
from bambu_edge.panel.actions import Actions
from bambu_edge.panel.button import ButtonWatcher, classify_press
from bambu_edge.panel.config import PANEL_SECTION, PanelConfig
from bambu_edge.panel.led import LedDriver
from bambu_edge.panel.patterns import PATTERNS, PanelModel, Pattern, status_pattern
from bambu_edge.printers.base import PRINTER_ADDED_EVENT, PRINTER_EVENT, PRINTER_REMOVED_EVENT
from bambu_edge.printers.components import PrintersComponent

log = logging.getLogger(__name__)

PANEL_EVENT = "panel"
STATUS_SHOW_S = 6.0  # how long a short press's status blinks replace the state's pattern


def _lights_up(event: Event) -> bool:
    """What the LED reads of a printer: its link, its HMS alarms and its print's state (most reports
    move only temperatures and progress, which never change the pattern)."""
    if event.kind != PRINTER_EVENT:
        return True
    changes = event.data.changes
    return "link" in changes or "hms" in changes or "state" in (changes.get("print") or {})


@dataclass(frozen=True)
class PanelUpdate:
    """The LED's pattern changed (also sent without an LED: the header shows it)."""

    pattern: Pattern
    alerts: int

    def to_json(self) -> dict[str, Any]:
        return {**self.pattern.to_json(), "alerts": self.alerts}


class PanelComponent(Component):
    name = "panel"
    optional = True
    requires = ("printers",)
    config_section = PANEL_SECTION
    event_kinds = (PANEL_EVENT,)

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.cfg: PanelConfig | None = ctx.section
        self.model = PanelModel()
        self.actions = Actions()
        self.pattern: Pattern = PATTERNS["starting"]
        self.alerts = 0
        self.last_press: str | None = None
        self._led: LedDriver | None = None
        self._button: ButtonWatcher | None = None
        self._override: Pattern | None = None  # a hold's or a status press's pattern, for now
        self._override_task: asyncio.Task[None] | None = None
        self._busy: asyncio.Task[None] | None = None  # the power-off under way

    async def start(self) -> None:
        cfg = self.cfg
        if cfg is not None:
            gpio.check_gpio()
            try:
                if cfg.led_gpio is not None:
                    self._led = LedDriver(gpio.open_led(cfg))
                if cfg.button_gpio is not None:
                    self._button = ButtonWatcher(
                        gpio.open_button(cfg), asyncio.get_running_loop(), self._pressed, self._released
                    )
            except ComponentError:
                await self._close_devices()
                raise
        sub = self.ctx.bus.subscribe(
            PRINTER_EVENT, PRINTER_ADDED_EVENT, PRINTER_REMOVED_EVENT, QUEUE_EVENT, where=_lights_up
        )
        for view in self.ctx.require("printers", PrintersComponent).manager.views():
            self.model.update_view(view["id"], view)
        queue = self.ctx.running("queue", QueueComponent)
        if queue is not None and queue.dispatcher is not None:
            for r in queue.dispatcher.readiness():
                self.model.set_bed(r["id"], bool(r.get("bed_clear")))
        self._refresh(force=True)
        self.ctx.tasks.spawn(self._listen(sub), name="panel-events")

    async def stop(self) -> None:
        await self._close_devices()

    async def _close_devices(self) -> None:
        if self._button is not None:
            self._button.close()
            self._button = None
        if self._led is not None:
            await self._led.close()
            self._led = None

    async def _listen(self, sub: Any) -> None:
        with sub:
            while True:
                self._fold(await sub.get())
                while (event := sub.get_nowait()) is not None:  # a burst: one refresh
                    self._fold(event)
                self._refresh()

    def _fold(self, event: Event) -> None:
        pid = event.printer_id
        if event.kind == PRINTER_EVENT and pid is not None:
            self.model.update_view(pid, event.data.view)
        elif event.kind == PRINTER_ADDED_EVENT and pid is not None:
            view = event.data.get("printer") if isinstance(event.data, dict) else None
            if isinstance(view, dict):
                self.model.update_view(pid, view)
        elif event.kind == PRINTER_REMOVED_EVENT and pid is not None:
            self.model.remove(pid)
        elif event.kind == QUEUE_EVENT and isinstance(event.data, dict):
            r = event.data.get("printer")
            if isinstance(r, dict) and isinstance(r.get("id"), str):
                self.model.set_bed(r["id"], bool(r.get("bed_clear")))

    def _refresh(self, force: bool = False) -> None:
        summary = self.model.summary()
        pattern = self._override or PATTERNS[summary.state]
        if force or pattern != self.pattern or len(summary.alerts) != self.alerts:
            self.pattern, self.alerts = pattern, len(summary.alerts)
            if self._led is not None:
                self._led.show(pattern)
            self.ctx.bus.publish(Event(PANEL_EVENT, None, PanelUpdate(pattern, self.alerts)))

    # --- the button -------------------------------------------------------------------------------

    def _show_for(self, pattern: Pattern | None, seconds: float | None = None) -> None:
        if self._override_task is not None:
            self._override_task.cancel()
            self._override_task = None
        self._override = pattern
        self._refresh()
        if pattern is not None and seconds is not None:
            self._override_task = self.ctx.tasks.spawn(self._clear_after(seconds), name="panel-show")

    async def _clear_after(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
        self._override_task = None
        self._override = None
        self._refresh()

    def _pressed(self) -> None:
        cfg = self.cfg
        assert cfg is not None
        # While held, the LED tells what a release would do now.
        self._show_for(None)
        self._override_task = self.ctx.tasks.spawn(self._hold_feedback(cfg), name="panel-hold")

    async def _hold_feedback(self, cfg: PanelConfig) -> None:
        if cfg.shutdown_hold:
            await asyncio.sleep(cfg.shutdown_hold_s)
            self._override = PATTERNS["hold_shutdown"]
            self._refresh()
            await asyncio.sleep(cfg.setup_hold_s - cfg.shutdown_hold_s)
        else:
            await asyncio.sleep(cfg.setup_hold_s)
        self._override = PATTERNS["hold_setup"]
        self._refresh()

    def _released(self, held_s: float) -> None:
        cfg = self.cfg
        assert cfg is not None
        press = classify_press(held_s, cfg.shutdown_hold_s, cfg.setup_hold_s, cfg.shutdown_hold)
        self.last_press = press
        log.info("panel button held %.1f s: %s", held_s, press)
        self._show_for(None)
        if press == "short":
            if not self.model.acknowledge():
                self._show_for(
                    status_pattern(PATTERNS[self.model.summary().state], self._connected()), STATUS_SHOW_S
                )
            self._refresh()
        elif press == "shutdown":
            if self._busy is None or self._busy.done():
                self._busy = self.ctx.tasks.spawn(self._poweroff(), name="panel-poweroff")
        else:
            self.ctx.store.setup.reopen()
            log.warning(
                "panel button held %.0f s: the web setup is open again to set an admin's password "
                "(users and data are kept); it closes once used, or after an hour",
                held_s,
            )

    def _connected(self) -> int:
        return self.model.summary().connected

    async def _poweroff(self) -> None:
        log.warning(
            "panel button held %.0f s: powering the Pi off", self.cfg.shutdown_hold_s if self.cfg else 0
        )
        self._show_for(PATTERNS["hold_shutdown"])
        try:
            await self.actions.poweroff()
        except (ComponentError, OSError) as e:
            log.error("power-off failed: %s", e)
            self._show_for(None)

    # --- API ------------------------------------------------------------------------------------

    def view(self) -> dict[str, Any]:
        cfg = self.cfg
        return {
            **PanelUpdate(self.pattern, self.alerts).to_json(),
            "led": self._led is not None,
            "button": self._button is not None,
            "last_press": self.last_press,
            "shutdown_hold": bool(cfg and cfg.shutdown_hold),
        }

    def routes(self) -> list[web.RouteDef]:
        return api.routes(lambda: self.ctx.registry.running(self.name))

    def health(self) -> dict[str, Any]:
        return {
            "pattern": self.pattern.name,
            "led": self._led is not None,
            "button": self._button is not None,
        }
