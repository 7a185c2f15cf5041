"""What discovery has seen, in memory and bounded: no I/O, times handed in.

A LAN can carry any number of forged announcements: the tables hold at most ``limit`` entries and
make room by dropping the entry heard from longest ago, so memory stays flat under a flood.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from bambu_edge.printers.bambu.ssdp import Announcement

MAX_PRINTERS = 256


@dataclass(frozen=True, slots=True)
class SeenPrinter:
    serial: str
    model: str | None
    name: str | None
    host: str
    seen_at: float  # epoch seconds of the last announcement
    expires: float  # monotonic seconds: seen + the packet's max-age


class PrinterTable:
    """Bambu printers by serial, from their SSDP announcements; an entry lives its max-age."""

    def __init__(self, limit: int = MAX_PRINTERS):
        self.limit = limit
        self._by_serial: dict[str, SeenPrinter] = {}

    def seen(self, a: Announcement, source: str, wall: float, mono: float) -> None:
        """Record ``a``, received from ``source`` (the packet's address), at ``wall``/``mono``."""
        if len(self._by_serial) >= self.limit:
            self._purge(mono)
        # Re-inserted on every announcement: the dict's order is the order they were last heard.
        if self._by_serial.pop(a.serial, None) is None and len(self._by_serial) >= self.limit:
            del self._by_serial[next(iter(self._by_serial))]
        self._by_serial[a.serial] = SeenPrinter(
            serial=a.serial,
            model=a.model,
            name=a.name,
            host=a.host or source,
            seen_at=wall,
            expires=mono + a.max_age_s,
        )

    def _purge(self, mono: float) -> None:
        for serial in [s for s, p in self._by_serial.items() if p.expires <= mono]:
            del self._by_serial[serial]

    def printers(self, mono: float) -> list[SeenPrinter]:
        """The live entries, by name then serial."""
        self._purge(mono)
        return sorted(self._by_serial.values(), key=lambda p: ((p.name or "").lower(), p.serial))

    def __len__(self) -> int:
        return len(self._by_serial)


def printers_json(printers: Iterable[SeenPrinter], configured_serials: set[str]) -> list[dict[str, Any]]:
    """``GET /api/discovery/printers`` (DESIGN §4)."""
    known = {s.upper() for s in configured_serials}
    return [
        {
            "serial": p.serial,
            "model": p.model,
            "name": p.name,
            "host": p.host,
            "seen_at": p.seen_at,
            "configured": p.serial in known,
        }
        for p in printers
    ]


class ConfiguredPrinters:
    """The configured printers' serials and hosts by printer id, kept from their views (the
    manager's list at start, then ``printer_added`` / ``printer_removed`` events)."""

    def __init__(self) -> None:
        self._by_id: dict[str, tuple[str, str]] = {}

    def put(self, printer_id: str, view: Mapping[str, Any]) -> None:
        serial, host = view.get("serial"), view.get("host")
        self._by_id[printer_id] = (
            serial if isinstance(serial, str) else "",
            host if isinstance(host, str) else "",
        )

    def remove(self, printer_id: str) -> None:
        self._by_id.pop(printer_id, None)

    @property
    def serials(self) -> set[str]:
        return {serial for serial, _ in self._by_id.values() if serial}

    @property
    def hosts(self) -> set[str]:
        return {host for _, host in self._by_id.values() if host}
