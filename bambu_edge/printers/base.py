"""What every printer link offers the rest of the daemon, whatever the printer speaks."""

from __future__ import annotations

import abc
import asyncio
import contextlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from bambu_edge.printers.backoff import Backoff
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


# Command outcome, published on the bus as Event("command", printer_id, CommandOutcome).
COMMAND_EVENT = "command"
# Printer view changes, published as Event("printer", printer_id, PrinterUpdate).
PRINTER_EVENT = "printer"
# At most one warning a minute about the same stream of bad input (reports, records): a printer
# sending junk must not flood the journal (the SD card).
WARN_INTERVAL_S = 60.0
# A printer appeared or its settings changed: Event("printer_added", id, {"printer": view}); the view
# replaces any earlier one. Event("printer_removed", id, {}) when it is gone.
PRINTER_ADDED_EVENT = "printer_added"
PRINTER_REMOVED_EVENT = "printer_removed"


@dataclass(frozen=True, slots=True)
class JobIdentity:
    """What tells one print job from another beyond what the view shows: the printer's task,
    subtask and job ids ("0"/"" are None: LAN prints have none), when the job started (Unix
    seconds) and the numeric print error. Parsed once, where the report is folded."""

    task_id: str | None = None
    subtask_id: str | None = None
    job_id: str | None = None
    start_time: int | None = None
    print_error: int | None = None


NO_IDENTITY = JobIdentity()


@dataclass(frozen=True, slots=True)
class PrinterUpdate:
    """What one printer report or link change did: the view sections that changed and the whole
    view after it. Views are immutable snapshots (never mutated once made), so subscribers read
    state from here instead of reaching back into the link, and nothing is parsed twice."""

    changes: Mapping[str, Any]
    view: Mapping[str, Any]
    report: bool = False  # made by a message from the printer (not a link-state change)
    full: bool = False  # a full report (push_status msg 0): every section as the printer sees it
    identity: JobIdentity = NO_IDENTITY  # the job's identity after this update

    def to_json(self) -> dict[str, Any]:
        return {"changes": self.changes}


@dataclass(frozen=True, slots=True)
class CommandOutcome:
    """The printer's answer to a command we sent, or its absence."""

    sequence_id: str
    action: str
    result: str  # "success" | "failed" | "timeout"
    message: str | None = None  # plain words for the user

    def to_json(self) -> dict[str, Any]:
        return {
            "sequence_id": self.sequence_id,
            "action": self.action,
            "result": self.result,
            "message": self.message,
        }


class LinkListener(Protocol):
    """Where a link reports what happened (the daemon turns these into bus events: printers/manager.py).
    Called on the event loop; must not block."""

    def on_update(self, printer_id: str, update: PrinterUpdate) -> None:
        """The printer's view changed (a report, or the link's own state)."""
        ...

    def on_command(self, printer_id: str, outcome: CommandOutcome) -> None:
        """The printer answered a command we sent, or did not in time."""
        ...

    def on_report(self, printer_id: str, payload: bytes, msg: dict[str, Any]) -> None:
        """Every message the printer sent, as received (``payload``) and decoded once (``msg``, not
        to be modified): for relaying it unchanged (the fan-out endpoint). Called before the
        message is folded; must be cheap."""
        ...


class PrinterLogger(logging.LoggerAdapter):
    """A logger that tags every line with the printer id (``extra["printer_id"]``; the daemon's
    log setup turns it into the journal field PRINTER_ID)."""

    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        kwargs.setdefault("extra", {})["printer_id"] = self.extra["printer_id"]  # type: ignore[index]
        return msg, kwargs


def printer_logger(name: str, printer_id: str) -> PrinterLogger:
    return PrinterLogger(logging.getLogger(name), {"printer_id": printer_id})


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

    @abc.abstractmethod
    def reconnect_now(self) -> None:
        """Connect again at once, from the start of the backoff schedule: the printer has just been
        switched on, so the wait the last failures earned (up to a minute) is no longer needed."""


class ReconnectingLink(PrinterLink):
    """The connection loop the Bambu and Moonraker links share: one attempt at a time, forever; an
    attempt returns how long to wait before the next; a bug in one is shown and retried, never the
    end of the link; ``_wake`` (set by reconnect_now, accept_certificate) cuts a wait short."""

    backoff: Backoff
    log: PrinterLogger
    _wake: asyncio.Event

    @abc.abstractmethod
    async def _attempt(self) -> float:
        """One connection, until it ends; how long to wait before the next."""

    @abc.abstractmethod
    def _set_link(self, state: LinkState, error: str | None = None) -> None: ...

    async def _run(self) -> None:
        while True:
            try:
                delay = await self._attempt()
            except Exception:  # a bug or a storage error must not end the link: show it, retry
                self.log.exception("connection attempt failed unexpectedly")
                self._set_link(LinkState.OFFLINE, "internal error (see the log)")
                delay = self.backoff.next()
            await self._sleep(delay)

    async def _sleep(self, delay: float) -> None:
        # The event is cleared after the wait, not before: a wake-up that came during an attempt
        # cuts the next wait short instead of being lost.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(delay):
                await self._wake.wait()
        self._wake.clear()
