"""What a Moonraker link needs to know about its printer: where it is and how to get in."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class MoonrakerSettings:
    id: str  # the program's name for the printer (logs, events)
    name: str  # for people
    host: str
    port: int = 7125
    api_key: str | None = field(default=None, repr=False)  # never logged
    # The light command: G-code macros (one for on, one for off) or a Moonraker power device.
    light_macro_on: str | None = None
    light_macro_off: str | None = None
    light_power_device: str | None = None
    # What the queue matches a job against (Klipper reports neither): set per printer.
    nozzle_diameter: float | None = None
    filament_type: str | None = None
    filament_color: str | None = None  # "#RRGGBB" or "#RRGGBBAA"
