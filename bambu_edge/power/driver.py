"""What every power switch offers, whatever it is: read its state, switch it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Reading:
    on: bool | None
    watts: float | None = None
    energy_wh: float | None = None  # the meter's running total, when it has one


class PowerDriver(Protocol):
    kind: str  # gpio | shelly | tasmota

    async def read(self) -> Reading:
        """The switch's state now; raises PlugError (plug_http.py) when it cannot tell."""
        ...

    async def switch(self, on: bool) -> Reading:
        """Switch on or off; the state after."""
        ...

    async def close(self) -> None: ...
