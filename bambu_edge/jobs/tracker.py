"""The print tracker: one state machine per printer that turns what the printer reports into history
actions (open a record, update it, close it). Pure: no I/O and no clock (``now`` comes in with
every input); the only randomness is the injected uid factory.

Inputs: an ``Observation`` (built by ``observe()`` from ``PrinterState.view()`` and ``state.raw``)
after every report or link change, the outcome of our own commands, and ``ExpectedPrint``s the
queue's dispatcher announces. Outputs: ``Action``s, each carrying a snapshot of the record.

The rules (protocol/BAMBU.md section 5, 5.2):
  * PREPARE, RUNNING and PAUSE are a print. Seeing one with no record open opens one.
  * FINISH closes it as ``success``, even with a non-zero ``print_error`` (a P1S keeps one).
  * FAILED closes it as ``cancelled`` when ``print_error`` is 0x0300400C (a user's stop) or we sent
    a ``stop`` that the printer accepted; else as ``failed``, the reason from ``print_error`` and the
    HMS alarms. FINISH straight to PREPARE is a new print.
  * IDLE or SLICING with a record open: the print is over but the printer did not say how
    (``unknown``), unless our stop was accepted (``cancelled``).
  * INIT and states we do not know decide nothing; after ``UNKNOWN_STATE_LIMIT_S`` of them the
    record is closed as ``unknown``, so a print never stays "printing" forever.
  * While the link is not connected nothing is decided. After a (re)connect the first full report
    (``msg: 0``, the answer to the pushall the link sends) reconciles: the same print still going is
    resumed (the same record), the same print FINISH/FAILED is closed with that outcome, and idle or
    another job closes it as ``unknown`` ("ended while bambu-edge was not watching") before the new
    one is opened. A daemon restart is the same case: the open record comes from the database.

"The same print" compares identity fields (``JobKey``): job name, gcode file, task/subtask/job ids
and ``gcode_start_time`` where the printer sends them. Two keys differ only where both have a value
(FINISH on a P1S clears ``gcode_file``; a P2S sends no start time). After a gap, progress that went
back means the same file was printed again.
"""

from __future__ import annotations

import dataclasses
import math
import re
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from bambu_edge.printers.bambu.hms import print_error_code

ACTIVE_STATES = frozenset({"PREPARE", "RUNNING", "PAUSE"})
PRINTING_STATES = frozenset({"RUNNING", "PAUSE"})  # progress, layers and trays mean this print
TERMINAL_STATES = frozenset({"FINISH", "FAILED"})
OVER_STATES = frozenset({"IDLE", "SLICING"})  # nothing is printing
OUTCOMES = ("running", "success", "failed", "cancelled", "unknown")

PRINT_ERROR_CANCELLED = 0x0300400C  # 50348044: FAILED with this is a user's stop
CONNECTED = "connected"
EXTERNAL_SPOOL_SLOT = 254
AMS_HT_FIRST_ID = 128

FRESH_FALLBACK_S = 15.0  # no full report this long after the first report: decide on what we have
UNKNOWN_STATE_LIMIT_S = 3600.0
PROGRESS_SLACK = 5  # percent: after a gap, progress this much lower is another print
LAYER_SLACK = 2
EXPECT_LATE_S = 300.0  # an ExpectedPrint announced this long after the print was seen still applies
STOP_AMEND_S = 30.0  # our stop's answer may arrive after the printer's FAILED report
DEFAULT_EXPECT_TTL_S = 900.0
MAX_HMS = 32
MAX_SLOTS = 32
MAX_REASON = 1000
MAX_TEXT = 1024
_VALID_START = (1_000_000_000, 10_000_000_000)  # Unix seconds a printer can mean

REASON_NOT_WATCHING = "ended while bambu-edge was not watching"
REASON_WENT_IDLE = "the printer went idle without saying how the print ended"
REASON_CANCELLED_ON_PRINTER = "cancelled on the printer"
REASON_STOPPED_HERE = "stopped from bambu-edge"
REASON_REMOVED = "the printer was removed from bambu-edge"
REASON_FAILED = "the printer reported the print as failed"
REASON_REPLACED = "another print started before this one was seen to end"

_PLATE_RE = re.compile(r"(?:^|/)plate_(\d{1,4})\.gcode$")


# --- values ---------------------------------------------------------------------------------------


