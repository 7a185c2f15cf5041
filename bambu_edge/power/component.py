"""Power control as an optional component: GPIO relays and smart plugs of the printers that have a
``power:`` setting, the ``energy:`` section, and the ``power`` WebSocket event.

It fails (shown in ``GET /api/health``) only when every configured switch failed to open (a GPIO
relay on a machine without a GPIO chip); a plug that does not answer is not a failure: it shows
as unreachable and is asked again.
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web

from bambu_edge.component import Component, ComponentError, Context
from bambu_edge.power import api
from bambu_edge.power.energy import ENERGY_SECTION, EnergyConfig
from bambu_edge.power.events import POWER_EVENT
from bambu_edge.power.rules import PrinterFacts
from bambu_edge.power.service import PowerService, Watch
from bambu_edge.power.starts import EnergyStarts
from bambu_edge.printers.components import PrintersComponent

log = logging.getLogger(__name__)


class PowerComponent(Component):
    name = "power"
    optional = True
    requires = ("printers",)
    config_section = ENERGY_SECTION
    event_kinds = (POWER_EVENT,)

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.energy: EnergyConfig = ctx.section
        self.service: PowerService | None = None

    def _watch(self) -> Watch:
        def browsers() -> int:
            hub = getattr(self.ctx.registry.running("ws"), "hub", None)
            return len(hub.clients) if hub is not None else 0

        def history() -> Any:
            return getattr(self.ctx.registry.running("history"), "service", None)

        def powered_on(printer_id: str) -> None:
            link = self.ctx.require("printers", PrintersComponent).manager.get(printer_id)
            if link is not None:
                # Logged here: the link says so only if it was still waiting (it may have just
                # reconnected on its own).
                log.info("printer %s switched on: its link connects now", printer_id)
                link.reconnect_now()

        def held(printer_id: str) -> bool:
            dispatcher = getattr(self.ctx.registry.running("queue"), "dispatcher", None)
            return dispatcher is not None and dispatcher.power_hold(printer_id)

        return Watch(browsers=browsers, history=history, powered_on=powered_on, held=held)

    async def start(self) -> None:
        settings = {p.id: p.power for p in self.ctx.config.printers if p.power is not None}
        starts = EnergyStarts(self.ctx.store.db)
        await starts.prune()
        service = PowerService(
            settings, self.ctx.bus, self.energy, self.ctx.tasks, self._watch(), starts=starts
        )
        service.start()
        manager = self.ctx.require("printers", PrintersComponent).manager
        for view in manager.views():  # what the printers said before the bus told us
            ctrl = service.controllers.get(view["id"])
            if ctrl is not None:
                ctrl.facts = PrinterFacts.from_view(view)
        failures = service.failures
        if settings and len(failures) == len(settings):
            await service.stop()
            raise ComponentError("; ".join(f"{pid}: {why}" for pid, why in failures.items()))
        self.service = service

    async def stop(self) -> None:
        service, self.service = self.service, None
        if service is not None:
            await service.stop()

    def routes(self) -> list[web.RouteDef]:
        return api.routes(lambda: self.service)

    def health(self) -> dict[str, Any]:
        if self.service is None:
            return {}
        out: dict[str, Any] = {
            "switches": len(self.service.controllers),
            "unreachable": sorted(p for p, c in self.service.controllers.items() if not c.state.reachable),
        }
        if self.service.failures:
            out["switch_errors"] = self.service.failures
        return out
