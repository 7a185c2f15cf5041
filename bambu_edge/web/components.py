"""The web server and the WebSocket hub as components.

The web component serves what every component declares (``Registry.routes()``), plus its own
routes (login, users, tokens, health, the OpenAPI document) and the dashboard. The hub comes after
it in the list, so at a stop its clients are told "going away" (1001) before the server closes.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from bambu_edge.component import Component, Context
from bambu_edge.config import WEB_SECTION
from bambu_edge.jobs.components import HistoryComponent, QueueComponent
from bambu_edge.printers.components import PrintersComponent, TempsComponent
from bambu_edge.web import api_auth, api_health, ws
from bambu_edge.web.server import WebService


class WebComponent(Component):
    """Core: the HTTPS API and dashboard (and the plain-HTTP redirect)."""

    name = "web"
    requires = ("store", "printers")
    config_section = WEB_SECTION

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.service: WebService | None = None

    async def start(self) -> None:
        ctx = self.ctx
        history = ctx.running("history", HistoryComponent)
        queue = ctx.running("queue", QueueComponent)
        temps = ctx.running("temps", TempsComponent)
        self.service = WebService(
            ctx.config,
            ctx.store,
            ctx.require("printers", PrintersComponent).manager,
            ctx.bus,
            routes=ctx.registry.routes(),
            history=history.service if history else None,
            queue=queue.dispatcher if queue else None,
            temps=temps.history if temps else None,
            health=ctx.registry.health,
        )
        await self.service.start()

    async def stop(self) -> None:
        if self.service is not None:
            await self.service.stop()

    def routes(self) -> list[web.RouteDef]:
        return [*api_auth.routes(), *api_health.routes()]


class WsHubComponent(Component):
    """``GET /api/ws``: a snapshot, then the bus events of every kind a component declared."""

    name = "ws"
    optional = True
    requires = ("printers",)

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.hub: ws.WsHub | None = None

    async def start(self) -> None:
        manager = self.ctx.require("printers", PrintersComponent).manager
        hub = ws.WsHub(self.ctx.bus, manager, self.ctx.registry.event_kinds(), self.ctx.tasks)
        await hub.start()
        self.hub = hub

    async def stop(self) -> None:
        hub, self.hub = self.hub, None
        if hub is not None:
            await hub.stop()  # WebSockets are closed with 1001 (going away)

    def routes(self) -> list[web.RouteDef]:
        return ws.routes(lambda: self.hub)

    def health(self) -> dict[str, Any]:
        return {"clients": len(self.hub.clients) if self.hub else 0}