def _int(v: Any, lo: int = 0, hi: int = 2**31) -> int | None:
    if type(v) is bool:
        return None
    if type(v) is float and v.is_integer():
        v = int(v)
    if type(v) is str and 0 < len(v) <= 20:
        try:
            v = int(v.strip(), 10)
        except ValueError:
            return None
    return v if type(v) is int and lo <= v <= hi else None


def _num(v: Any, lo: float = 0.0, hi: float = 1e9) -> float | None:
    if type(v) is bool or not isinstance(v, int | float):
        return None
    f = float(v)
    return f if math.isfinite(f) and lo <= f <= hi else None


def _text(v: Any, limit: int = MAX_TEXT) -> str | None:
    if type(v) is not str:
        return None
    v = v.strip()
    return v[:limit] if v else None


def plate_of(gcode_file: str | None) -> int | None:
    """The plate number of a 3MF print (``/data/Metadata/plate_2.gcode`` -> 2)."""
    m = _PLATE_RE.search(gcode_file or "")
    return int(m.group(1)) if m else None


# --- records --------------------------------------------------------------------------------------


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
            slot=_int(d.get("slot"), 0, 1023),
            type=_text(d.get("type"), 64),
            color=_text(d.get("color"), 16),
            grams=_num(d.get("grams"), 0.0, 1e6),
            meters=_num(d.get("meters"), 0.0, 1e6),
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
        for f in dataclasses.fields(self):
            a, b = getattr(self, f.name), getattr(other, f.name)
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
        return cls(
            job=_text(d.get("job")),
            file=_text(d.get("file")),
            task_id=_ident(d.get("task_id")),
            subtask_id=_ident(d.get("subtask_id")),
            job_id=_ident(d.get("job_id")),
            start_time=_start_time(d.get("start_time")),
        )


def _ident(v: Any) -> str | None:
    """A task/subtask/job id; "0" and "" mean none (LAN prints)."""
    if type(v) is int and not isinstance(v, bool):
        v = str(v)
    t = _text(v, 64)
    return None if t is None or t == "0" else t


def _start_time(v: Any) -> int | None:
    n = _int(v, 0, _VALID_START[1])
    return n if n is not None and n >= _VALID_START[0] else None


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
    id: int | None = None

    @property
    def open(self) -> bool:
        return self.outcome == "running"

    def snapshot(self) -> PrintRecord:
        return dataclasses.replace(self)  # every field is immutable: a shallow copy is a snapshot


