"""``GET /api/fanout`` (admin, DESIGN §4): the endpoint's port and each printer's access code and
allowed command groups; an admin rotates a code or changes what its clients may send."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from bambu_edge.fanout.policy import GRANT_NAMES, check_grants
from bambu_edge.web.api_auth import json_response, require_admin
from bambu_edge.web.errors import ApiError, bad
from bambu_edge.web.openapi import documented
from bambu_edge.web.params import read_json

if TYPE_CHECKING:
    from bambu_edge.fanout.component import FanoutComponent

ENTRY = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "serial": {"type": "string"},
        "access_code": {
            "type": "string",
            "description": "what clients log in with as bblp (not the printer's)",
        },
        "grants": {"type": "array", "items": {"type": "string", "enum": list(GRANT_NAMES)}},
    },
}
OVERVIEW = {
    "type": "object",
    "properties": {
        "port": {"type": ["integer", "null"], "description": "null: the endpoint is off or failed"},
        "bind": {
            "type": ["string", "null"],
            "description": "the address it listens on (0.0.0.0: all of the unit's); null when off",
        },
        "printers": {"type": "array", "items": ENTRY},
        "groups": {"type": "array", "items": {"type": "string"}, "description": "grantable command groups"},
    },
}


def routes(component: Callable[[], FanoutComponent | None]) -> list[web.RouteDef]:
    """``component()`` is the FanoutComponent, running or not (None: absent, then 503)."""

    def present() -> FanoutComponent:
        comp = component()
        if comp is None:
            raise ApiError(
                503, "unavailable", "The fan-out endpoint is not running; see /api/health and the log."
            )
        return comp

    def running() -> FanoutComponent:
        comp = present()
        if not comp.enabled:
            raise ApiError(409, "fanout_off", "The fan-out endpoint is off (fanout: in the config).")
        if comp.bridge is None or comp.access is None:
            raise ApiError(
                503, "unavailable", "The fan-out endpoint is not running; see /api/health and the log."
            )
        return comp

    async def entry(request: web.Request) -> dict[str, Any]:
        pid = request.match_info["id"]
        for e in await present().entries():
            if e["id"] == pid:
                return e
        raise ApiError(404, "not_found", f"No printer {pid!r} on the fan-out endpoint.")

    @documented(response=OVERVIEW)
    async def overview(request: web.Request) -> web.Response:
        """The endpoint's port and, per printer, the access code its clients log in with as `bblp`
        (made by bambu-edge, never the printer's own) and what they may send (admin)."""
        require_admin(request)
        comp = present()
        up = comp.enabled and comp.bridge is not None
        return json_response(
            {
                "port": comp.port if up else None,
                "bind": comp.cfg.bind if up and comp.cfg is not None else None,
                "printers": await comp.entries() if up else [],
                "groups": list(GRANT_NAMES),
            }
        )

    @documented(response=ENTRY)
    async def rotate(request: web.Request) -> web.Response:
        """A new access code for this printer's endpoint clients; those logged in with the old one
        are disconnected (admin)."""
        require_admin(request)
        c = running()
        await entry(request)
        await c.rotate(request.match_info["id"])
        return json_response(await entry(request))

    @documented(
        body={
            "type": "object",
            "required": ["grants"],
            "properties": {
                "grants": {"type": "array", "items": {"type": "string", "enum": list(GRANT_NAMES)}}
            },
        },
        response=ENTRY,
    )
    async def set_grants(request: web.Request) -> web.Response:
        """Which command groups this printer's endpoint clients may send (admin); [] is read-only:
        status, pushall and version queries only."""
        require_admin(request)
        c = running()
        await entry(request)
        body = await read_json(request)
        grants = body.get("grants")
        if not isinstance(grants, list):
            raise bad("grants must be a list of command groups: " + ", ".join(GRANT_NAMES))
        try:
            checked = check_grants(grants)
        except ValueError as e:
            raise bad(str(e)) from None
        await c.set_grants(request.match_info["id"], checked)
        return json_response(await entry(request))

    return [
        web.get("/api/fanout", overview),
        web.post("/api/fanout/printers/{id}/rotate", rotate),
        web.put("/api/fanout/printers/{id}", set_grants),
    ]
