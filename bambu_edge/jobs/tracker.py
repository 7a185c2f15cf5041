"""The print tracker: one state machine per printer that turns what the printer reports into history
actions (open a record, update it, close it). Pure: no I/O and no clock (``now`` comes in with
every input); the only randomness is the injected uid factory.

Inputs: an ``Observation`` (built by ``observe()`` from the view and job identity a printer event
carries) after every report or link change, or, for a report that only moved progress,
``progressed()``; the outcome of our own commands; ``ExpectedPrint``s the queue's dispatcher and
print-now announce. Outputs: ``Action``s, each carrying a snapshot of the record. The record types
are in jobs/records.py.

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
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from bambu_edge.jobs.records import (
    MAX_SLOTS,
    Action,
    ExpectedPrint,
    FilamentSlot,
    JobKey,
    Observation,
    PrintFileInfo,
    PrintRecord,
    clean_text,
    plate_of,
)
from bambu_edge.printers import values
from bambu_edge.printers.bambu.hms import print_error_code
from bambu_edge.printers.bambu.protocol import (
    ACTIVE_PRINT_STATES,
    EXTERNAL_TRAY,
    FAILED,
    FINISH,
    IDLE,
    PRINT_ERROR_CANCELLED,
    PRINTING_STATES,
    SLICING,
    TERMINAL_STATES,
    tray_index,
)
from bambu_edge.printers.base import NO_IDENTITY, JobIdentity

OVER_STATES = frozenset({IDLE, SLICING})  # nothing is printing
CONNECTED = "connected"
# The fields of the view's "print" section that a report may move while a print runs without
# changing anything but the open record's progress (``PrintTracker.progressed``).
PROGRESS_FIELDS = frozenset({"progress", "layer", "remaining_s", "speed_level", "stage"})

FRESH_FALLBACK_S = 15.0  # no full report this long after the first report: decide on what we have
UNKNOWN_STATE_LIMIT_S = 3600.0
PROGRESS_SLACK = 5  # percent: after a gap, progress this much lower is another print
LAYER_SLACK = 2
EXPECT_LATE_S = 300.0  # an ExpectedPrint announced this long after the print was seen still applies
STOP_AMEND_S = 30.0  # our stop's answer may arrive after the printer's FAILED report
MAX_HMS = 32
MAX_REASON = 1000

REASON_NOT_WATCHING = "ended while bambu-edge was not watching"
REASON_WENT_IDLE = "the printer went idle without saying how the print ended"
REASON_CANCELLED_ON_PRINTER = "cancelled on the printer"
REASON_STOPPED_HERE = "stopped from bambu-edge"
REASON_REMOVED = "the printer was removed from bambu-edge"
REASON_FAILED = "the printer reported the print as failed"
REASON_REPLACED = "another print started before this one was seen to end"


# --- observation ----------------------------------------------------------------------------------


def _active_trays(view: Mapping[str, Any]) -> tuple[FilamentSlot, ...]:
    out: list[FilamentSlot] = []
    units = view.get("ams")
    for unit in units if type(units) is list else ():
        if type(unit) is not dict:
            continue
        uid = values.integer(unit.get("unit"), 0, 255)
        trays = unit.get("trays")
        for tray in trays if type(trays) is list else ():
            if type(tray) is not dict or tray.get("active") is not True or uid is None:
                continue
            slot = values.integer(tray.get("slot"), 0, 15)
            if slot is None:
                continue
            out.append(
                FilamentSlot(
                    tray_index(uid, slot),
                    values.text(tray.get("type"), 64),
                    values.text(tray.get("color"), 16),
                )
            )
    ext = view.get("external_spool")
    if type(ext) is dict and ext.get("active") is True:
        out.append(
            FilamentSlot(EXTERNAL_TRAY, values.text(ext.get("type"), 64), values.text(ext.get("color"), 16))
        )
    return tuple(out)


def _hms(view: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    items = view.get("hms")
    out = []
    for item in items[:MAX_HMS] if type(items) is list else ():
        if type(item) is dict and type(item.get("code")) is str:
            out.append((item["code"][:32], values.text(item.get("text"), 200) or "HMS alarm"))
    return tuple(out)


def observe(
    view: Mapping[str, Any],
    identity: JobIdentity,
    now: float,
    *,
    report: bool = False,
    full: bool = False,
) -> Observation:
    """An Observation from a printer view (``PrinterUpdate.view``) and the job's identity
    (``PrinterUpdate.identity``: the ids, start time and numeric print error the view lacks).
    Never raises on junk."""
    view = view if isinstance(view, Mapping) else {}
    identity = identity if isinstance(identity, JobIdentity) else NO_IDENTITY
    p = view.get("print")
    p = p if type(p) is dict else {}
    link = view.get("link")
    link_state = link.get("state") if type(link) is dict else None
    job, file = values.text(p.get("job")), values.text(p.get("file"))
    return Observation(
        now=now,
        link=link_state if type(link_state) is str else "offline",
        report=report,
        full=full,
        state=values.text(p.get("state"), 64),
        job=job,
        file=file,
        progress=values.integer(p.get("progress"), 0, 100),
        layer=values.integer(p.get("layer"), 0, 10**6),
        total_layers=values.integer(p.get("total_layers"), 0, 10**6),
        remaining_s=values.integer(p.get("remaining_s"), 0, 10**8),
        print_error=identity.print_error,
        hms=_hms(view),
        trays=_active_trays(view),
        key=JobKey(
            job=job,
            file=file,
            task_id=identity.task_id,
            subtask_id=identity.subtask_id,
            job_id=identity.job_id,
            start_time=identity.start_time,
        ),
        printer_name=values.text(view.get("name"), 200),
        model=values.text(view.get("model"), 64),
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
        # The open record was labelled by an announcement (queue job or print-now), which carried
        # what its file says: the file need not be read for it.
        self._labelled = self.record is not None and self.record.queue_job_id is not None

    @property
    def watching(self) -> bool:
        """The printer's state is known to be current since the last (re)connect."""
        return self._synced

    def needs_file(self, uid: str) -> bool:
        """Is ``uid`` the open record, of a print nobody announced (started at the printer or from
        the slicer), so only its file on the printer can say its grams and picture?"""
        rec = self.record
        return rec is not None and rec.uid == uid and not self._labelled

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

    def progressed(self, print_view: Mapping[str, Any], now: float) -> PrintRecord | None:
        """A report that moved only ``PROGRESS_FIELDS`` of the view's ``print`` section (state, job,
        file, identity, trays and alarms as last observed), folded into the open record in place:
        what ``observe()`` would do with it, without an Observation or a snapshot per report.
        Returns the open record (its ``last_seen_at`` at least has moved: a paced update), or None
        when the report needs ``observe()`` (not watching, no record open, no print under way)."""
        rec = self.record
        if rec is None or not self._synced or self._last_state not in ACTIVE_PRINT_STATES:
            return None
        rec.last_seen_at = now
        total = values.integer(print_view.get("total_layers"), 0, 10**6)
        if total:
            rec.total_layers = total
        if self._last_state in PRINTING_STATES:  # in PREPARE they may still be the last print's
            progress = values.integer(print_view.get("progress"), 0, 100)
            if progress is not None:
                rec.progress = progress
            layer = values.integer(print_view.get("layer"), 0, 10**6)
            if layer is not None:
                rec.layers = layer
            rec.remaining_s = values.integer(print_view.get("remaining_s"), 0, 10**8)
        return rec

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
            and not self._labelled
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
        and not labelled by an announcement, which knows better."""
        rec = self.record
        if rec is None or not self.needs_file(uid):
            return []
        before = rec.snapshot()
        rec.file = clean_text(info.file) or rec.file
        rec.plate = rec.plate if rec.plate is not None else info.plate
        if info.filament:
            seen = [s for s in rec.filament if s.slot is not None and s.grams is None]
            rec.filament = _merge_slots(info.filament[:MAX_SLOTS], seen)
        rec.thumbnail = rec.thumbnail or clean_text(info.thumbnail, 256)
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
        if state in ACTIVE_PRINT_STATES:
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
                if state == FAILED and not gap and self._last_state not in (None, FAILED):
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
        self._labelled = False
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
        rec.job = rec.job or clean_text(exp.job)
        rec.file = clean_text(exp.file) or rec.file
        rec.plate = exp.plate if exp.plate is not None else rec.plate
        rec.filament = _merge_slots(exp.filament[:MAX_SLOTS], rec.filament)
        rec.thumbnail = clean_text(exp.thumbnail, 256) or rec.thumbnail
        rec.queue_job_id = exp.queue_job_id
        self._labelled = True

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
            if not self._labelled:
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
        if obs.state == FINISH:
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
        self._labelled = False
        self._stop_accepted = False
        self._seen_running = False
        self._opened_at = None
        self._last_closed = (snap, now)
        return [Action("close", snap.snapshot())]
