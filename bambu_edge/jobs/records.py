"""The records the print tracker works with and hands on (pure data, no I/O).

``PrintRecord`` is one print as stored (jobs/history.py). ``Observation`` is the printer as the
tracker needs it at one moment; ``ExpectedPrint`` is what the queue's dispatcher (or print-now)
announces about a print it started; ``PrintFileInfo`` is what the print's own file says;
``Action`` is one decision of the tracker (jobs/tracker.py) for the history service.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from bambu_edge.printers import values

OUTCOMES = ("running", "success", "failed", "cancelled", "unknown")
DEFAULT_EXPECT_TTL_S = 900.0
MAX_SLOTS = 32
MAX_TEXT = 1024
_VALID_START = (1_000_000_000, 10_000_000_000)  # Unix seconds a printer can mean

_PLATE_RE = re.compile(r"(?:^|/)plate_(\d{1,4})\.gcode$")


def plate_of(gcode_file: str | None) -> int | None:
    """The plate number of a 3MF print (``/data/Metadata/plate_2.gcode`` -> 2)."""
    m = _PLATE_RE.search(gcode_file or "")
    return int(m.group(1)) if m else None


def clean_text(v: Any, limit: int = MAX_TEXT) -> str | None:
    """Text without surrounding blanks, cut to ``limit``; None if empty or not a string."""
    if type(v) is not str:
        return None
    v = v.strip()
    return v[:limit] if v else None


@dataclass(frozen=True, slots=True)
class FilamentSlot:
    """Filament one print used from one place. ``slot`` is the global tray index (AMS unit * 4 +
    tray, the AMS HT unit id, 254 for the external spool), None if unknown."""

    slot: int | None = None
    type: str | None = None
    color: str | None = None  # "#RRGGBBAA"
    grams: float | None = None
    meters: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "slot": self.slot,
            "type": self.type,
            "color": self.color,
            "grams": self.grams,
            "meters": self.meters,
        }

    @classmethod
    def from_json(cls, d: Any) -> FilamentSlot | None:
        if not isinstance(d, Mapping):
            return None
        return cls(
            slot=values.integer(d.get("slot"), 0, 1023),
            type=clean_text(d.get("type"), 64),
            color=clean_text(d.get("color"), 16),
            grams=values.num(d.get("grams"), 0.0, 1e6),
            meters=values.num(d.get("meters"), 0.0, 1e6),
        )


@dataclass(frozen=True, slots=True)
class JobKey:
    """What tells one print from another on the same printer."""

    job: str | None = None  # subtask_name
    file: str | None = None  # gcode_file
    task_id: str | None = None
    subtask_id: str | None = None
    job_id: str | None = None
    start_time: int | None = None  # gcode_start_time (older firmware)

    def conflicts(self, other: JobKey) -> bool:
        """True if some field has a value in both keys and the values differ."""
        if self is other:
            return False
        for a, b in (
            (self.job, other.job),
            (self.file, other.file),
            (self.task_id, other.task_id),
            (self.subtask_id, other.subtask_id),
            (self.job_id, other.job_id),
            (self.start_time, other.start_time),
        ):
            if a is not None and b is not None and a != b:
                return True
        return False

    def merged(self, other: JobKey) -> JobKey:
        """This key with the fields it lacks taken from ``other``."""
        return JobKey(
            **{f.name: getattr(self, f.name) or getattr(other, f.name) for f in dataclasses.fields(self)}
        )

    def to_json(self) -> dict[str, Any]:
        return {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if getattr(self, f.name) is not None
        }

    @classmethod
    def from_json(cls, d: Any) -> JobKey:
        if not isinstance(d, Mapping):
            return cls()
        start = values.integer(d.get("start_time"), *_VALID_START)
        return cls(
            job=clean_text(d.get("job")),
            file=clean_text(d.get("file")),
            task_id=_ident(d.get("task_id")),
            subtask_id=_ident(d.get("subtask_id")),
            job_id=_ident(d.get("job_id")),
            start_time=start,
        )


def _ident(v: Any) -> str | None:
    """A task/subtask/job id; "0" and "" mean none (LAN prints)."""
    if type(v) is int:
        v = str(v)
    t = clean_text(v, 64)
    return None if t is None or t == "0" else t


@dataclass(slots=True)
class PrintRecord:
    """One print, as stored (jobs/history.py). ``id`` is the database row id once written."""

    uid: str
    printer_id: str
    started_at: float
    printer_name: str | None = None
    model: str | None = None
    file: str | None = None
    job: str | None = None
    plate: int | None = None
    ended_at: float | None = None
    duration_s: float | None = None
    outcome: str = "running"
    failure_reason: str | None = None
    error_code: str | None = None
    hms: tuple[str, ...] = ()
    layers: int | None = None
    total_layers: int | None = None
    progress: int | None = None
    filament: tuple[FilamentSlot, ...] = ()
    thumbnail: str | None = None
    queue_job_id: int | None = None
    state: str | None = None
    key: JobKey = field(default_factory=JobKey)
    last_seen_at: float | None = None
    remaining_s: int | None = None
    timelapse: str | None = None  # the camera's MP4 for it (file name), set after it ended
    energy_kwh: float | None = None  # measured by the printer's smart plug (bambu_edge/power/)
    energy_cost: float | None = None  # at energy.price_per_kwh
    # The unit that recorded it (farm sync): None in the tracker's own records until the history
    # service stamps this unit's id on what it announces; stored as NULL for this unit's records.
    node: str | None = None
    id: int | None = None

    @property
    def open(self) -> bool:
        return self.outcome == "running"

    def snapshot(self) -> PrintRecord:
        return dataclasses.replace(self)  # every field is immutable: a shallow copy is a snapshot


@dataclass(frozen=True, slots=True)
class ExpectedPrint:
    """What the queue's dispatcher (or print-now) announces about a print it has just started on a
    printer (``HistoryService.expect``), so the record the tracker opens carries it, and the
    history service need not read the print's file for it.

    ``job`` is the name sent as ``subtask_name``: the printer reports it back, which is how the
    print is recognised. ``filament`` lists the AMS slots the print uses (from ``ams_mapping``)
    with the slicer's type, colour, grams and metres. ``thumbnail`` is a thumbnail cache key.
    ``queue_job_id`` is None for a print started from the file browser. The announcement expires
    ``ttl_s`` seconds after it is made if no matching print shows up.
    """

    job: str
    file: str | None = None
    plate: int | None = None
    filament: tuple[FilamentSlot, ...] = ()
    thumbnail: str | None = None
    queue_job_id: int | None = None
    ttl_s: float = DEFAULT_EXPECT_TTL_S

    def matches(self, job: str | None) -> bool:
        return job is None or clean_text(self.job) == job


@dataclass(frozen=True, slots=True)
class PrintFileInfo:
    """What the print's own file says, for a print started elsewhere (the slicer, the printer's
    screen): read from the printer's storage by the history service (jobs/print_files.py).
    ``filament`` comes from the slicer, per filament, without AMS slots (``slot`` None)."""

    file: str | None = None
    plate: int | None = None
    filament: tuple[FilamentSlot, ...] = ()
    thumbnail: str | None = None
    total_layers: int | None = None


@dataclass(frozen=True, slots=True)
class Observation:
    """The printer as the tracker needs it, at one moment."""

    now: float
    link: str
    report: bool = False  # a status report was applied just now
    full: bool = False  # ... and it was a full one (msg 0)
    state: str | None = None
    job: str | None = None
    file: str | None = None
    progress: int | None = None
    layer: int | None = None
    total_layers: int | None = None
    remaining_s: int | None = None
    print_error: int | None = None
    hms: tuple[tuple[str, str], ...] = ()  # (code, text) of the active alarms
    trays: tuple[FilamentSlot, ...] = ()  # active trays (type and colour from the AMS state)
    key: JobKey = field(default_factory=JobKey)
    printer_name: str | None = None
    model: str | None = None


ActionKind = Literal["open", "update", "close", "amend"]


@dataclass(frozen=True, slots=True)
class Action:
    """``open``/``close`` must be written at once; ``update`` at once when ``urgent`` (a state
    change, a reconcile, new metadata), else it may wait (progress); ``amend`` corrects the outcome
    of a record already closed (failed -> cancelled when our stop's answer came late).
    ``record`` is a snapshot: the tracker goes on changing its own."""

    kind: ActionKind
    record: PrintRecord
    urgent: bool = True
