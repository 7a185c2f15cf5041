"""``GET /api/farm``: this unit, its broker connection and the other units it has heard of."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from bambu_edge.web.api_auth import json_response
from bambu_edge.web.errors import ApiError
from bambu_edge.web.openapi import documented

if TYPE_CHECKING:
    from bambu_edge.farm.component import FarmComponent

UNIT = {
    "type": "object",
    "properties": {
        "node": {"type": "string"},
        "name": {"type": "string"},
        "state": {"type": "string", "enum": ["online", "offline"]},
        "since": {"type": ["number", "null"]},
        "version": {"type": ["string", "null"]},
    },
}
FARM = {
    "type": "object",
    "properties": {
        "node": {"type": "string"},
        "name": {"type": "string"},
        "enabled": {"type": "boolean"},
        "broker": {
            "type": "object",
            "properties": {
                "url": {"type": ["string", "null"]},
                "connected": {"type": "boolean"},
                "error": {"type": ["string", "null"]},
            },
        },
        "units": {"type": "array", "items": UNIT},
        "clashes": {"type": "array", "items": {"type": "string"}},
    },
}


def routes(component: Callable[[], FarmComponent | None]) -> list[web.RouteDef]:
    @documented(response=FARM)
    async def get_farm(request: web.Request) -> web.Response:
        """This unit (`node`), whether it reaches the farm broker, and the other units it knows of
        (`online`, or `offline`: gone, by their last will or a clean stop)."""
        comp = component()
        if comp is None:
            raise ApiError(503, "unavailable", "Farm sync is not running; see the log.")
        body: dict[str, Any] = comp.farm_json()
        return json_response(body)

    return [web.get("/api/farm", get_farm)]
