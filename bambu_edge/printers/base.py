"""What every printer link offers the rest of the daemon, whatever the printer speaks."""

from __future__ import annotations

import abc
from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from bambu_edge.printers.state import PrinterState


class LinkState(StrEnum):
    CONNECTING = "connecting"
    CONNECTED = "connected"
    OFFLINE = "offline"
    AUTH_FAILED = "auth_failed"
    TLS_MISMATCH = "tls_mismatch"


class CommandError(Exception):
    """A command that cannot be sent. ``code`` maps to the HTTP answer:
    ``bad_request`` -> 400, ``offline`` -> 409, ``refused``/``timeout`` reach the user as events."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


# Command outcome, published on the bus as Event("command", printer_id, {...}):
#   {"sequence_id": "...", "action": "pause", "result": "success" | "failed" | "timeout",
#    "message": "plain words for the user" | None}
COMMAND_EVENT = "command"
# Printer view changes, published as Event("printer", printer_id, {"changes": {...}}).
PRINTER_EVENT = "printer"
# A printer appeared or its settings changed: Event("printer_added", id, {"printer": view}); the view
# replaces any earlier one. Event("printer_removed", id, {}) when it is gone.
PRINTER_ADDED_EVENT = "printer_added"
PRINTER_REMOVED_EVENT = "printer_removed"


class PrinterLink(abc.ABC):
    """One live connection to one printer. Owned and started by the PrinterManager."""

    state: PrinterState

    @property
    def printer_id(self) -> str:
        return self.state.id

    @abc.abstractmethod
    async def start(self) -> None: ...

    @abc.abstractmethod
    async def stop(self) -> None: ...

    @abc.abstractmethod
    async def send_command(self, action: str, params: Mapping[str, Any]) -> str:
        """Validate and send; return the ``sequence_id``. The printer's answer (or its absence)
        arrives later as a COMMAND_EVENT. Raises CommandError('bad_request' | 'offline')."""

    async def accept_certificate(self) -> None:
        """Trust the certificate the printer now presents (after ``tls_mismatch``)."""
        raise CommandError("bad_request", "this printer has no certificate to accept")
