"""``GET /api/discovery/printers``, ``/nodes`` (DESIGN §4) and ``/moonraker``."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from aiohttp import web

from bambu_edge.discovery.table import printers_json
from bambu_edge.web.api_auth import json_response
from bambu_edge.web.errors import ApiError
from bambu_edge.web.openapi import documented

if TYPE_CHECKING:
    from bambu_edge.discovery.component import DiscoveryComponent

STRING = {"type": "string"}
NULLABLE_STRING = {"type": ["string", "null"]}
PORT = {"type": "integer"}
BOOLEAN = {"type": "boolean"}


def _list_of(**properties: dict) -> dict:
    return {"type": "array", "items": {"type": "object", "properties": properties}}


PRINTERS = _list_of(
    serial=STRING,
    model=NULLABLE_STRING,
    name=NULLABLE_STRING,
    host=STRING,
    seen_at={"type": "number"},
    configured=BOOLEAN,
)
NODES = _list_of(node=STRING, name=STRING, host=STRING, port=PORT, version=NULLABLE_STRING)
MOONRAKER = _list_of(name=STRING, host=STRING, port=PORT, version=NULLABLE_STRING, configured=BOOLEAN)


def routes(component: Callable[[], DiscoveryComponent | None]) -> list[web.RouteDef]:
    def running() -> DiscoveryComponent:
        current = component()
        if current is None:
            raise ApiError(503, "unavailable", "Discovery is not running; see /api/health and the log.")
        return current

    @documented(response=PRINTERS)
    async def printers(request: web.Request) -> web.Response:
        """Bambu printers heard on the LAN (SSDP), for the setup wizard and "add printer".

        `model` is spelled as in the printer object; `host` is the announced address (or the
        packet's source); `seen_at` is the last announcement (epoch seconds); an entry disappears
        after the max-age its printer announced; `configured` says a configured printer has that
        serial."""
        d = running()
        return json_response(printers_json(d.printers.printers(time.monotonic()), d.configured.serials))

    @documented(response=NODES)
    async def nodes(request: web.Request) -> web.Response:
        """Other bambu-edge units found by mDNS (`_bambu-edge._tcp`), not this one."""
        d = running()
        return json_response([p.node_json() for p in d.mdns.nodes.peers()] if d.mdns else [])

    @documented(response=MOONRAKER)
    async def moonraker(request: web.Request) -> web.Response:
        """Moonraker (Klipper) printers found by mDNS (`_moonraker._tcp`, Moonraker's `[zeroconf]`).

        `port` is Moonraker's HTTP port; `configured` says a configured printer uses that host."""
        d = running()
        hosts = d.configured.hosts
        return json_response([p.moonraker_json(hosts) for p in d.mdns.moonraker.peers()] if d.mdns else [])

    return [
        web.get("/api/discovery/printers", printers),
        web.get("/api/discovery/nodes", nodes),
        web.get("/api/discovery/moonraker", moonraker),
    ]
