"""Discovery as an optional component: SSDP for Bambu printers, mDNS for units and Moonraker.

It fails (shown in ``GET /api/health``) only when every part the config turns on failed to start;
a part that failed while another runs is reported in its health (``ssdp_error``, ``mdns_error``).
Which printers are configured comes from the bus (the manager's list at start, then
``printer_added`` / ``printer_removed``), never from reaching into the manager later.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from aiohttp import web

from bambu_edge import __version__
from bambu_edge.bus import Event
from bambu_edge.component import Component, ComponentError, Context
from bambu_edge.discovery import api
from bambu_edge.discovery.config import DISCOVERY_SECTION, DiscoveryConfig
from bambu_edge.discovery.ssdp_listener import SsdpListener
from bambu_edge.discovery.table import ConfiguredPrinters, PrinterTable
from bambu_edge.node import NodeComponent
from bambu_edge.printers.bambu.ssdp import Announcement
from bambu_edge.printers.base import PRINTER_ADDED_EVENT, PRINTER_REMOVED_EVENT
from bambu_edge.printers.components import PrintersComponent
from bambu_edge.web.components import WebComponent

if TYPE_CHECKING:
    from bambu_edge.discovery.mdns import Mdns

log = logging.getLogger(__name__)


class DiscoveryComponent(Component):
    name = "discovery"
    optional = True
    requires = ("node", "printers", "web")
    config_section = DISCOVERY_SECTION

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.config: DiscoveryConfig = ctx.section
        self.printers = PrinterTable()
        self.configured = ConfiguredPrinters()
        self.ssdp: SsdpListener | None = None
        self.mdns: Mdns | None = None
        self.mdns_error: str | None = None
        self.running = False

    async def start(self) -> None:
        # Subscribe before reading the list: nothing added in between is missed.
        sub = self.ctx.bus.subscribe(PRINTER_ADDED_EVENT, PRINTER_REMOVED_EVENT)
        for view in self.ctx.require("printers", PrintersComponent).manager.views():
            self.configured.put(view["id"], view)
        self.ctx.tasks.spawn(self._follow(sub), name="discovery-printers")
        failures: list[str] = []
        if self.config.ssdp:
            self.ssdp = SsdpListener(self.config.ssdp_ports, self._announced, self.config.ssdp_interface)
            await self.ssdp.start()
            if not self.ssdp.bound:
                failures.append("; ".join(self.ssdp.errors.values()))
        if self.config.mdns:
            failures.extend(await self._start_mdns())
        enabled = int(self.config.ssdp) + int(self.config.mdns)
        if enabled and len(failures) == enabled:
            raise ComponentError("; ".join(failures))
        self.running = True

    async def _start_mdns(self) -> list[str]:
        # zeroconf is imported only when mDNS is on: a unit without it starts faster.
        from bambu_edge.discovery.mdns import Advertised, Mdns

        web_service = self.ctx.require("web", WebComponent).service
        https_port = web_service.https_port if web_service and web_service.https_port else 0
        node = self.ctx.require("node", NodeComponent).node
        unit = Advertised(node, __version__, https_port, self.ctx.config.web.bind)
        mdns = Mdns(unit, self.ctx.tasks)
        try:
            await mdns.start()
        except OSError as e:
            self.mdns_error = f"mDNS cannot start: {e.strerror or e}"
            log.error("discovery: %s", self.mdns_error)
            await mdns.stop()
            return [self.mdns_error]
        self.mdns = mdns
        return []

    async def _follow(self, sub: Any) -> None:
        with sub:
            async for event in sub:
                self._printer_event(event)

    def _printer_event(self, event: Event) -> None:
        if event.printer_id is None:
            return
        if event.kind == PRINTER_REMOVED_EVENT:
            self.configured.remove(event.printer_id)
        elif isinstance(event.data, dict) and isinstance(event.data.get("printer"), dict):
            self.configured.put(event.printer_id, event.data["printer"])

    def _announced(self, a: Announcement, source: str, wall: float, mono: float) -> None:
        self.printers.seen(a, source, wall, mono)

    async def stop(self) -> None:
        self.running = False
        if self.ssdp is not None:
            await self.ssdp.stop()
        if self.mdns is not None:
            await self.mdns.stop()

    def routes(self) -> list[web.RouteDef]:
        return api.routes(lambda: self if self.running else None)

    def health(self) -> dict[str, Any]:
        out: dict[str, Any] = {"printers_seen": len(self.printers)}
        if self.ssdp is not None:
            out["ssdp_ports"] = list(self.ssdp.bound)
            if self.ssdp.errors:
                out["ssdp_error"] = "; ".join(self.ssdp.errors.values())
            if self.ssdp.multicast_error:
                out["multicast_error"] = self.ssdp.multicast_error
        if self.mdns is not None:
            out["mdns_advertised_on"] = list(self.mdns.advertised_on)
            if self.mdns.advertise_note:
                out["mdns_note"] = self.mdns.advertise_note
        if self.mdns_error:
            out["mdns_error"] = self.mdns_error
        return out
