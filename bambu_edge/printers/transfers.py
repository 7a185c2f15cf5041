"""Progress of a file moving to or from a printer's storage, as ``transfer`` bus events (forwarded
to WebSockets), at most every TRANSFER_EVENT_INTERVAL per transfer plus the final one::

    {"path", "direction": "upload"|"download", "done", "total" (None if unknown),
     "state": "running"|"done"|"failed", "error": str|None}

Used by the file browser's API and by the queue's dispatcher when it sends a job's file.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from bambu_edge.bus import Event, EventBus

TRANSFER_EVENT = "transfer"
TRANSFER_EVENT_INTERVAL = 0.25  # seconds: at most ~4 progress events per second per transfer


class TransferReporter:
    """Publishes one transfer's progress on the bus, throttled; always the final state."""

    def __init__(
        self,
        bus: EventBus,
        printer_id: str,
        path: str,
        direction: str,
        total: int | None,
        *,
        interval: float = TRANSFER_EVENT_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.bus, self.printer_id, self.path, self.direction = bus, printer_id, path, direction
        self.total = total
        self.interval = interval
        self.clock = clock
        self.done = 0
        self._last = -1e9
        self.finished = False

    def _publish(self, state: str, error: str | None = None) -> None:
        data = {
            "path": self.path,
            "direction": self.direction,
            "done": self.done,
            "total": self.total,
            "state": state,
            "error": error,
        }
        self.bus.publish(Event(TRANSFER_EVENT, self.printer_id, data))

    def progress(self, done: int, total: int) -> None:
        """The PrinterFiles progress callback (on the loop): ``total`` 0 means unknown."""
        if self.finished:
            return
        self.done = done
        if total:
            self.total = total
        now = self.clock()
        if now - self._last >= self.interval:
            self._last = now
            self._publish("running")

    def succeeded(self, done: int) -> None:
        if not self.finished:
            self.finished = True
            self.done = done
            self.total = done
            self._publish("done")

    def failed(self, error: str) -> None:
        if not self.finished:
            self.finished = True
            self._publish("failed", error)
