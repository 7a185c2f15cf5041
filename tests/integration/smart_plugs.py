"""Smart plugs played by small aiohttp servers on loopback, answering as the devices' documented
HTTP APIs do (Shelly's "Gen1 HTTP API" and "Gen2+ RPC over HTTP", Tasmota's "Commands over HTTP").

Each plug has a relay, a load that draws ``watts`` while the relay is on, and an energy counter that
advances with the time the load is on (``wh_per_s`` Wh per second, so a test print of a few seconds
counts a visible amount). ``on_switch`` is called (awaited) when the relay changes: a test powers
a virtual printer up or down there. ``hang`` makes every request wait for ever (a plug that hangs);
``fail_next`` answers that many requests with 503 (a plug whose web server is down for a while).
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web


class SmartPlug:
    kind = ""

    def __init__(
        self,
        *,
        on: bool = False,
        watts: float = 150.0,
        wh_per_s: float = 0.0,
        username: str | None = None,
        password: str | None = None,
    ):
        self.on = on
        self.watts = watts
        self.wh_per_s = wh_per_s
        self.username, self.password = username, password
        self.hang = False
        self.fail_next = 0
        self.on_switch: Callable[[bool], Awaitable[None]] | None = None
        self.requests: list[str] = []
        self._wh = 0.0
        self._on_since = time.monotonic() if on else None
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def energy_wh(self) -> float:
        if self._on_since is None:
            return self._wh
        return self._wh + (time.monotonic() - self._on_since) * self.wh_per_s

    def power_now(self) -> float:
        return self.watts if self.on else 0.0

    async def set_relay(self, on: bool) -> None:
        if on == self.on:
            return
        self._wh = self.energy_wh()
        self.on = on
        self._on_since = time.monotonic() if on else None
        if self.on_switch is not None:
            await self.on_switch(on)

    # --- the server ------------------------------------------------------------------------------

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        self.requests.append(request.path_qs)
        if self.hang:
            await asyncio.Event().wait()
        if self.fail_next > 0:
            self.fail_next -= 1
            return web.Response(status=503, text="503 Service Unavailable")
        return await handler(request)

    def routes(self) -> list[web.RouteDef]:
        raise NotImplementedError

    async def start(self) -> None:
        app = web.Application(middlewares=[self._middleware])
        app.add_routes(self.routes())
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


class ShellyGen1Plug(SmartPlug):
    """A Shelly Plug S (Gen1): HTTP basic authentication when a password is set."""

    kind = "shelly"

    def _authorized(self, request: web.Request) -> bool:
        if self.password is None:
            return True
        expected = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
        return request.headers.get("Authorization") == f"Basic {expected}"

    def routes(self) -> list[web.RouteDef]:
        async def shelly(request: web.Request) -> web.Response:
            # Gen1: no "gen" field; "auth" says whether the other endpoints need a login.
            return web.json_response(
                {
                    "type": "SHPLG-S",
                    "mac": "A4CF12F45A10",
                    "auth": self.password is not None,
                    "fw": "20230913",
                }
            )

        async def relay(request: web.Request) -> web.Response:
            if not self._authorized(request):
                return web.Response(status=401, text="401 Unauthorized")
            turn = request.query.get("turn")
            if turn in ("on", "off"):
                await self.set_relay(turn == "on")
            return web.json_response({"ison": self.on, "has_timer": False, "overpower": False})

        async def status(request: web.Request) -> web.Response:
            if not self._authorized(request):
                return web.Response(status=401, text="401 Unauthorized")
            return web.json_response(
                {
                    "relays": [{"ison": self.on, "has_timer": False, "overpower": False}],
                    # Gen1 meters count watt-minutes.
                    "meters": [
                        {"power": self.power_now(), "is_valid": True, "total": round(self.energy_wh() * 60)}
                    ],
                    "uptime": 1234,
                }
            )

        return [web.get("/shelly", shelly), web.get("/relay/0", relay), web.get("/status", status)]


class ShellyGen2Plug(SmartPlug):
    """A Shelly Plus Plug S (Gen2, RPC over HTTP GET), without authentication."""

    kind = "shelly"

    def __init__(self, *, gen: int = 2, **kw: Any):
        super().__init__(**kw)
        self.gen = gen

    def routes(self) -> list[web.RouteDef]:
        async def shelly(request: web.Request) -> web.Response:
            return web.json_response(
                {
                    "id": "shellyplusplugs-e86beae8b8c8",
                    "model": "SNPL-00112EU",
                    "gen": self.gen,
                    "auth_en": False,
                }
            )

        def status() -> dict[str, Any]:
            return {
                "id": 0,
                "source": "HTTP_in",
                "output": self.on,
                "apower": self.power_now(),
                "voltage": 230.1,
                "aenergy": {
                    "total": round(self.energy_wh(), 3),
                    "by_minute": [0, 0, 0],
                    "minute_ts": int(time.time()),
                },
                "temperature": {"tC": 35.2, "tF": 95.4},
            }

        async def get_status(request: web.Request) -> web.Response:
            if request.query.get("id") != "0":
                return web.json_response(
                    {"code": -105, "message": "Argument 'id', value 1 not found!"}, status=500
                )
            return web.json_response(status())

        async def set_switch(request: web.Request) -> web.Response:
            if request.query.get("id") != "0" or request.query.get("on") not in ("true", "false"):
                return web.json_response({"code": -103, "message": "Invalid argument"}, status=500)
            was_on = self.on
            await self.set_relay(request.query["on"] == "true")
            return web.json_response({"was_on": was_on})

        return [
            web.get("/shelly", shelly),
            web.get("/rpc/Switch.GetStatus", get_status),
            web.get("/rpc/Switch.Set", set_switch),
        ]


class TasmotaPlug(SmartPlug):
    """A Tasmota plug with an energy monitor: ``/cm?cmnd=...``, credentials as ``user``/``password``
    query parameters when a web password is set."""

    kind = "tasmota"

    def routes(self) -> list[web.RouteDef]:
        async def cm(request: web.Request) -> web.Response:
            q = request.query
            if self.password is not None and (
                q.get("user") != self.username or q.get("password") != self.password
            ):
                return web.json_response({"WARNING": "Need user=<username>&password=<password>"})
            command = q.get("cmnd", "").strip().lower()
            if command in ("power on", "power1 on"):
                await self.set_relay(True)
            elif command in ("power off", "power1 off"):
                await self.set_relay(False)
            elif command == "status 8":
                return web.json_response(
                    {
                        "StatusSNS": {
                            "Time": time.strftime("%Y-%m-%dT%H:%M:%S"),
                            "ENERGY": {
                                "TotalStartTime": "2024-01-01T00:00:00",
                                "Total": round(self.energy_wh() / 1000.0, 5),
                                "Yesterday": 0.0,
                                "Today": 0.0,
                                "Power": self.power_now(),
                                "Voltage": 231,
                                "Current": round(self.power_now() / 231, 3),
                            },
                        }
                    }
                )
            elif command != "power":
                return web.json_response({"Command": "Unknown"})
            return web.json_response({"POWER": "ON" if self.on else "OFF"})

        return [web.get("/cm", cm)]
