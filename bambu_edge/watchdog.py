"""systemd's watchdog pings and the status line (``systemctl status``) as a component."""

from __future__ import annotations

from bambu_edge import sdnotify
from bambu_edge.component import Component
from bambu_edge.printers.base import PRINTER_EVENT, LinkState
from bambu_edge.printers.components import PrintersComponent
from bambu_edge.printers.manager import PrinterManager


def status_line(manager: PrinterManager | None) -> str:
    links = manager.links() if manager else []
    connected = sum(1 for link in links if link.state.view()["link"]["state"] == LinkState.CONNECTED)
    return f"{len(links)} printers, {connected} connected"


class SystemdComponent(Component):
    """Does nothing without systemd (no NOTIFY_SOCKET): ``sdnotify`` then sends nothing."""

    name = "systemd"
    optional = True
    requires = ("printers",)

    async def start(self) -> None:
        interval = sdnotify.watchdog_interval()
        if interval:
            self.ctx.tasks.spawn(sdnotify.watchdog_loop(interval), name="watchdog")
        self.ctx.tasks.spawn(self._status_loop(), name="sd-status")

    async def _status_loop(self) -> None:
        # systemctl status shows how many printers are up; updated only when a link changes.
        manager = self.ctx.require("printers", PrintersComponent).manager
        with self.ctx.bus.subscribe(PRINTER_EVENT, maxsize=64) as sub:
            last = ""
            while True:
                event = await sub.get()
                if "link" not in event.data.changes:
                    continue
                line = status_line(manager)
                if line != last:
                    sdnotify.notify(f"STATUS={line}")
                    last = line
