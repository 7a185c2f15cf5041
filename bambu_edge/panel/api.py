"""``GET /api/panel``: the status LED's current pattern (what the dashboard's header shows)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web

from bambu_edge.web.api_auth import json_response
from bambu_edge.web.errors import ApiError
from bambu_edge.web.openapi import documented

PANEL_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "pattern": {
            "type": "string",
            "enum": [
                "starting",
                "ok",
                "printing",
                "attention",
                "error",
                "status",
                "hold_shutdown",
                "hold_setup",
            ],
        },
        "color": {"type": "string", "description": "#rrggbb an RGB LED shows while lit"},
        "steps": {
            "type": "array",
            "items": {"type": "array", "prefixItems": [{"type": "boolean"}, {"type": "number"}]},
            "description": "[lit, seconds] pairs, repeated",
        },
        "alerts": {"type": "integer", "description": "alerts not yet acknowledged with a short press"},
        "led": {"type": "boolean"},
        "button": {"type": "boolean"},
        "last_press": {"type": ["string", "null"], "enum": ["short", "shutdown", "setup", None]},
        "shutdown_hold": {"type": "boolean"},
    },
}


def routes(panel: Callable[[], Any]) -> list[web.RouteDef]:
    """``panel()`` is the running PanelComponent, or None (then 503)."""

    @documented(response=PANEL_SCHEMA)
    async def get_panel(request: web.Request) -> web.Response:
        """The status LED's pattern now (also computed without an LED); `panel` WebSocket events
        carry the same fields when it changes."""
        current = panel()
        if current is None:
            raise ApiError(503, "unavailable", "The panel is not running; see GET /api/health.")
        return json_response(current.view())

    return [web.get("/api/panel", get_panel)]
