"""A printer's state across the farm (pure, no I/O).

The owner publishes a retained *snapshot* (the whole view, under a base id) and then, at most every
``FLUSH_S``, a retained *changes* message: everything that differs from that snapshot (cumulative,
not since the last message). So a unit that subscribes late gets both retained messages and is
current at once, a lost QoS 0 message costs nothing (the next one repeats it), and the order of
messages matters only through the base id. When the changes grow to half the snapshot, or the
snapshot is ``SNAPSHOT_MAX_AGE_S`` old, a new snapshot replaces it. Base ids carry a random epoch
per process: a restarted unit never matches its old retained changes to its new snapshot.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import orjson

from bambu_edge.printers.state import _dict_diff, apply_changes

FLUSH_S = 0.5  # at most two messages a second per printer, whatever its report rate
SNAPSHOT_MAX_AGE_S = 600.0


def new_epoch() -> str:
    return os.urandom(4).hex()


def diff(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    return {} if old == new else _dict_diff(old, new)


@dataclass
class Outgoing:
    """The owner's side for one printer: what to publish for its view now."""

    epoch: str = field(default_factory=new_epoch)
    seq: int = 0
    base: dict[str, Any] | None = None
    base_size: int = 0
    base_at: float = 0.0
    sent: dict[str, Any] | None = None  # the changes last published (identical ones are skipped)

    @property
    def base_id(self) -> str:
        return f"{self.epoch}-{self.seq}"

    def reset(self) -> None:
        """A new connection: the next message is a snapshot."""
        self.base = None

    def next(self, view: dict[str, Any], now: float) -> tuple[str, dict[str, Any]] | None:
        """("snapshot", body) or ("changes", body) to publish, None when nothing is new."""
        if self.base is not None and now - self.base_at < SNAPSHOT_MAX_AGE_S:
            changes = diff(self.base, view)
            if changes == self.sent:
                return None
            if len(orjson.dumps(changes)) * 2 < self.base_size:
                self.sent = changes
                return "changes", {"base": self.base_id, "changes": changes}
        self.seq += 1
        self.base, self.base_at, self.sent = view, now, {}
        body = {"base": self.base_id, "view": view}
        self.base_size = len(orjson.dumps(view))
        return "snapshot", body


@dataclass
class Incoming:
    """A receiving unit's side for one remote printer: the snapshot and the newest changes."""

    base_id: str | None = None
    base: dict[str, Any] | None = None
    pending: tuple[str, dict[str, Any]] | None = None  # changes for a snapshot not seen yet
    current: dict[str, Any] | None = None

    def snapshot(self, base_id: str, view: dict[str, Any]) -> dict[str, Any]:
        self.base_id, self.base, self.current = base_id, view, view
        if self.pending is not None and self.pending[0] == base_id:
            self.current = apply_changes(view, self.pending[1])
        self.pending = None
        return self.current

    def changes(self, base_id: str, changes: dict[str, Any]) -> dict[str, Any] | None:
        """The view now, or None when the changes are for a snapshot not seen yet (kept until it
        comes: retained messages of two topics may arrive in either order)."""
        if self.base is None or base_id != self.base_id:
            self.pending = (base_id, changes)
            return None
        self.current = apply_changes(self.base, changes)
        return self.current
