"""``GET /metrics`` (DESIGN §4): without login from loopback only (a Prometheus on the Pi, or an
SSH tunnel); from anywhere else a Bearer token (``bambu-edge token create prometheus``) or a
session, else 401. Behind a reverse proxy on the Pi every scrape comes from loopback: let the
proxy ask for the token, or leave /metrics out of it."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import TYPE_CHECKING

from aiohttp import web

from bambu_edge.metrics.exposition import CONTENT_TYPE
from bambu_edge.web.api_auth import AUTH
from bambu_edge.web.errors import ApiError
from bambu_edge.web.openapi import documented

if TYPE_CHECKING:
    from bambu_edge.metrics.component import MetricsComponent


def is_loopback(remote: str | None) -> bool:
    try:
        addr = ipaddress.ip_address((remote or "").split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return addr.is_loopback


def routes(component: Callable[[], MetricsComponent | None]) -> list[web.RouteDef]:
    # "public" in the API description: no login from loopback (every other address needs a token).
    @documented(media_type="text/plain", public=True)
    async def metrics(request: web.Request) -> web.Response:
        """Prometheus text exposition: printers, daemon, queue, history. Without login from
        loopback only; from elsewhere with a token."""
        if request.get(AUTH) is None and not is_loopback(request.remote):
            raise ApiError(401, "unauthorized", "From another host, /metrics needs a token (Bearer).")
        comp = component()
        if comp is None:
            raise ApiError(503, "unavailable", "Metrics are not running; see /api/health and the log.")
        body = await comp.exposition()
        return web.Response(body=body.encode(), headers={"Content-Type": CONTENT_TYPE})

    return [web.get("/metrics", metrics)]
