"""The bus events of power control (imported by the queue's dispatcher too: keep it tiny).

``Event(POWER_EVENT, printer_id, PowerState)``: a switch's state or watts changed (the WebSocket
forwards it as ``{"type": "power", "id", "kind", "on", "watts", "reachable", "error"}``).
``Event(WAKE_EVENT, printer_id, WakeRequest)``: the queue wants this switched-off printer for a job.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

POWER_EVENT = "power"
WAKE_EVENT = "power_wake"


@dataclass(frozen=True, slots=True)
class PowerState:
    kind: str  # gpio | shelly | tasmota
    on: bool | None
    watts: float | None
    reachable: bool
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "on": self.on,
            "watts": self.watts,
            "reachable": self.reachable,
            "error": self.error,
        }

    @property
    def known_off(self) -> bool:
        return self.reachable and self.on is False


@dataclass(frozen=True, slots=True)
class WakeRequest:
    job_id: int
