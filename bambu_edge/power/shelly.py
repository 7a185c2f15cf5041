"""Shelly plugs and relays: Gen1 HTTP and Gen2+ RPC, told apart by ``GET /shelly``.

Gen1 (no ``gen`` field): ``/relay/0?turn=on|off``, ``/status`` with ``relays[0].ison``,
``meters[0].power`` (W) and ``meters[0].total`` (watt-minutes); HTTP basic authentication.
Gen2+ (``"gen": 2`` or more): ``/rpc/Switch.Set?id=0&on=true``, ``/rpc/Switch.GetStatus?id=0`` with
``output``, ``apower`` (W) and ``aenergy.total`` (Wh); HTTP digest authentication, user ``admin``.
"""

from __future__ import annotations

from typing import Any

from bambu_edge.power.driver import Reading
from bambu_edge.power.plug_http import PlugError, PlugHttp
from bambu_edge.power.values import field, num


def gen1_reading(status: Any) -> Reading:
    ison = field(status, "relays", 0, "ison")
    total_wmin = num(field(status, "meters", 0, "total"))
    return Reading(
        on=ison if isinstance(ison, bool) else None,
        watts=num(field(status, "meters", 0, "power"), 0.0, 1e5),
        energy_wh=None if total_wmin is None else total_wmin / 60.0,
    )


def gen2_reading(status: Any) -> Reading:
    output = field(status, "output")
    return Reading(
        on=output if isinstance(output, bool) else None,
        watts=num(field(status, "apower"), -1e5, 1e5),
        energy_wh=num(field(status, "aenergy", "total")),
    )


def generation(info: Any) -> int:
    """``GET /shelly``: Gen1 devices have no ``gen``; later ones say 2, 3, 4..."""
    gen = field(info, "gen")
    if gen is None:
        if not isinstance(info, dict) or ("type" not in info and "mac" not in info):
            raise PlugError("this is not a Shelly device (GET /shelly)")
        return 1
    if isinstance(gen, bool) or not isinstance(gen, int) or gen < 2:
        raise PlugError(f"unknown Shelly generation {gen!r}")
    return gen


class ShellyPlug:
    kind = "shelly"

    def __init__(self, http: PlugHttp):
        self.http = http
        self.gen: int | None = None

    async def _generation(self) -> int:
        if self.gen is None:
            self.gen = generation(await self.http.get_json("/shelly"))
            self.http.digest = self.gen >= 2
        return self.gen

    async def read(self) -> Reading:
        if await self._generation() == 1:
            return gen1_reading(await self.http.get_json("/status"))
        return gen2_reading(await self.http.get_json("/rpc/Switch.GetStatus", {"id": "0"}))

    async def switch(self, on: bool) -> Reading:
        if await self._generation() == 1:
            await self.http.get_json("/relay/0", {"turn": "on" if on else "off"})
        else:
            await self.http.get_json("/rpc/Switch.Set", {"id": "0", "on": "true" if on else "false"})
        return await self.read()

    async def close(self) -> None:
        await self.http.close()
