"""The other units of the farm and their printers, as this unit sees them (pure, no I/O).

Each remote printer's object is the owner's view plus where it lives: ``node`` (the owner's id, in
every printer object), ``node_name``, ``remote: true``, ``node_online`` and ``read_only``. While its
unit is gone (its last will said offline, or this unit has lost the broker), the printer's link
reads ``offline`` with the reason, so the dashboard shows it as it shows any unreachable printer.

Mutations return ``Change``s: what to publish on this unit's bus for its browsers (only what
changed, as for a local printer).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bambu_edge.farm.printer_sync import Incoming, diff

ONLINE, OFFLINE = "online", "offline"


@dataclass
class Unit:
    node: str
    name: str
    state: str = OFFLINE
    since: float | None = None
    version: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "node": self.node,
            "name": self.name,
            "state": self.state,
            "since": self.since,
            "version": self.version,
        }


@dataclass(frozen=True, slots=True)
class Change:
    """``kind``: "added" (``data`` the whole view), "changed" (``data`` the change set) or
    "removed"."""

    kind: str
    printer_id: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Remote:
    node: str
    sync: Incoming = field(default_factory=Incoming)
    shown: dict[str, Any] | None = None  # the view last given to browsers


class RemoteFarm:
    """``is_local(printer_id)``: a printer of this unit (a remote one with its id is refused)."""

    def __init__(self, node: str, is_local: Callable[[str], bool]):
        self.node = node
        self.is_local = is_local
        self.units: dict[str, Unit] = {}
        self._printers: dict[str, _Remote] = {}
        self.clashes: dict[str, str] = {}  # printer id -> the unit whose printer was refused
        self.broker_up = False

    # --- reading --------------------------------------------------------------------------------

    def views(self) -> list[dict[str, Any]]:
        return [
            r.shown for pid, r in self._printers.items() if r.shown is not None and pid not in self.clashes
        ]

    def view(self, printer_id: str) -> dict[str, Any] | None:
        r = self._printers.get(printer_id)
        return None if r is None or printer_id in self.clashes else r.shown

    def owner(self, printer_id: str) -> str | None:
        r = self._printers.get(printer_id)
        return None if r is None or printer_id in self.clashes else r.node

    def online(self, node: str) -> bool:
        u = self.units.get(node)
        return self.broker_up and u is not None and u.state == ONLINE

    # --- what the broker says -------------------------------------------------------------------

    def status(self, node: str, body: dict[str, Any], now: float) -> list[Change]:
        state = ONLINE if body.get("state") == ONLINE else OFFLINE
        name = body.get("name") if isinstance(body.get("name"), str) else None
        unit = self.units.get(node)
        if unit is None:
            unit = self.units[node] = Unit(node, (name or node)[:100])
        if name:
            unit.name = name[:100]
        if unit.state != state or unit.since is None:
            since = body.get("since")
            unit.since = since if isinstance(since, int | float) and state == ONLINE else now
        unit.state = state
        version = body.get("version")
        unit.version = version[:32] if isinstance(version, str) else None
        return self._refresh(lambda r: r.node == node)

    def snapshot(self, node: str, printer_id: str, base_id: str, view: dict[str, Any]) -> list[Change]:
        r = self._claim(node, printer_id)
        if r is None:
            return []
        r.sync.snapshot(base_id, view)
        return self._show(printer_id, r)

    def changes(self, node: str, printer_id: str, base_id: str, changes: dict[str, Any]) -> list[Change]:
        r = self._claim(node, printer_id)
        if r is None or r.sync.changes(base_id, changes) is None:
            return []
        return self._show(printer_id, r)

    def removed(self, node: str, printer_id: str) -> list[Change]:
        """The owner cleared the printer's retained snapshot: it is gone from the farm."""
        r = self._printers.get(printer_id)
        if r is None or r.node != node:
            return []
        del self._printers[printer_id]
        shown = r.shown is not None and printer_id not in self.clashes
        self.clashes.pop(printer_id, None)
        return [Change("removed", printer_id)] if shown else []

    def broker(self, up: bool) -> list[Change]:
        """This unit's own connection to the broker: without it no unit can be called online."""
        self.broker_up = up
        return self._refresh(lambda r: True)

    # --- internals ------------------------------------------------------------------------------

    def _claim(self, node: str, printer_id: str) -> _Remote | None:
        if node == self.node:
            return None
        if self.is_local(printer_id):
            self.clashes[printer_id] = node
            return None
        r = self._printers.get(printer_id)
        if r is None:
            r = self._printers[printer_id] = _Remote(node)
        elif r.node != node:  # two other units claim one id: the first keeps it
            self.clashes.setdefault(f"{printer_id}@{node}", node)
            return None
        self.units.setdefault(node, Unit(node, node))
        return r

    def _decorate(self, r: _Remote) -> dict[str, Any] | None:
        view = r.sync.current
        if not isinstance(view, dict):
            return None
        unit = self.units.get(r.node) or Unit(r.node, r.node)
        online = self.online(r.node)
        out = {**view, "node": r.node, "node_name": unit.name, "remote": True, "node_online": online}
        out["read_only"] = True
        if not online:
            link = view.get("link") if isinstance(view.get("link"), dict) else {}
            why = (
                "this unit cannot reach the farm broker"
                if not self.broker_up
                else f"its unit {unit.name} is offline"
            )
            out["link"] = {**link, "state": "offline", "since": unit.since, "error": why}
        return out

    def _show(self, printer_id: str, r: _Remote) -> list[Change]:
        new = self._decorate(r)
        if new is None:
            return []
        old, r.shown = r.shown, new
        if old is None:
            return [Change("added", printer_id, new)]
        changes = diff(old, new)
        return [Change("changed", printer_id, changes)] if changes else []

    def _refresh(self, which: Callable[[_Remote], bool]) -> list[Change]:
        out: list[Change] = []
        for pid, r in self._printers.items():
            if which(r) and r.shown is not None:
                out.extend(self._show(pid, r))
        return out

    def health(self) -> dict[str, Any]:
        return {
            "units": {n: u.state for n, u in sorted(self.units.items())},
            "remote_printers": len(self.views()),
            "clashes": [
                f"printer id {pid.split('@')[0]} is used by this unit and by unit {node}"
                if "@" not in pid
                else f"printer id {pid.split('@')[0]} is used by two other units; unit {node}'s is not listed"
                for pid, node in sorted(self.clashes.items())
            ],
        }
