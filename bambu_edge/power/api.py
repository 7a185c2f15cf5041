"""``GET/POST /api/printers/{id}/power`` (DESIGN §4) and ``GET /api/power`` (every switch, and the
energy price for the dashboard)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from bambu_edge.power.rules import refuse_off
from bambu_edge.web.api_auth import json_response
from bambu_edge.web.errors import ApiError, bad
from bambu_edge.web.openapi import documented
from bambu_edge.web.params import read_json

if TYPE_CHECKING:
    from bambu_edge.power.service import PlugController, PowerService

STATE = {
    "type": "object",
    "properties": {
        "kind": {"type": "string", "enum": ["gpio", "shelly", "tasmota"]},
        "on": {"type": ["boolean", "null"]},
        "watts": {"type": ["number", "null"]},
        "reachable": {"type": "boolean"},
        "error": {"type": ["string", "null"]},
    },
}
OVERVIEW = {
    "type": "object",
    "properties": {
        "energy": {
            "type": "object",
            "properties": {
                "price_per_kwh": {"type": ["number", "null"]},
                "currency": {"type": ["string", "null"]},
            },
        },
        "printers": {"type": "object", "additionalProperties": STATE},
    },
}


def routes(service: Callable[[], PowerService | None]) -> list[web.RouteDef]:
    def running() -> PowerService:
        current = service()
        if current is None:
            raise ApiError(503, "unavailable", "Power control is not running; see /api/health and the log.")
        return current

    def controller(request: web.Request) -> tuple[PowerService, PlugController]:
        svc = running()
        ctrl = svc.controllers.get(request.match_info["id"])
        if ctrl is None:
            raise ApiError(404, "not_found", "This printer has no power control (power: in the config).")
        return svc, ctrl

    @documented(response=OVERVIEW)
    async def overview(request: web.Request) -> web.Response:
        """Every printer's power switch as last read (no plug is asked), and the energy price."""
        svc = running()
        return json_response(
            {
                "energy": {"price_per_kwh": svc.energy.price_per_kwh, "currency": svc.energy.currency},
                "printers": {pid: c.state.to_json() for pid, c in svc.controllers.items()},
            }
        )

    @documented(response=STATE)
    async def get_power(request: web.Request) -> web.Response:
        """The printer's power switch, read now: within 10 s even from a plug that hangs (then
        `reachable` is false and `error` says why)."""
        svc, ctrl = controller(request)
        return json_response((await svc.read(ctrl.printer_id)).to_json())

    @documented(
        body={
            "type": "object",
            "required": ["on"],
            "properties": {"on": {"type": "boolean"}, "confirm": {"type": "boolean"}},
        },
        response=STATE,
    )
    async def set_power(request: web.Request) -> web.Response:
        """Switch the printer on or off; the state after.

        409 `printing` when switching off a connected printer whose state is not IDLE, FINISH or
        FAILED, unless `confirm` is true; an offline printer may be switched off."""
        svc, ctrl = controller(request)
        body: dict[str, Any] = await read_json(request)
        on, confirm = body.get("on"), body.get("confirm", False)
        if not isinstance(on, bool):
            raise bad("on must be true or false")
        if not isinstance(confirm, bool):
            raise bad("confirm must be true or false")
        if not on:
            why = refuse_off(ctrl.facts, confirm)
            if why is not None:
                raise ApiError(409, "printing", why[:1].upper() + why[1:] + ".")
        if ctrl.driver is None:
            raise ApiError(409, "unavailable", f"The switch cannot be used: {ctrl.state.error}.")
        return json_response((await svc.switch(ctrl.printer_id, on)).to_json())

    return [
        web.get("/api/power", overview),
        web.get("/api/printers/{id}/power", get_power),
        web.post("/api/printers/{id}/power", set_power),
    ]