@dataclass(frozen=True, slots=True)
class ExpectedPrint:
    """What the queue's dispatcher announces about a print it has just started on a printer
    (``HistoryService.expect``), so the record the tracker opens carries it.

    ``job`` is the name sent as ``subtask_name``: the printer reports it back, which is how the
    print is recognised. ``filament`` lists the AMS slots the print uses (from ``ams_mapping``)
    with the slicer's type, colour, grams and metres. ``thumbnail`` is a thumbnail cache key. The
    announcement expires ``ttl_s`` seconds after it is made if no matching print shows up.
    """

    job: str
    file: str | None = None
    plate: int | None = None
    filament: tuple[FilamentSlot, ...] = ()
    thumbnail: str | None = None
    queue_job_id: int | None = None
    ttl_s: float = DEFAULT_EXPECT_TTL_S

    def matches(self, job: str | None) -> bool:
        return job is None or _text(self.job) == job


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
    of a record already closed (failed -> cancelled when our stop's answer came late)."""

    kind: ActionKind
    record: PrintRecord
    urgent: bool = True


# --- observation ----------------------------------------------------------------------------------


def _active_trays(view: Mapping[str, Any]) -> tuple[FilamentSlot, ...]:
    out: list[FilamentSlot] = []
    units = view.get("ams")
    for unit in units if isinstance(units, list) else ():
        if not isinstance(unit, Mapping):
            continue
        uid = _int(unit.get("unit"), 0, 255)
        trays = unit.get("trays")
        for tray in trays if isinstance(trays, list) else ():
            if not isinstance(tray, Mapping) or tray.get("active") is not True or uid is None:
                continue
            slot = _int(tray.get("slot"), 0, 15)
            if slot is None:
                continue
            index = uid + slot if uid >= AMS_HT_FIRST_ID else uid * 4 + slot
            out.append(FilamentSlot(index, _text(tray.get("type"), 64), _text(tray.get("color"), 16)))
    ext = view.get("external_spool")
    if isinstance(ext, Mapping) and ext.get("active") is True:
        out.append(FilamentSlot(EXTERNAL_SPOOL_SLOT, _text(ext.get("type"), 64), _text(ext.get("color"), 16)))
    return tuple(out)


def _hms(view: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    items = view.get("hms")
    out = []
    for item in items[:MAX_HMS] if isinstance(items, list) else ():
        if isinstance(item, Mapping) and isinstance(item.get("code"), str):
            out.append((item["code"][:32], _text(item.get("text"), 200) or "HMS alarm"))
    return tuple(out)


def observe(
    view: Mapping[str, Any],
    raw: Mapping[str, Any],
    now: float,
    *,
    report: bool = False,
    full: bool = False,
) -> Observation:
    """An Observation from ``PrinterState.view()`` and ``PrinterState.raw`` (for the fields the view
    lacks: ids, ``gcode_start_time``, the numeric ``print_error``). Never raises on junk."""
    view = view if isinstance(view, Mapping) else {}
    p = view.get("print")
    p = p if isinstance(p, Mapping) else {}
    link = view.get("link")
    link_state = link.get("state") if isinstance(link, Mapping) else None
    raw = raw if isinstance(raw, Mapping) else {}
    remaining = _int(p.get("remaining_s"), 0, 10**8)
    job, file = _text(p.get("job")), _text(p.get("file"))
    return Observation(
        now=now,
        link=link_state if isinstance(link_state, str) else "offline",
        report=report,
        full=full,
        state=_text(p.get("state"), 64),
        job=job,
        file=file,
        progress=_int(p.get("progress"), 0, 100),
        layer=_int(p.get("layer"), 0, 10**6),
        total_layers=_int(p.get("total_layers"), 0, 10**6),
        remaining_s=remaining,
        print_error=_int(raw.get("print_error"), 0, 0xFFFFFFFF),
        hms=_hms(view),
        trays=_active_trays(view),
        key=JobKey(
            job=job,
            file=file,
            task_id=_ident(raw.get("task_id")),
            subtask_id=_ident(raw.get("subtask_id")),
            job_id=_ident(raw.get("job_id")),
            start_time=_start_time(raw.get("gcode_start_time")),
        ),
        printer_name=_text(view.get("name"), 200),
        model=_text(view.get("model"), 64),
    )


# --- the state machine ----------------------------------------------------------------------------


def new_uid() -> str:
    return uuid.uuid4().hex


def _same_kind(plan: FilamentSlot, tray: FilamentSlot) -> bool:
    """A slicer filament without a slot that this AMS tray can be: same type, same colour (if both
    say one)."""
    if plan.slot is not None or plan.type is None or tray.type is None:
        return False
    if plan.type.casefold() != tray.type.casefold():
        return False
    return plan.color is None or tray.color is None or plan.color.upper() == tray.color.upper()


def _merge_slots(base: Iterable[FilamentSlot], seen: Iterable[FilamentSlot]) -> tuple[FilamentSlot, ...]:
    """``base`` (the plan) with the trays seen: a known slot gains the type/colour it lacked; a
    plan entry without a slot (from the file of a print started elsewhere) takes the slot of the
    first tray of its type and colour; any other tray is added. Order: the plan, then new slots."""
    out = list(base)
    for tray in seen:
        if tray.slot is None:
            continue
        for i, have in enumerate(out):
            if have.slot == tray.slot:
                if (have.type is None and tray.type) or (have.color is None and tray.color):
                    out[i] = dataclasses.replace(
                        have, type=have.type or tray.type, color=have.color or tray.color
                    )
                break
        else:
            for i, have in enumerate(out):
                if _same_kind(have, tray):
                    out[i] = dataclasses.replace(have, slot=tray.slot, color=have.color or tray.color)
                    break
            else:
                if len(out) < MAX_SLOTS:
                    out.append(tray)
    return tuple(out)


def _add_hms(rec: PrintRecord, obs: Observation) -> None:
    """The HMS codes seen during the print, in order, each once."""
    if obs.hms:
        codes = list(rec.hms)
        for code, _ in obs.hms:
            if code not in codes and len(codes) < MAX_HMS:
                codes.append(code)
        rec.hms = tuple(codes)


def _scaled(slots: tuple[FilamentSlot, ...], progress: int | None) -> tuple[FilamentSlot, ...]:
    """The plan's grams and metres scaled to the progress reached (a print that ended early)."""
    if progress is None or progress >= 100:
        return slots
    f = max(progress, 0) / 100.0
    return tuple(
        dataclasses.replace(
            s,
            grams=None if s.grams is None else round(s.grams * f, 2),
            meters=None if s.meters is None else round(s.meters * f, 3),
        )
        for s in slots
    )


class PrintTracker:
    """The tracker of one printer. ``record`` is the open record, if any."""

    def __init__(
        self,
        printer_id: str,
        *,
        record: PrintRecord | None = None,
        uid_factory: Callable[[], str] = new_uid,
    ):
        self.printer_id = printer_id
        self.record: PrintRecord | None = record if record is not None and record.open else None
        self._uid = uid_factory
        self._synced = False  # the printer's state is known to be current since the last connect
        self._first_report_at: float | None = None
        self._last_state: str | None = None  # the last state decided on while watching
        self._expected: tuple[ExpectedPrint, float] | None = None
        self._stop_accepted = False
        self._seen_running = False  # the open record was seen RUNNING/PAUSE since it was opened here
        self._opened_at: float | None = None
        self._odd_since: float | None = None  # first observation of an INIT/unknown state
        self._last_closed: tuple[PrintRecord, float] | None = None

    @property
    def watching(self) -> bool:
        """The printer's state is known to be current since the last (re)connect."""
        return self._synced

    # --- inputs -----------------------------------------------------------------------------------

    def observe(self, obs: Observation) -> list[Action]:
        if obs.link != CONNECTED:
            self._synced = False
            self._first_report_at = None
            self._last_state = None
            self._odd_since = None
            return []
        gap = False
        if not self._synced:
            if obs.report and self._first_report_at is None:
                self._first_report_at = obs.now
            waited = self._first_report_at is not None and obs.now - self._first_report_at >= FRESH_FALLBACK_S
            if obs.state is None or not ((obs.report and obs.full) or waited):
                return []
            self._synced = True
            gap = True
        if obs.state is None:
            return []
        actions = self._decide(obs, gap)
        self._last_state = obs.state
        return actions

    def command(self, action: str, result: str, now: float) -> list[Action]:
        """The outcome of a command we sent (COMMAND_EVENT)."""
        if action != "stop" or result != "success":
            return []
        if self.record is not None:
            self._stop_accepted = True
            return []
        closed = self._last_closed
        if closed is not None and closed[0].outcome == "failed" and now - closed[1] <= STOP_AMEND_S:
            rec = dataclasses.replace(closed[0], outcome="cancelled", failure_reason=REASON_STOPPED_HERE)
            self._last_closed = (rec, closed[1])
            return [Action("amend", rec.snapshot())]
        return []

    def expect(self, expected: ExpectedPrint, now: float) -> list[Action]:
        """The dispatcher has just started ``expected`` on this printer."""
        self._expected = (expected, now + max(expected.ttl_s, 0.0))
        rec = self.record
        if (
            rec is not None
            and rec.queue_job_id is None
            and self._opened_at is not None
            and now - self._opened_at <= EXPECT_LATE_S
            and expected.matches(rec.job)
        ):
            self._attach(rec, expected)
            self._expected = None
            return [Action("update", rec.snapshot())]
        return []

    def enrich(self, uid: str, info: PrintFileInfo) -> list[Action]:
        """What the print's file says (a print started elsewhere); only for the record still open
        and not labelled by the queue, whose announcement knows better."""
        rec = self.record
        if rec is None or rec.uid != uid or rec.queue_job_id is not None:
            return []
        before = rec.snapshot()
        rec.file = _text(info.file) or rec.file
        rec.plate = rec.plate if rec.plate is not None else info.plate
        if info.filament:
            seen = [s for s in rec.filament if s.slot is not None and s.grams is None]
            rec.filament = _merge_slots(info.filament[:MAX_SLOTS], seen)
        rec.thumbnail = rec.thumbnail or _text(info.thumbnail, 256)
        rec.total_layers = rec.total_layers or info.total_layers
        return [] if rec == before else [Action("update", rec.snapshot())]

    def removed(self, now: float) -> list[Action]:
        """The printer was removed from bambu-edge."""
        if self.record is None:
            return []
        return self._close_unknown(now, REASON_REMOVED)

    # --- decisions --------------------------------------------------------------------------------

    def _decide(self, obs: Observation, gap: bool) -> list[Action]:
        rec = self.record
        state = obs.state
        if state in ACTIVE_STATES:
            self._odd_since = None
            if rec is None:
                return self._open(obs)
            if self._is_other_print(rec, obs, gap):
                closed = self._close_unknown(obs.now, REASON_NOT_WATCHING if gap else REASON_REPLACED)
                return closed + self._open(obs)
            return self._update(rec, obs, urgent=gap)
        if state in TERMINAL_STATES:
            self._odd_since = None
            if rec is None:
                if state == "FAILED" and not gap and self._last_state not in (None, "FAILED"):
                    # A print that failed before we saw it run (e.g. refused at once) is a print too.
                    opened = self._open(obs)
                    assert self.record is not None
                    return opened + self._close_terminal(self.record, obs, gap)
                return []
            if gap and rec.key.conflicts(obs.key):
                return self._close_unknown(obs.now, REASON_NOT_WATCHING)  # another print ended meanwhile
            return self._close_terminal(rec, obs, gap)
        if state in OVER_STATES:
            self._odd_since = None
            if rec is None:
                return []
            if self._stop_accepted:
                return self._close(rec, obs.now, obs.now, "cancelled", REASON_STOPPED_HERE)
            return self._close_unknown(obs.now, REASON_NOT_WATCHING if gap else REASON_WENT_IDLE)
        # INIT or a state we do not know: wait, but not forever.
        if rec is None:
            return []
        if self._odd_since is None:
            self._odd_since = obs.now
        if obs.now - self._odd_since >= UNKNOWN_STATE_LIMIT_S:
            hours = (obs.now - self._odd_since) / 3600
            return self._close_unknown(obs.now, f"the printer reported state {state} for {hours:.0f} h")
        return []

    def _is_other_print(self, rec: PrintRecord, obs: Observation, gap: bool) -> bool:
        if rec.key.conflicts(obs.key):
            # While it prepares, the printer may still show the last job's fields for a moment.
            return gap or self._seen_running
        if gap and obs.state in PRINTING_STATES and rec.state in PRINTING_STATES:
            if (
                rec.progress is not None
                and obs.progress is not None
                and obs.progress + PROGRESS_SLACK < rec.progress
            ):
                return True
            if rec.layers is not None and obs.layer is not None and obs.layer + LAYER_SLACK < rec.layers:
                return True
        return False

    def _open(self, obs: Observation) -> list[Action]:
        start = obs.key.start_time
        started_at = float(start) if start is not None and start <= obs.now + 60 else obs.now
        rec = PrintRecord(
            uid=self._uid(),
            printer_id=self.printer_id,
            started_at=started_at,
            printer_name=obs.printer_name,
            model=obs.model,
            file=obs.file,
            job=obs.job,
            plate=plate_of(obs.file),
            state=obs.state,
            key=obs.key,
            last_seen_at=obs.now,
        )
        self._track(rec, obs)
        expected = self._expected
        if expected is not None:
            if obs.now > expected[1]:
                self._expected = None
            elif expected[0].matches(obs.job):
                self._attach(rec, expected[0])
                self._expected = None
        self.record = rec
        self._stop_accepted = False
        self._seen_running = obs.state in PRINTING_STATES
        self._opened_at = obs.now
        return [Action("open", rec.snapshot())]

    def _attach(self, rec: PrintRecord, exp: ExpectedPrint) -> None:
        rec.job = rec.job or _text(exp.job)
        rec.file = _text(exp.file) or rec.file
        rec.plate = exp.plate if exp.plate is not None else rec.plate
        rec.filament = _merge_slots(exp.filament[:MAX_SLOTS], rec.filament)
        rec.thumbnail = _text(exp.thumbnail, 256) or rec.thumbnail
        rec.queue_job_id = exp.queue_job_id

    def _track(self, rec: PrintRecord, obs: Observation) -> None:
        """Fold what this observation says about the running print into ``rec``."""
        rec.state = obs.state
        rec.last_seen_at = obs.now
        if obs.total_layers:
            rec.total_layers = obs.total_layers
        if obs.state in PRINTING_STATES:  # in PREPARE they may still be the last print's
            if obs.progress is not None:
                rec.progress = obs.progress
            if obs.layer is not None:
                rec.layers = obs.layer
            rec.remaining_s = obs.remaining_s
            if obs.trays:
                rec.filament = _merge_slots(rec.filament, obs.trays)
        _add_hms(rec, obs)

    def _update(self, rec: PrintRecord, obs: Observation, urgent: bool) -> list[Action]:
        before = rec.snapshot()
        if rec.key.conflicts(obs.key):  # corrected while preparing (see _is_other_print)
            rec.key = obs.key.merged(rec.key)
            rec.job = obs.job or rec.job
            if rec.queue_job_id is None:
                rec.file = obs.file or rec.file
            rec.plate = plate_of(obs.file) or rec.plate
            urgent = True
        elif rec.key != (merged := rec.key.merged(obs.key)):
            rec.key = merged
            rec.job = rec.job or obs.job
            rec.file = rec.file or obs.file
            rec.plate = rec.plate if rec.plate is not None else plate_of(obs.file)
            urgent = True
        rec.printer_name = rec.printer_name or obs.printer_name
        rec.model = rec.model or obs.model
        self._track(rec, obs)
        if obs.state in PRINTING_STATES:
            self._seen_running = True
        if rec.state != before.state or rec.hms != before.hms:
            urgent = True
        if rec == before:
            return []
        return [Action("update", rec.snapshot(), urgent=urgent)]

    def _close_terminal(self, rec: PrintRecord, obs: Observation, gap: bool) -> list[Action]:
        self._track_final(rec, obs)
        now = obs.now
        seen = rec.last_seen_at if rec.last_seen_at is not None else rec.started_at
        if obs.state == "FINISH":
            rec.progress = obs.progress if obs.progress is not None else 100
            if obs.layer is not None and (rec.total_layers is None or obs.layer <= rec.total_layers):
                rec.layers = obs.layer
            # Finished while we were away: it ended when it was due at our last sight, or before now.
            end = min(now, seen + rec.remaining_s) if gap and rec.remaining_s is not None else now
            return self._close(rec, now, end, "success", None)
        end = seen if gap else now  # failed while we were away: after we last saw it run
        err = obs.print_error or 0
        code = print_error_code(err) if err else None
        if err == PRINT_ERROR_CANCELLED:
            return self._close(rec, now, end, "cancelled", REASON_CANCELLED_ON_PRINTER, code)
        if self._stop_accepted:
            return self._close(rec, now, end, "cancelled", REASON_STOPPED_HERE, code)
        parts = [f"print error {code}"] if code else []
        parts += [f"{text} (HMS {hms_code})" for hms_code, text in obs.hms]
        reason = "; ".join(parts) if parts else REASON_FAILED
        if parts:
            reason = reason[0].upper() + reason[1:]
        return self._close(rec, now, end, "failed", reason[:MAX_REASON], code)

    def _track_final(self, rec: PrintRecord, obs: Observation) -> None:
        rec.printer_name = rec.printer_name or obs.printer_name
        rec.model = rec.model or obs.model
        _add_hms(rec, obs)

    def _close_unknown(self, now: float, reason: str) -> list[Action]:
        """Closed without knowing how it ended: it ended after we last saw it running."""
        rec = self.record
        assert rec is not None
        end = rec.last_seen_at if rec.last_seen_at is not None else rec.started_at
        return self._close(rec, now, end, "unknown", reason)

    def _close(
        self,
        rec: PrintRecord,
        now: float,
        end: float,
        outcome: str,
        reason: str | None,
        code: str | None = None,
    ) -> list[Action]:
        rec.ended_at = max(end, rec.started_at)
        rec.duration_s = round(rec.ended_at - rec.started_at, 3)
        rec.outcome = outcome
        rec.failure_reason = reason
        rec.error_code = code
        rec.remaining_s = None
        if outcome == "success":
            rec.remaining_s = 0
        else:
            rec.filament = _scaled(rec.filament, rec.progress)
        snap = rec.snapshot()
        self.record = None
        self._stop_accepted = False
        self._seen_running = False
        self._opened_at = None
        self._last_closed = (snap, now)
        return [Action("close", snap.snapshot())]
