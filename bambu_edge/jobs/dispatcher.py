"""The queue's dispatcher: starts queued jobs on free, compatible printers and follows them to the end.

It wakes on printer changes that matter (link, state, model, nozzle, filament), on queue changes
from the API, on the tracker's ``history`` events, and on a slow tick; then it asks the pure
``dispatch.decide`` what starts where, from the printer views the events carried (the last
``PrinterUpdate`` per printer). Each start is carried out by the run driver (jobs/run.py: a run is
recorded, the file uploaded, the print started, the tracker told what it will see). A run ends when
the tracker's ``history`` "ended" event for that printer arrives; a successful copy counts towards
``copies``. The files are kept by the file library (jobs/library.py); printing a file already on a
printer is print-now (jobs/print_now.py).

Everything is in the database before it is announced on the bus (``queue`` events, PLAN.md), and
on start the runs a previous process left in flight are reconciled with what the printers report.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import math
import time
from collections import Counter
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import orjson

from bambu_edge.bus import Event, EventBus, Listener
from bambu_edge.config import Config
from bambu_edge.files.meta import PrintFileMeta
from bambu_edge.files.thumbnails import ThumbnailCache
from bambu_edge.jobs import dispatch
from bambu_edge.jobs.dispatch import Decision, PrinterSnapshot, Readiness, WaitingJob
from bambu_edge.jobs.errors import QueueError
from bambu_edge.jobs.history import HistoryFilter
from bambu_edge.jobs.history_service import HISTORY_EVENT, RecordChange
from bambu_edge.jobs.library import QUEUE_EVENT, FileLibrary
from bambu_edge.jobs.print_now import PrintNow
from bambu_edge.jobs.queue import Job, QueueFile, QueueStore, Run
from bambu_edge.jobs.records import PrintRecord
from bambu_edge.jobs.run import RunDriver, shows_job
from bambu_edge.power.events import POWER_EVENT, WAKE_EVENT, WakeRequest
from bambu_edge.power.wakes import Verdict, WakeRule
from bambu_edge.printers.bambu.protocol import ACTIVE_PRINT_STATES, PREPARE, RUNNING
from bambu_edge.printers.base import (
    PRINTER_ADDED_EVENT,
    PRINTER_EVENT,
    PRINTER_REMOVED_EVENT,
    PrinterUpdate,
)

__all__ = ["QUEUE_EVENT", "Dispatcher", "QueueError", "job_json", "record_is_run"]
from bambu_edge.tasks import TaskSet

log = logging.getLogger(__name__)

LOAD_WINDOW_S = 24 * 3600.0  # balance on the copies each printer took in the last day
RECORD_SLACK_S = 60.0  # a history record opened this long before its run started is still its


# --- JSON for the API and events --------------------------------------------------------------------


def job_json(job: Job, runs: list[Run], reasons: tuple[str, ...] | list[str] = ()) -> dict[str, Any]:
    return {
        "id": job.id,
        "file": {"id": job.file_id, "name": job.file_name},
        "plate": job.plate,
        "copies": job.copies,
        "copies_done": job.copies_done,
        "priority": job.priority,
        "target": job.target or "any",
        "state": job.state,
        "reasons": list(reasons),
        "runs": [r.to_json() for r in runs],
        "options": job.options,
        "attempts": job.attempts,
        "last_error": job.last_error,
        "next_attempt_at": job.next_attempt_at,
        "position": job.position,
        "created_at": job.created_at,
        "updated_at": job.updated_at,
        "ended_at": job.ended_at,
    }


def record_is_run(record: PrintRecord, run: Run) -> bool:
    """Is this history record the print of this run? By queue job id; else by job name and time."""
    if record.queue_job_id is not None:
        return record.queue_job_id == run.job_id
    return record.job == run.subtask and record.started_at >= run.started_at - RECORD_SLACK_S


# The view sections PrinterSnapshot.from_view reads (besides print.state). A report that changes
# none of them (temperatures, progress, Wi-Fi: most reports) cannot change a decision.
DECISION_SECTIONS = frozenset({"link", "model", "nozzle", "ams", "external_spool"})


def _may_change_decisions(event: Event) -> bool:
    """A printer report that moves neither the print's state nor what decisions read (temperatures,
    progress) leaves every decision as it was."""
    if event.kind != PRINTER_EVENT:
        return True
    changes = event.data.changes
    return "state" in (changes.get("print") or {}) or not DECISION_SECTIONS.isdisjoint(changes)


def _signature(view: Mapping[str, Any]) -> tuple[Any, ...]:
    """What in a printer view can change a dispatch decision (not temperatures, not progress)."""
    snap = PrinterSnapshot.from_view(view, bed_clear=False)
    return (snap.link_state, snap.model, snap.nozzle_diameter, snap.gcode_state, snap.trays, snap.external)


class Dispatcher:
    def __init__(
        self,
        config: Config,
        store: QueueStore,
        manager: Any,
        bus: EventBus,
        history: Any = None,
        *,
        thumbnails: ThumbnailCache | None = None,
        tick_s: float = 30.0,
        retry_delays: tuple[float, ...] = (20.0, 120.0),
        reply_timeout: float | None = None,
        debounce_s: float = 0.1,
        clock: Callable[[], float] = time.time,
        tasks: TaskSet | None = None,
    ):
        self.config = config
        self.tasks = tasks or TaskSet("queue")
        self.store = store
        self.manager = manager
        self.bus = bus
        self.history = history
        self.thumbnails = thumbnails  # shared with the history service: records show the plate
        self.tick_s = tick_s
        self.debounce_s = debounce_s
        self.clock = clock
        self.library = FileLibrary(store, bus, config.data_dir, thumbnails)
        self._paused = False
        self._beds: dict[str, bool] = {}
        self._updates: dict[str, PrinterUpdate] = {}  # printer id -> the last view it announced
        self._power_off: set[str] = set()  # printers their power control says are switched off
        # Which printer was switched on for which job, and when not to do it again (power/wakes.py);
        # power's auto-off asks power_hold().
        self.wakes = WakeRule()
        self.runs = RunDriver(
            store,
            bus,
            self.library,
            history,
            beds=self._beds,
            announce_job=self._announce_job,
            wake=self._poke,
            printer_name=self._printer_name,
            last_update=self._updates.get,
            retry_delays=retry_delays,
            reply_timeout=reply_timeout,
            clock=clock,
            tasks=self.tasks,
        )
        self._print_now = PrintNow(
            manager, history, thumbnails, temp_path=self.library.temp_path, last_update=self._updates.get
        )
        self.print_now = self._print_now.print_now  # start a file already on a printer
        self._decision = Decision()
        self._published_jobs: dict[int, bytes] = {}
        self._published_printers: dict[str, Readiness] = {}
        self._signatures: dict[str, tuple[Any, ...]] = {}
        self._retry_at: list[float] = []  # when jobs waiting out a backoff may try again
        self._unsettled: dict[str, Run] = {}  # printer -> run a previous process left mid-dispatch
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._listener: Listener | None = None
        self._lock = asyncio.Lock()  # one evaluation at a time, and none while the API changes jobs

    # --- lifecycle ---------------------------------------------------------------------------------

    async def start(self) -> None:
        await self.library.start()
        self._paused = await self.store.paused()
        self._beds.update(await self.store.beds())
        for run in await self.store.runs_in_flight():
            if run.state in ("uploading", "starting"):
                self._unsettled[run.printer_id] = run
        kinds = (PRINTER_EVENT, HISTORY_EVENT, PRINTER_ADDED_EVENT, PRINTER_REMOVED_EVENT)
        # Every printer's newest view is remembered in the publisher's turn; the dispatcher's task
        # wakes only for what can change a decision (most reports move temperatures and progress).
        self._listener = self.bus.listen(*kinds, POWER_EVENT, callback=self._remember)
        sub = self.bus.subscribe(*kinds, maxsize=512, where=_may_change_decisions)
        # Subscribed first: what a printer said before is read here once, what it says next is in
        # ``sub``.
        for link in self.manager.links():
            self._updates[link.printer_id] = PrinterUpdate({}, link.state.view())
        await self.evaluate()  # the API has reasons from the first request on (printers: "connecting")
        self._tasks = [
            self.tasks.spawn(self._listen(sub), name="queue-events"),
            self.tasks.spawn(self._loop(), name="queue-dispatcher"),
        ]
        self._poke()

    async def stop(self) -> None:
        self.runs.stopping = True
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        tasks, self._tasks = self._tasks, []
        await self.tasks.cancel(tasks)
        await self.runs.stop()

    def _poke(self) -> None:
        self._wake.set()

    def _view(self, printer_id: str) -> Mapping[str, Any]:
        update = self._updates.get(printer_id)
        return update.view if update is not None else {"id": printer_id}

    def _printer_name(self, printer_id: str) -> str:
        return str(self._view(printer_id).get("name") or printer_id)

    # --- the loop ----------------------------------------------------------------------------------

    async def _loop(self) -> None:
        last_check = -math.inf
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._next_wake()):
                    await self._wake.wait()
            self._wake.clear()
            await asyncio.sleep(self.debounce_s)  # a burst of events makes one evaluation
            try:
                if time.monotonic() - last_check >= self.tick_s:
                    # Slowly: a history event we missed (at start-up, or dropped) must not leave a
                    # copy "printing" for ever.
                    last_check = time.monotonic()
                    await self._check_printing_runs()
                await self.evaluate()
            except Exception:  # a bug must not stop the queue for good: log, try again later
                log.exception("queue evaluation failed")

    def _next_wake(self) -> float:
        """The tick, or sooner when a job's backoff ends."""
        now = self.clock()
        return min([self.tick_s, *(max(t - now, 0.0) + 0.05 for t in self._retry_at)])

    async def _listen(self, sub: Any) -> None:
        with sub:
            while True:
                event = await sub.get()
                try:
                    await self._on_event(event)
                except Exception:
                    log.exception("queue: could not handle a %s event", event.kind)

    def _remember(self, event: Event) -> None:
        """In the publisher's turn, in order: each printer's newest view."""
        pid = event.printer_id
        if not pid:
            return
        if event.kind == PRINTER_EVENT:
            self._updates[pid] = event.data
        elif event.kind == PRINTER_ADDED_EVENT:
            view = event.data.get("printer") if isinstance(event.data, Mapping) else None
            if isinstance(view, Mapping):  # its newest view (the link runs already)
                self._updates[pid] = PrinterUpdate({}, view)
        elif event.kind == PRINTER_REMOVED_EVENT:
            self._updates.pop(pid, None)
        elif event.kind == POWER_EVENT:
            if event.data.reachable and event.data.on is not None:
                self.wakes.powered(pid, event.data.on, self.clock())
            was_off = pid in self._power_off
            if event.data.known_off:
                self._power_off.add(pid)
            else:
                self._power_off.discard(pid)
            if was_off != (pid in self._power_off):
                self._poke()

    async def _on_event(self, event: Event) -> None:
        pid = event.printer_id
        if event.kind == PRINTER_EVENT:
            if not pid:
                return
            update: PrinterUpdate = event.data
            if (update.changes.get("print") or {}).get("state") in (PREPARE, RUNNING):
                # Any print, ours or started at the printer, leaves the bed not clear.
                await self._mark_bed(pid, False)
            signature = _signature(update.view)
            if signature != self._signatures.get(pid):
                self._signatures[pid] = signature
                self._poke()
        elif event.kind == HISTORY_EVENT:
            await self._on_history(pid, event.data)
        else:
            if pid and event.kind == PRINTER_REMOVED_EVENT:
                self._signatures.pop(pid, None)
            self._poke()

    # --- evaluation ----------------------------------------------------------------------------------

    async def evaluate(self) -> Decision:
        """Decide, start what can start, announce what changed. Also called by tests."""
        async with self._lock:
            decision = await self._evaluate()
        if decision.starts:
            self._poke()  # the printers just taken are no longer ready: say so
        return decision

    async def _evaluate(self) -> Decision:
        """evaluate() with the lock held."""
        await self._settle_unsettled()
        now = self.clock()
        jobs = await self.store.active_jobs()
        flights = await self.store.runs_in_flight()
        in_flight = Counter(r.job_id for r in flights)
        busy = {r.printer_id for r in flights} | set(self.runs.flights)
        ids = [link.printer_id for link in self.manager.links()]
        load = await self.store.recent_load(now - LOAD_WINDOW_S, ids)
        snapshots = [
            PrinterSnapshot.from_view(
                self._view(pid),
                bed_clear=self._beds.get(pid, False),
                run_in_flight=pid in busy,
                load=load.get(pid, 0),
                power_off=pid in self._power_off,
            )
            for pid in ids
        ]
        waiting = []
        for job in jobs:
            qf = self.library.known.get(job.file_id)
            if qf is None:
                continue
            waiting.append(
                WaitingJob(
                    id=job.id,
                    meta=qf.meta,
                    plate=job.plate,
                    priority=job.priority,
                    position=job.position,
                    target=job.target,
                    copies_left=job.copies - job.copies_done - in_flight[job.id],
                    use_ams=bool(job.options.get("use_ams", True)),
                    retry_at=job.next_attempt_at,
                    last_error=job.last_error,
                )
            )
        decision = dispatch.decide(waiting, snapshots, paused=self._paused, now=now)
        self._retry_at = [j.next_attempt_at for j in jobs if j.next_attempt_at and j.next_attempt_at > now]
        self._review_wakes(waiting, snapshots, flights, now)
        decision = self._wake_printers(decision, now)
        self._decision = decision
        by_id = {j.id: j for j in jobs}
        for start in decision.starts:
            job = by_id[start.job_id]
            qf = self.library.known[job.file_id]
            await self.runs.launch(start, job, qf, self.manager.get(start.printer_id))
        await self._announce([j.id for j in jobs])
        return decision

    # --- power: switching printers on for jobs (power/wakes.py) -----------------------------------------

    def _review_wakes(
        self, waiting: list[WaitingJob], snapshots: list[PrinterSnapshot], flights: list[Run], now: float
    ) -> None:
        """Tell the wake rule, for each printer switched on for a job, how that job stands there."""
        jobs = {j.id: j for j in waiting}
        snaps = {s.id: s for s in snapshots}
        for pid, hold in list(self.wakes.holds.items()):
            snap, job = snaps.get(pid), jobs.get(hold.job_id)
            verdict: Verdict = "waiting"
            if snap is None:
                verdict = "given_up"  # no longer configured
            elif snap.link_state == "connected" and snap.gcode_state in ACTIVE_PRINT_STATES:
                verdict = "started"  # its job, or one started at the printer: auto-off waits anyway
            elif any(r.printer_id == pid and r.job_id == hold.job_id for r in flights):
                verdict = "waiting"  # being uploaded or started there
            elif job is None or not dispatch.still_wanted(job, snap):
                verdict = "given_up"
            self.wakes.review(pid, verdict, now)
        self.wakes.forget_jobs_but(set(jobs))

    def _wake_printers(self, decision: Decision, now: float) -> Decision:
        """Ask power control to switch on the printers the decision wants, unless the wake rule says
        not yet; the jobs that wait for such a printer say until when."""
        later: dict[int, list[str]] = {}
        for pid, job_id in decision.wake.items():
            wait = self.wakes.wake_in(pid, job_id, now)
            if wait == 0:
                self.wakes.woken(pid, job_id, now)
                # Power control switches it on (and ignores a repeat); the job starts in a later
                # decision, once the printer is online and ready.
                self.bus.publish(Event(WAKE_EVENT, pid, WakeRequest(job_id)))
            elif math.isfinite(wait):
                self._retry_at.append(now + wait)
                later.setdefault(job_id, []).append(
                    f"{self._printer_name(pid)}: was switched on for this job and it did not start there;"
                    f" switched on again in {math.ceil(wait / 60)} min"
                )
        if not later:
            return decision
        reasons = {j: (*words, *later.get(j, ())) for j, words in decision.reasons.items()}
        return dataclasses.replace(decision, reasons=reasons)

    def power_hold(self, printer_id: str) -> bool:
        """Must power's auto-off leave this printer on? While a queued print is being sent to it, and
        while it is held for the job it was switched on for."""
        return printer_id in self.runs.flights or self.wakes.held(printer_id, self.clock())

    async def _announce(self, job_ids: list[int]) -> None:
        runs = await self.store.runs_for(job_ids)
        # The job rows are read last and published with no wait in between: one that finished
        # meanwhile (a run ended by a history event as we read) is not announced again as it was.
        for job in await self.store.active_jobs():
            if job.id in runs:
                self._publish_job(job, runs[job.id])
        for pid, readiness in self._decision.printers.items():
            if self._published_printers.get(pid) != readiness:
                self._published_printers[pid] = readiness
                self.bus.publish(Event(QUEUE_EVENT, None, {"printer": readiness.to_json()}))

    def _job_json(self, job: Job, runs: list[Run]) -> dict[str, Any]:
        """The job with why it waits (from the last decision; a finished job waits for nothing)."""
        return job_json(job, runs, () if job.finished else self._decision.reasons.get(job.id, ()))

    def _publish_job(self, job: Job, runs: list[Run]) -> None:
        data = self._job_json(job, runs)
        key = orjson.dumps(data)
        if self._published_jobs.get(job.id) == key:
            return
        if job.finished:
            # evaluate() announces unfinished jobs only; a finished one is announced when it
            # changes: nothing to compare with later, and its key would stay for good.
            self._published_jobs.pop(job.id, None)
        else:
            self._published_jobs[job.id] = key
        self.bus.publish(Event(QUEUE_EVENT, None, {"job": data}))

    async def _announce_job(self, job_id: int) -> None:
        job = await self.store.get_job(job_id)
        if job is None:
            return
        runs = (await self.store.runs_for([job_id]))[job_id]
        self._publish_job(job, runs)

    # --- runs left by a previous process -------------------------------------------------------------

    async def _settle_unsettled(self) -> None:
        for pid, run in list(self._unsettled.items()):
            link = self.manager.get(pid)
            if link is None:  # removed from bambu-edge meanwhile: the copy goes elsewhere
                del self._unsettled[pid]
                await self.runs.failed_attempt(run, f"{pid} is no longer configured")
                continue
            view = self._view(pid)
            if (view.get("link") or {}).get("state") != "connected" or not (view.get("print") or {}).get(
                "state"
            ):
                continue  # wait until the printer says what it is doing
            del self._unsettled[pid]
            job = await self.store.get_job(run.job_id)
            qf = self.library.known.get(job.file_id) if job else None
            if job is not None and qf is not None and shows_job(self._updates.get(pid), run.subtask):
                log.info("queue: run %d was started before the restart; it is printing", run.id)
                await self.runs.printing(run, job, qf, None)
            else:
                await self.runs.failed_attempt(
                    run, "bambu-edge restarted before the printer started the print"
                )

    # --- the tracker's records ------------------------------------------------------------------------

    async def _check_printing_runs(self) -> None:
        """Runs still 'printing' whose history record has ended (while we were down, or its event
        was missed): end them as the record says."""
        if self.history is None:
            return
        for run in await self.store.runs_in_flight():
            if run.state != "printing":
                continue
            record = await self._record_of(run)
            if record is None:
                continue
            if run.history_id is None and record.id is not None:
                await self.store.update_run(run.id, history_id=record.id)
            if not record.open:
                await self._on_history(run.printer_id, RecordChange("ended", record))

    async def _record_of(self, run: Run) -> PrintRecord | None:
        repo = self.history.repo
        if run.history_id is not None:
            return await repo.get(run.history_id)
        recs, _ = await repo.page(
            HistoryFilter(printers=(run.printer_id,), since=run.started_at - RECORD_SLACK_S),
            sort="-started_at",
            limit=10,
        )
        return next((rec for rec in recs if record_is_run(rec, run)), None)

    async def _on_history(self, printer_id: str | None, change: RecordChange) -> None:
        action, record = change.action, change.record
        pid = printer_id or record.printer_id
        run = next((r for r in await self.store.runs_in_flight() if r.printer_id == pid), None)
        if action == "ended":
            await self._mark_bed(pid, False)
        if run is None or not record_is_run(record, run):
            return
        history_id = record.id
        if action in ("started", "updated"):
            if history_id is not None and run.history_id != history_id:
                await self.store.update_run(run.id, history_id=history_id)
                await self._announce_job(run.job_id)
            return
        if action != "ended" or run.state != "printing":
            return
        outcome = record.outcome
        success = outcome == "success"
        error = None
        if not success:
            name = self._printer_name(pid)
            why = record.failure_reason
            error = f"the print on {name} ended {outcome or 'unknown'}" + (f": {why}" if why else "")
        await self.store.end_run(run.id, success=success, history_id=history_id, error=error)
        log.info("queue: run %d on %s ended (%s)", run.id, pid, outcome)
        await self._announce_job(run.job_id)
        self._poke()

    # --- beds, pause -----------------------------------------------------------------------------------

    async def _mark_bed(self, printer_id: str, clear: bool) -> None:
        if self._beds.get(printer_id) == clear:
            return
        await self.store.set_bed(printer_id, clear)
        self._beds[printer_id] = clear
        self._poke()

    async def set_bed(self, printer_id: str, clear: bool) -> dict[str, Any]:
        if self.manager.get(printer_id) is None:
            raise QueueError(404, "not_found", "No such printer.")
        # Marked and decided on under one lock hold: an evaluation under way cannot see the mark
        # halfway and take the printer first, so the answer is the readiness the mark gave.
        async with self._lock:
            await self._mark_bed(printer_id, clear)
            decision = await self._evaluate()
        if decision.starts:
            self._poke()
        return self._readiness_json(printer_id)

    async def set_paused(self, paused: bool) -> None:
        await self.store.set_paused(paused)
        self._paused = paused
        self.bus.publish(Event(QUEUE_EVENT, None, {"paused": paused}))
        await self.evaluate()  # the reasons say so before the API answers

    @property
    def paused(self) -> bool:
        return self._paused

    # --- files --------------------------------------------------------------------------------------

    @property
    def tmp_dir(self) -> Path:
        return self.library.tmp_dir

    def file_path(self, qf: QueueFile) -> Path:
        return self.library.file_path(qf)

    def temp_path(self) -> Path:
        return self.library.temp_path()

    async def register_file(
        self, temp: Path, *, name: str, kind: str, size: int, sha256: str, md5: str, meta: PrintFileMeta
    ) -> tuple[QueueFile, bool]:
        """Keep an uploaded file that was read and checked (FileLibrary.register)."""
        return await self.library.register(
            temp, name=name, kind=kind, size=size, sha256=sha256, md5=md5, meta=meta
        )

    async def list_files(self) -> list[QueueFile]:
        return await self.library.list()

    async def get_file(self, file_id: int) -> QueueFile:
        return await self.library.get(file_id)

    async def thumbnail(self, qf: QueueFile, plate: int) -> bytes | None:
        """A plate's PNG (FileLibrary.thumbnail)."""
        return await self.library.thumbnail(qf, plate)

    async def delete_file(self, file_id: int) -> None:
        async with self._lock:
            qf = await self.get_file(file_id)
            if await self.store.file_in_use(file_id):
                raise QueueError(
                    409, "in_use", "A job in the queue still uses this file; remove the job first."
                )
            removed = await self.store.delete_file(file_id)
            self.library.known.pop(file_id, None)
        await self.library.forget(qf)
        for job_id in removed:
            self._published_jobs.pop(job_id, None)
            self.bus.publish(Event(QUEUE_EVENT, None, {"removed": job_id}))
        self.bus.publish(Event(QUEUE_EVENT, None, {"file_removed": file_id}))

    # --- jobs ---------------------------------------------------------------------------------------

    def _check_plate(self, qf: QueueFile, plate: int) -> None:
        problem = dispatch.plate_problem(qf.meta, plate)
        if problem:
            raise QueueError(400, "bad_request", f"{qf.name}: {problem}.")

    def _check_target(self, target: str | None) -> None:
        if target is not None and self.manager.get(target) is None:
            raise QueueError(400, "bad_request", f"There is no printer {target!r}.")

    async def create_job(
        self,
        *,
        file_id: int,
        plate: int = 1,
        copies: int = 1,
        priority: int = 0,
        target: str | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        qf = await self.store.get_file(file_id)
        if qf is None:
            raise QueueError(400, "bad_request", f"There is no queue file {file_id}.")
        self._check_plate(qf, plate)
        self._check_target(target)
        async with self._lock:
            job = await self.store.add_job(
                file_id=file_id, plate=plate, copies=copies, priority=priority, target=target, options=options
            )
        log.info("queue: job %d added (%s, plate %d, %d copies)", job.id, qf.name, plate, copies)
        await self.evaluate()
        return await self.job_view(job.id)

    async def _job(self, job_id: int) -> Job:
        job = await self.store.get_job(job_id)
        if job is None:
            raise QueueError(404, "not_found", "No such job in the queue.")
        return job

    async def update_job(self, job_id: int, changes: Mapping[str, Any]) -> dict[str, Any]:
        async with self._lock:
            job = await self._job(job_id)
            if job.finished:
                raise QueueError(409, "finished", f"Job {job_id} is {job.state}; retry it to change it.")
            qf = self.library.known.get(job.file_id) or await self.get_file(job.file_id)
            in_flight = 0
            if "plate" in changes or "copies" in changes:
                in_flight = sum(r.in_flight for r in (await self.store.runs_for([job_id]))[job_id])
            if "plate" in changes:
                if in_flight and changes["plate"] != job.plate:
                    raise QueueError(
                        409, "busy", "A copy of this job is being printed; its plate cannot change now."
                    )
                self._check_plate(qf, changes["plate"])
            if "copies" in changes:
                least = max(job.copies_done + in_flight, 1)
                if changes["copies"] < least:
                    raise QueueError(
                        400, "bad_request", f"'copies' cannot be less than {least} (done or printing)."
                    )
            kwargs: dict[str, Any] = {
                k: changes[k] for k in ("plate", "copies", "priority", "options") if k in changes
            }
            if "target" in changes:
                self._check_target(changes["target"])
                kwargs["target"] = changes["target"]
            await self.store.update_job(job_id, **kwargs)
        await self.evaluate()
        return await self.job_view(job_id)

    async def remove_job(self, job_id: int) -> dict[str, Any] | None:
        """Remove a job; one with a copy on a printer is cancelled instead (that copy goes on
        printing) and returned. A copy still uploading is stopped."""
        async with self._lock:
            job = await self._job(job_id)
            await self.runs.cancel_uploads((await self.store.runs_for([job_id]))[job_id])
            runs = (await self.store.runs_for([job_id]))[job_id]
            if any(r.in_flight for r in runs):
                await self.store.cancel_job(job_id)
                removed = False
            else:
                await self.store.delete_job(job_id)
                removed = True
        if removed:
            log.info("queue: job %d removed", job_id)
            self._published_jobs.pop(job_id, None)
            self.bus.publish(Event(QUEUE_EVENT, None, {"removed": job_id}))
            await self.evaluate()
            return None
        log.info("queue: job %d cancelled; its copy in flight goes on", job.id)
        await self._announce_job(job_id)  # finished: evaluate() announces unfinished jobs only
        await self.evaluate()
        return await self.job_view(job_id)

    async def move_job(self, job_id: int, before: int | None) -> dict[str, Any]:
        async with self._lock:
            job = await self._job(job_id)
            if job.finished:
                raise QueueError(409, "finished", f"Job {job_id} is {job.state}; only waiting jobs move.")
            if before is not None:
                other = await self._job(before)
                if other.finished:
                    raise QueueError(400, "bad_request", f"Job {before} is {other.state}, not in the queue.")
            await self.store.move_job(job_id, before)
        await self.evaluate()
        return await self.job_view(job_id)

    async def retry_job(self, job_id: int) -> dict[str, Any]:
        async with self._lock:
            job = await self._job(job_id)
            if job.state not in ("failed", "cancelled"):
                raise QueueError(
                    409,
                    "not_failed",
                    f"Job {job_id} is {job.state}; only failed or cancelled jobs are retried.",
                )
            await self.store.retry_job(job_id)
        await self.evaluate()
        return await self.job_view(job_id)

    # --- views ----------------------------------------------------------------------------------------

    async def job_view(self, job_id: int) -> dict[str, Any]:
        job = await self._job(job_id)
        return self._job_json(job, (await self.store.runs_for([job_id]))[job_id])

    def _readiness_json(self, printer_id: str) -> dict[str, Any]:
        readiness = self._decision.printers.get(printer_id)
        if readiness is not None:
            return readiness.to_json()
        # Not in the last decision yet (added since): only its bed is known.
        return {
            "id": printer_id,
            "bed_clear": self._beds.get(printer_id, False),
            "ready": False,
            "reason": None,
        }

    def readiness(self) -> list[dict[str, Any]]:
        """Every printer's readiness for the next job (bed, and why not), from the last decision."""
        return [self._readiness_json(link.printer_id) for link in self.manager.links()]

    async def queue_view(self) -> dict[str, Any]:
        jobs = await self.store.list_jobs()
        runs = await self.store.runs_for(j.id for j in jobs)
        return {
            "paused": self._paused,
            "jobs": [self._job_json(j, runs[j.id]) for j in jobs],
            "printers": self.readiness(),
        }
