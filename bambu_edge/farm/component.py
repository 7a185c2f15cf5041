"""The farm component: this unit on the farm's MQTT broker when ``farm:`` is configured (DESIGN §7,
docs/farm.md); the work is ``sync.FarmSync``.

``farm: null`` (the default) leaves the component running and idle (``/api/health`` says
``"farm": "off"``, ``GET /api/farm`` says ``enabled: false``), and the sync's code is never loaded:
a unit that is not in a farm does not carry it (~0.9 MB of a Zero 2 W's memory).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from bambu_edge.component import Component, Context
from bambu_edge.farm.config import FARM_SECTION, FarmConfig
from bambu_edge.farm.events import KINDS
from bambu_edge.node import NodeComponent, NodeConfig

if TYPE_CHECKING:
    from bambu_edge.farm.sync import FarmSync


class FarmComponent(Component):
    name = "farm"
    optional = True
    requires = ("node", "store", "printers")
    config_section = FARM_SECTION
    event_kinds = KINDS

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.cfg: FarmConfig | None = ctx.section
        self.node: NodeConfig = ctx.require("node", NodeComponent).node
        self.sync: FarmSync | None = None

    async def start(self) -> None:
        if self.cfg is None:
            return
        from bambu_edge.farm.sync import FarmSync

        self.sync = FarmSync(self.ctx, self.cfg, self.node)
        await self.sync.start()

    async def stop(self) -> None:
        if self.sync is not None:
            await self.sync.stop()

    def health(self) -> dict[str, Any]:
        return {"farm": "off"} if self.sync is None else self.sync.health()

    def routes(self) -> list[web.RouteDef]:
        from bambu_edge.farm.api import routes

        return routes(lambda: self if self.ctx.registry.running(self.name) is self else None)

    def farm_json(self) -> dict[str, Any]:
        """``GET /api/farm`` and the ``farm`` WebSocket frame."""
        if self.sync is not None:
            return self.sync.farm_json()
        return {
            "node": self.node.id,
            "name": self.node.name,
            "enabled": False,
            "broker": {"url": None, "connected": False, "error": None},
            "units": [],
            "clashes": [],
        }
