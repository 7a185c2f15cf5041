"""The web API as the daemon serves it, around a printer manager a test chooses (a fake, or a real
one without the rest of the daemon): every component's routes, a running WebSocket hub forwarding
every declared event kind, and the web service. The daemon wires the same pieces as components
(bambu_edge/app.py); tests/unit/test_components.py checks that the routes and kinds agree."""

from __future__ import annotations

from typing import Any

import aiohttp
from aiohttp import web

from bambu_edge.app import Daemon
from bambu_edge.backup import api as backup_api
from bambu_edge.bus import EventBus
from bambu_edge.camera import api as camera_api
from bambu_edge.config import Config
from bambu_edge.discovery import api as api_discovery
from bambu_edge.fanout import api as fanout_api
from bambu_edge.farm import api as farm_api
from bambu_edge.metrics import api as metrics_api
from bambu_edge.panel import api as panel_api
from bambu_edge.power import api as power_api
from bambu_edge.updates import component as updates
from bambu_edge.usb import api as usb_api
from bambu_edge.web import (
    api_auth,
    api_files,
    api_health,
    api_history,
    api_klipper,
    api_printers,
    api_queue,
    ws,
)
from bambu_edge.web.server import WebService

EVENT_KINDS = Daemon(Config()).event_kinds()


def api_routes(hub: ws.WsHub | None) -> list[web.RouteDef]:
    return [
        *backup_api.routes(lambda: None),
        *api_printers.routes(),
        *api_files.routes(),
        *api_klipper.routes(),
        *api_history.routes(),
        *api_queue.routes(),
        *api_auth.routes(),
        *api_health.routes(),
        *ws.routes(lambda: hub),
        *api_discovery.routes(lambda: None),  # these components' routes answer 503 while absent
        *camera_api.routes(lambda: None),
        *panel_api.routes(lambda: None),
        *usb_api.routes(lambda: None),
        *power_api.routes(lambda: None),  # 503: no power control in the web stack
        *updates.routes(lambda: None),  # the running version only
        *farm_api.routes(lambda: None),  # 503: no farm sync in the web stack
        *fanout_api.routes(lambda: None),
        *metrics_api.routes(lambda: None),
    ]


class WebStack:
    def __init__(self, config: Config, store: Any, manager: Any, bus: EventBus, **services: Any):
        self.hub = ws.WsHub(bus, manager, EVENT_KINDS)
        self.svc = WebService(config, store, manager, bus, routes=api_routes(self.hub), **services)

    async def start(self) -> None:
        await self.hub.start()
        await self.svc.start()

    async def stop(self) -> None:
        await self.hub.stop()  # first, as the daemon does: clients hear "going away" (1001)
        await self.svc.stop()


async def admin_auth(http: aiohttp.ClientSession, base: str, d: Daemon, password: str) -> dict[str, str]:
    """An admin made in ``d``'s store, logged in through the API: its bearer header."""
    await d.store.users.create("admin", password, "admin")
    async with http.post(base + "/api/auth/login", json={"username": "admin", "password": password}) as r:
        assert r.status == 200
        return {"Authorization": f"Bearer {(await r.json())['token']}"}


async def assert_failed_but_serving(
    http: aiohttp.ClientSession, d: Daemon, name: str, error: str, route: str, password: str
) -> None:
    """Optional component ``name`` shows failed with ``error`` in /api/health, its ``route``
    answers 503, and the daemon serves printers all the same."""
    base = f"https://127.0.0.1:{d.web.https_port}"
    async with http.get(base + "/api/health") as r:
        assert (await r.json())["components"][name] == {"state": "failed", "optional": True, "error": error}
    auth = await admin_auth(http, base, d, password)
    async with http.get(base + route, headers=auth) as r:
        assert r.status == 503
    async with http.get(base + "/api/printers", headers=auth) as r:
        assert r.status == 200
