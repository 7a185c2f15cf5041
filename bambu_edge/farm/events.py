"""Bus events the farm publishes for this unit's browsers.

Remote printers' changes travel on kinds of their own (``farm_printer``, ...), so the services that
act on this unit's printers (history, queue, power, panel) never see them; at the WebSocket they
become the same frames a local printer's do (``type`` "printer", "printer_added",
"printer_removed", "command", "history"), so the dashboard needs nothing new to show them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

FARM_PRINTER = "farm_printer"
FARM_PRINTER_ADDED = "farm_printer_added"
FARM_PRINTER_REMOVED = "farm_printer_removed"
FARM_COMMAND = "farm_command"
FARM_HISTORY = "farm_history"
FARM_UNITS = "farm"  # {"type": "farm", "units": [...], "broker": {...}}: units came or went

KINDS = (FARM_PRINTER, FARM_PRINTER_ADDED, FARM_PRINTER_REMOVED, FARM_COMMAND, FARM_HISTORY, FARM_UNITS)


@dataclass(frozen=True, slots=True)
class Frame:
    """A payload shown to browsers as a frame of ``type`` (overriding the bus kind)."""

    type: str
    body: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {**self.body, "type": self.type}
