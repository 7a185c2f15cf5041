"""Tasmota plugs over HTTP: ``/cm?cmnd=Power%20On``, ``/cm?cmnd=Status%208`` for the energy
meter (``StatusSNS.ENERGY.Power`` in W, ``Total`` in kWh); credentials as ``user`` / ``password``
query parameters (Tasmota's web password)."""

from __future__ import annotations

from typing import Any

from bambu_edge.power.driver import Reading
from bambu_edge.power.plug_http import PlugError, PlugHttp
from bambu_edge.power.values import field, num


def power_state(answer: Any) -> bool | None:
    """``{"POWER": "ON"}`` (one relay) or ``{"POWER1": "OFF"}``."""
    if isinstance(answer, dict):
        for key in ("POWER", "POWER1"):
            v = answer.get(key)
            if isinstance(v, str) and v.upper() in ("ON", "OFF"):
                return v.upper() == "ON"
    return None


def energy_reading(on: bool | None, status8: Any) -> Reading:
    total_kwh = num(field(status8, "StatusSNS", "ENERGY", "Total"))
    return Reading(
        on=on,
        watts=num(field(status8, "StatusSNS", "ENERGY", "Power"), 0.0, 1e5),
        energy_wh=None if total_kwh is None else total_kwh * 1000.0,
    )


class TasmotaPlug:
    kind = "tasmota"

    def __init__(self, http: PlugHttp):
        self.http = http
        # Tasmota wants its credentials in the query, not in an Authorization header.
        self._creds = {"user": http.username or "admin", "password": http.password} if http.password else {}
        http.password = None

    async def _cmnd(self, command: str) -> Any:
        answer = await self.http.get_json("/cm", {**self._creds, "cmnd": command})
        if isinstance(answer, dict) and answer.get("WARNING"):
            raise PlugError(f"the plug says: {answer['WARNING']}")  # e.g. "Need user=<username>&password=..."
        return answer

    async def _energy(self, on: bool | None) -> Reading:
        status8 = await self._cmnd("Status 8")
        return energy_reading(on, status8)

    async def read(self) -> Reading:
        return await self._energy(power_state(await self._cmnd("Power")))

    async def switch(self, on: bool) -> Reading:
        return await self._energy(power_state(await self._cmnd("Power On" if on else "Power Off")))

    async def close(self) -> None:
        await self.http.close()
