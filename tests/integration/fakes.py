"""A stand-in printer manager for the web API tests that need no printer behind the API (routes,
auth, security headers, the queue API's validation). Where a printer matters, the tests run the
virtual printer against mosquitto instead."""

from __future__ import annotations

from typing import Any

from bambu_edge.config import PrinterConfig
from bambu_edge.printers.base import CommandError

ADMIN, PASSWORD = "admin", "correct horse battery"


class FakeState:
    def __init__(self, printer_id: str, link_state: str):
        self.id = printer_id
        self._view = {
            "id": printer_id,
            "name": printer_id.upper(),
            "link": {"state": link_state, "since": 1.0, "error": None},
            "temps": {
                "nozzle": {"current": 200.0, "target": 210.0},
                "bed": {"current": 50.0, "target": 55.0},
            },
        }

    def view(self) -> dict[str, Any]:
        return self._view


class FakeLink:
    def __init__(self, printer_id: str, online: bool = True):
        self.state = FakeState(printer_id, "connected" if online else "offline")
        self.online = online
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.accepted = 0

    @property
    def printer_id(self) -> str:
        return self.state.id

    async def send_command(self, action: str, params: dict[str, Any]) -> str:
        if not self.online:
            raise CommandError("offline", "the printer is offline")
        self.calls.append((action, dict(params)))
        return str(1000 + len(self.calls))

    async def accept_certificate(self) -> None:
        self.accepted += 1


class FakeManager:
    def __init__(self, *links: FakeLink):
        self._links = {link.printer_id: link for link in links}

    def get(self, printer_id: str) -> FakeLink | None:
        return self._links.get(printer_id)

    def links(self) -> list[FakeLink]:
        return list(self._links.values())

    def view(self, printer_id: str) -> dict[str, Any] | None:
        link = self._links.get(printer_id)
        return {**link.state.view(), "read_only": True} if link else None

    def config_of(self, printer_id: str) -> PrinterConfig | None:
        if printer_id not in self._links:
            return None
        return PrinterConfig(id=printer_id, name=printer_id.upper(), type="bambu", host="127.0.0.1")

    def views(self) -> list[dict[str, Any]]:
        return [v for pid in self._links if (v := self.view(pid))]

    # A unit without a farm: the whole farm is this unit's printers.
    remote = None

    def farm_views(self) -> list[dict[str, Any]]:
        return self.views()

    def farm_view(self, printer_id: str) -> dict[str, Any] | None:
        return self.view(printer_id)
