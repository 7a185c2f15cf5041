"""The queue's dispatcher: starts queued jobs on free, compatible printers and follows them to the end.

It wakes on printer changes that matter (link, state, model, nozzle, filament), on queue changes
from the API, on the tracker's ``history`` events, and on a slow tick; then it asks the pure
``dispatch.decide`` what starts where. For each start:

1. a run is recorded (and the printer's bed is no longer clear: the print will be on it);
2. the file is uploaded to ``/cache/<safe name>`` over FTPS, with ``transfer`` events;
3. ``project_file`` (``gcode_file`` for plain G-code) is sent and the printer's reply awaited;
4. on success the tracker is told what it will see (``HistoryService.expect``).

A refusal (2025 firmware without Developer Mode) fails the job with the printer's message: sending
it again would only be refused again. Other failures (upload, offline, no answer) are retried with
backoff a few times, then the job fails with a plain reason. A run ends when the tracker's
``history`` "ended" event for that printer arrives; a successful copy counts towards ``copies``.

Everything is in the database before it is announced on the bus (``queue`` events, PLAN.md), and
on start the runs a previous process left in flight are reconciled with what the printers report.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import re
import shutil
import sqlite3
import time
import unicodedata
from collections import Counter
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import orjson

from bambu_edge.bus import Event, EventBus
from bambu_edge.config import Config
from bambu_edge.files.meta import PrintFileMeta
from bambu_edge.files.safezip import ArchiveError
from bambu_edge.files.thumbnails import ThumbnailCache, ThumbnailError, key_for
from bambu_edge.jobs import dispatch
from bambu_edge.jobs.dispatch import Decision, PrinterSnapshot, Readiness, Start, WaitingJob
from bambu_edge.jobs.history import HistoryFilter, record_json
from bambu_edge.jobs.history_service import HISTORY_EVENT
from bambu_edge.jobs.queue import Job, QueueFile, QueueStore, Run
from bambu_edge.jobs.tracker import ExpectedPrint, FilamentSlot
from bambu_edge.printers.bambu import commands
from bambu_edge.printers.base import (
    COMMAND_EVENT,
    PRINTER_ADDED_EVENT,
    PRINTER_EVENT,
    PRINTER_REMOVED_EVENT,
    CommandError,
    CommandOutcome,
)
from bambu_edge.printers.transfers import TransferReporter
from bambu_edge.tasks import TaskSet

log = logging.getLogger(__name__)

QUEUE_EVENT = "queue"
REMOTE_DIR = "/cache"
LOAD_WINDOW_S = 24 * 3600.0  # balance on the copies each printer took in the last day
ACTIVE_PRINT_STATES = frozenset({"PREPARE", "RUNNING", "PAUSE"})
RECORD_SLACK_S = 60.0  # a history record opened this long before its run started is still its
MAX_NAME = 80  # characters of the file name kept on the printer
OPTION_KEYS = tuple(commands.PRINT_OPTIONS)
# project_file's md5: the documented examples and HAB send "", and what the firmware checks is not
# known (BAMBU.md section 6). The file's MD5 is kept; True sends it.
SEND_MD5 = False


def _threemf() -> Any:
    # Imported on first use: the 3MF reader costs ~2.5 MB of RSS, and many units never queue a file.
    from bambu_edge.files import threemf

    return threemf


class QueueError(Exception):
    """A queue request that cannot be done; ``status``/``code`` for the API, ``message`` plain words."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


# --- names -----------------------------------------------------------------------------------------


def job_name(file_name: str) -> str:
    """What the printer shows as the job (``subtask_name``): the file name without its extension."""
    base = "".join(c for c in commands.file_stem(file_name) if c.isprintable()).strip()
    return base[:MAX_NAME] or "print"


def remote_path_for(file_name: str, kind: str) -> str:
    """``/cache/<safe name>.3mf`` (or ``.gcode``): ASCII letters, digits, ``._-``, nothing else."""
    base = file_name.rsplit("/", 1)[-1]
    ext = ".gcode" if kind == "gcode" else ".3mf"
    if base.lower().endswith(ext):
        base = base[: -len(ext)]
    ascii_name = unicodedata.normalize("NFKD", base).encode("ascii", "ignore").decode()
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", ascii_name).strip("._-")[:MAX_NAME]
    return f"{REMOTE_DIR}/{safe or 'print'}{ext}"


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


# The view sections PrinterSnapshot.from_view reads (besides print.state). A report that changes
# none of them (temperatures, progress, Wi-Fi: most reports) cannot change a decision.
DECISION_SECTIONS = frozenset({"link", "model", "nozzle", "ams", "external_spool"})


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
        self.retry_delays = retry_delays
        self.max_attempts = len(retry_delays) + 1
        self.reply_timeout = reply_timeout
        self.debounce_s = debounce_s
        self.clock = clock
        self.files_dir = config.data_dir / "queue" / "files"
        self.tmp_dir = config.data_dir / "queue" / "tmp"
        self._paused = False
        self._beds: dict[str, bool] = {}
        self._files: dict[int, QueueFile] = {}
        self._decision = Decision()
        self._published_jobs: dict[int, bytes] = {}
        self._published_printers: dict[str, Readiness] = {}
        self._signatures: dict[str, tuple[Any, ...]] = {}
        self._retry_at: list[float] = []  # when jobs waiting out a backoff may try again
        self._unsettled: dict[str, Run] = {}  # printer -> run a previous process left mid-dispatch
        self._flights: dict[str, asyncio.Task[None]] = {}  # printer -> dispatch task
        self._flight_runs: dict[int, str] = {}  # run id -> stage ("uploading", "starting")
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False
        self._lock = asyncio.Lock()  # one evaluation at a time, and none while the API changes jobs

    # --- lifecycle ---------------------------------------------------------------------------------

    async def start(self) -> None:
        await asyncio.to_thread(self._prepare_dirs)
        self._paused = await self.store.paused()
        self._beds = await self.store.beds()
        for f in await self.store.list_files():
            self._files[f.id] = f
        for run in await self.store.runs_in_flight():
            if run.state in ("uploading", "starting"):
                self._unsettled[run.printer_id] = run
        sub = self.bus.subscribe(
            PRINTER_EVENT, HISTORY_EVENT, PRINTER_ADDED_EVENT, PRINTER_REMOVED_EVENT, maxsize=512
        )
        await self.evaluate()  # the API has reasons from the first request on (printers: "connecting")
        self._tasks = [
            self.tasks.spawn(self._listen(sub), name="queue-events"),
            self.tasks.spawn(self._loop(), name="queue-dispatcher"),
        ]
        self._poke()

    def _prepare_dirs(self) -> None:
        self.files_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        # Uploads that a previous process did not finish: nothing refers to them.
        shutil.rmtree(self.tmp_dir, ignore_errors=True)
        self.tmp_dir.mkdir(parents=True, exist_ok=True, mode=0o700)

    async def stop(self) -> None:
        self._stopping = True
        tasks = [*self._tasks, *self._flights.values()]
        self._tasks = []
        await self.tasks.cancel(tasks)
        self._flights.clear()

    def _poke(self) -> None:
        self._wake.set()

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

    async def _on_event(self, event: Event) -> None:
        if event.kind == PRINTER_EVENT:
            pid = event.printer_id
            link = self.manager.get(pid) if pid else None
            if link is None:
                return
            changes = event.data.changes
            print_changes = changes.get("print") or {}
            state = print_changes.get("state")
            if state in ("PREPARE", "RUNNING"):
                # Any print, ours or started at the printer, leaves the bed not clear.
                await self._mark_bed(pid, False)
            if "state" not in print_changes and DECISION_SECTIONS.isdisjoint(changes):
                return
            signature = _signature(link.state.view())
            if signature != self._signatures.get(pid):
                self._signatures[pid] = signature
                self._poke()
        elif event.kind == HISTORY_EVENT:
            await self._on_history(event)
        else:
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
        busy = {r.printer_id for r in flights} | set(self._flights)
        links = self.manager.links()
        load = await self.store.recent_load(now - LOAD_WINDOW_S, [link.printer_id for link in links])
        snapshots = [
            PrinterSnapshot.from_view(
                link.state.view(),
                bed_clear=self._beds.get(link.printer_id, False),
                run_in_flight=link.printer_id in busy,
                load=load.get(link.printer_id, 0),
            )
            for link in links
        ]
        waiting = []
        for job in jobs:
            qf = self._files.get(job.file_id)
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
        self._decision = decision
        self._retry_at = [j.next_attempt_at for j in jobs if j.next_attempt_at and j.next_attempt_at > now]
        by_id = {j.id: j for j in jobs}
        for start in decision.starts:
            await self._launch(start, by_id[start.job_id])
        await self._announce([j.id for j in jobs])
        return decision

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

    # --- dispatching one copy ------------------------------------------------------------------------

    async def _launch(self, start: Start, job: Job) -> None:
        qf = self._files[job.file_id]
        pid = start.printer_id
        try:
            run = await self.store.start_run(
                job.id, pid, remote_path=remote_path_for(qf.name, qf.kind), subtask=job_name(qf.name)
            )
        except sqlite3.IntegrityError:  # a run is already in flight there (should not happen)
            log.warning("queue: printer %s already has a queued print in flight", pid)
            return
        self._beds[pid] = False
        log.info("queue: job %d (%s, plate %d) goes to printer %s", job.id, qf.name, job.plate, pid)
        self._flight_runs[run.id] = "uploading"
        self._flights[pid] = self.tasks.spawn(self._dispatch(run, job, qf, start), name=f"queue-run-{run.id}")

    async def _dispatch(self, run: Run, job: Job, qf: QueueFile, start: Start) -> None:
        pid = run.printer_id
        link = self.manager.get(pid)
        name = _printer_name(link, pid)
        try:
            if link is None:
                await self._failed_attempt(run, f"{pid} is no longer configured")
                return
            try:
                await self._upload(link, qf, run)
            except Exception as e:  # FTPS errors are plain sentences already (PrinterFilesError)
                await self._failed_attempt(run, f"upload to {name} failed: {e}")
                return
            self._flight_runs[run.id] = "starting"
            await self.store.update_run(run.id, state="starting")
            await self._announce_job(job.id)
            await self._start_print(link, name, run, job, qf, start)
        except asyncio.CancelledError:
            if not self._stopping and self._flight_runs.get(run.id) == "uploading":
                # The user cancelled the job: nothing reached the printer's bed.
                with contextlib.suppress(Exception):
                    await asyncio.shield(self._cancel_run(run))
            raise
        except Exception:
            log.exception("queue: run %d failed unexpectedly", run.id)
            await self._failed_attempt(run, "an internal error stopped the dispatch (see the log)")
        finally:
            self._flight_runs.pop(run.id, None)
            if self._flights.get(pid) is asyncio.current_task():
                del self._flights[pid]
            self._poke()

    async def _upload(self, link: Any, qf: QueueFile, run: Run) -> None:
        files = getattr(link, "files", None)
        if files is None:
            raise RuntimeError("this printer type cannot receive files")
        path = run.remote_path or remote_path_for(qf.name, qf.kind)
        reporter = TransferReporter(self.bus, run.printer_id, path, "upload", qf.size)
        reporter.progress(0, qf.size)
        try:
            await files.upload(self.file_path(qf), path, reporter.progress)
        except asyncio.CancelledError:
            reporter.failed("cancelled")
            raise
        except Exception as e:
            reporter.failed(str(e))
            raise
        reporter.succeeded(qf.size)

    def _print_params(self, run: Run, job: Job, qf: QueueFile, start: Start) -> dict[str, Any]:
        if qf.kind == "gcode":
            return {"path": run.remote_path}
        options = {k: v for k, v in job.options.items() if k in OPTION_KEYS}
        options["use_ams"] = start.use_ams
        return {
            "path": run.remote_path,
            "plate": job.plate,
            "subtask_name": run.subtask,
            "options": options,
            "ams_mapping": dispatch.shape_ams_mapping(start.ams_mapping),
            "md5": qf.md5.upper() if SEND_MD5 else "",
        }

    async def _start_print(
        self, link: Any, name: str, run: Run, job: Job, qf: QueueFile, start: Start
    ) -> None:
        params = self._print_params(run, job, qf, start)
        timeout = self.reply_timeout or float(getattr(link, "command_timeout", 10.0)) + 5.0
        with self.bus.subscribe(COMMAND_EVENT, maxsize=64) as sub:
            try:
                seq = await link.send_command(commands.PRINT_ACTION, params)
            except CommandError as e:
                if e.code == "bad_request":  # our parameters: trying again cannot help
                    await self._refused(run, f"{name} cannot print this: {e.message}")
                else:
                    await self._failed_attempt(run, e.message)
                return
            await self.store.update_run(run.id, sequence_id=seq)
            reply = await _await_reply(sub, run.printer_id, seq, timeout)
        result = reply.result if reply else "timeout"
        message = reply.message if reply else None
        if result == "success" or (result == "timeout" and self._printing_it(link, run)):
            await self._printing(run, job, qf, start)
        elif result == "failed":
            await self._refused(run, message or f"{name} refused the print.")
        else:
            await self._failed_attempt(run, message or f"{name} did not answer the print command.")

    def _printing_it(self, link: Any, run: Run) -> bool:
        """The printer shows our job running (its reply may have been lost)."""
        view = link.state.view()
        job = view.get("print") or {}
        return job.get("state") in ACTIVE_PRINT_STATES and job.get("job") == run.subtask

    async def _printing(self, run: Run, job: Job, qf: QueueFile, start: Start | None) -> None:
        await self.store.update_run(run.id, state="printing")
        log.info("queue: job %d is printing on %s", job.id, run.printer_id)
        await self._announce_job(job.id)
        await self._expect(run, job, qf, start)

    async def _expect(self, run: Run, job: Job, qf: QueueFile, start: Start | None) -> None:
        if self.history is None:
            return
        filament = tuple(
            FilamentSlot(
                slot=s.tray.index,
                type=s.filament.type or s.tray.type,
                color=s.filament.color or s.tray.color,
                grams=s.filament.used_g,
                meters=s.filament.used_m,
            )
            for s in (start.sources if start else ())
        )
        expected = ExpectedPrint(
            job=run.subtask or job_name(qf.name),
            file=qf.name,
            plate=job.plate,
            filament=filament,
            thumbnail=await self._thumbnail_key(qf, job.plate),
            queue_job_id=job.id,
        )
        try:
            self.history.expect(run.printer_id, expected)
        except Exception:
            log.exception("queue: the history service did not take the announcement of run %d", run.id)

    async def _thumbnail_key(self, qf: QueueFile, plate: int) -> str | None:
        """The plate's picture in the shared cache (put there now if needed), by its key."""
        if self.thumbnails is None or qf.kind != "3mf":
            return None
        key = key_for(qf.sha256, plate)
        cached = await self._cached_thumbnail(qf, plate, key)
        return key if cached else None

    async def _cached_thumbnail(self, qf: QueueFile, plate: int, key: str) -> Path | None:
        path = self.file_path(qf)
        assert self.thumbnails is not None
        try:
            return await asyncio.to_thread(
                self.thumbnails.ensure, key, lambda: _threemf().read_thumbnail(path, plate)
            )
        except (ArchiveError, OSError, ThumbnailError) as e:
            log.info("queue: no thumbnail for %s plate %d: %s", qf.name, plate, e)
            return None

    async def thumbnail(self, qf: QueueFile, plate: int) -> bytes | None:
        """A plate's PNG: from the shared cache (filled on the first request), else from the file."""
        if qf.kind != "3mf" or qf.meta.plate(plate) is None:
            return None
        if self.thumbnails is None:
            try:
                return await asyncio.to_thread(_threemf().read_thumbnail, self.file_path(qf), plate)
            except (ArchiveError, OSError):
                return None
        cached = await self._cached_thumbnail(qf, plate, key_for(qf.sha256, plate))
        if cached is None:
            return None
        try:
            return await asyncio.to_thread(cached.read_bytes)
        except OSError:
            return None

    async def _refused(self, run: Run, message: str) -> None:
        log.warning("queue: printer %s refused job %d: %s", run.printer_id, run.job_id, message)
        await self.store.fail_run_before_print(run.id, error=message, retry_at=None)
        self._beds[run.printer_id] = True
        await self._announce_job(run.job_id)

    async def _failed_attempt(self, run: Run, message: str) -> None:
        job = await self.store.get_job(run.job_id)
        attempts = job.attempts if job else self.max_attempts
        if attempts >= self.max_attempts:
            retry_at = None
            message = f"{message} (gave up after {attempts} attempts)"
        else:
            retry_at = self.clock() + self.retry_delays[max(attempts - 1, 0)]
        log.warning("queue: job %d, attempt %d on %s: %s", run.job_id, attempts, run.printer_id, message)
        await self.store.fail_run_before_print(run.id, error=message, retry_at=retry_at)
        self._beds[run.printer_id] = True
        await self._announce_job(run.job_id)

    async def _cancel_run(self, run: Run) -> None:
        await self.store.cancel_run(run.id)
        self._beds[run.printer_id] = True
        await self._announce_job(run.job_id)

    # --- runs left by a previous process -------------------------------------------------------------

    async def _settle_unsettled(self) -> None:
        for pid, run in list(self._unsettled.items()):
            link = self.manager.get(pid)
            if link is None:  # removed from bambu-edge meanwhile: the copy goes elsewhere
                del self._unsettled[pid]
                await self._failed_attempt(run, f"{pid} is no longer configured")
                continue
            view = link.state.view()
            if (view.get("link") or {}).get("state") != "connected" or not (view.get("print") or {}).get(
                "state"
            ):
                continue  # wait until the printer says what it is doing
            del self._unsettled[pid]
            job = await self.store.get_job(run.job_id)
            qf = self._files.get(job.file_id) if job else None
            if job is not None and qf is not None and self._printing_it(link, run):
                log.info("queue: run %d was started before the restart; it is printing", run.id)
                await self._printing(run, job, qf, None)
            else:
                await self._failed_attempt(run, "bambu-edge restarted before the printer started the print")

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
            if run.history_id is None and record.get("id") is not None:
                await self.store.update_run(run.id, history_id=record["id"])
            if record.get("outcome") not in (None, "running"):
                await self._on_history(
                    Event(HISTORY_EVENT, run.printer_id, {"action": "ended", "record": record})
                )

    async def _record_of(self, run: Run) -> dict[str, Any] | None:
        repo = self.history.repo
        if run.history_id is not None:
            rec = await repo.get(run.history_id)
            return record_json(rec) if rec is not None else None
        recs, _ = await repo.page(
            HistoryFilter(printers=(run.printer_id,), since=run.started_at - RECORD_SLACK_S),
            sort="-started_at",
            limit=10,
        )
        for rec in recs:
            d = record_json(rec)
            if _record_is_run(d, run):
                return d
        return None

    async def _on_history(self, event: Event) -> None:
        action = event.data.get("action")
        record = event.data.get("record") or {}
        pid = event.printer_id or record.get("printer_id")
        if not isinstance(pid, str):
            return
        run = next((r for r in await self.store.runs_in_flight() if r.printer_id == pid), None)
        if action == "ended":
            await self._mark_bed(pid, False)
        if run is None or not _record_is_run(record, run):
            return
        history_id = record.get("id") if isinstance(record.get("id"), int) else None
        if action in ("started", "updated"):
            if history_id is not None and run.history_id != history_id:
                await self.store.update_run(run.id, history_id=history_id)
                await self._announce_job(run.job_id)
            return
        if action != "ended" or run.state != "printing":
            return
        outcome = record.get("outcome")
        success = outcome == "success"
        error = None
        if not success:
            link = self.manager.get(pid)
            name = _printer_name(link, pid)
            why = record.get("failure_reason")
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

    def file_path(self, qf: QueueFile) -> Path:
        return self.files_dir / f"{qf.sha256}.{qf.kind}"

    def temp_path(self) -> Path:
        return self.tmp_dir / f"upload-{os.urandom(8).hex()}.part"

    async def register_file(
        self, temp: Path, *, name: str, kind: str, size: int, sha256: str, md5: str, meta: PrintFileMeta
    ) -> tuple[QueueFile, bool]:
        """Keep an uploaded file that was read and checked: moved into place, then recorded (the
        same bytes uploaded before give the file kept then). The temp file is gone afterwards."""
        try:
            existing = await self.store.file_by_sha(sha256)
            if existing is not None:
                return existing, False
            target = self.files_dir / f"{sha256}.{kind}"
            await asyncio.to_thread(os.replace, temp, target)
            qf, created = await self.store.add_file(
                name=name, kind=kind, size=size, sha256=sha256, md5=md5, meta=meta
            )
            self._files[qf.id] = qf
            if created:
                self.bus.publish(Event(QUEUE_EVENT, None, {"file": qf.to_json()}))
            return qf, created
        finally:
            with contextlib.suppress(FileNotFoundError):
                await asyncio.to_thread(temp.unlink)

    async def list_files(self) -> list[QueueFile]:
        return await self.store.list_files()

    async def get_file(self, file_id: int) -> QueueFile:
        qf = await self.store.get_file(file_id)
        if qf is None:
            raise QueueError(404, "not_found", "No such queue file.")
        return qf

    async def delete_file(self, file_id: int) -> None:
        async with self._lock:
            qf = await self.get_file(file_id)
            if await self.store.file_in_use(file_id):
                raise QueueError(
                    409, "in_use", "A job in the queue still uses this file; remove the job first."
                )
            removed = await self.store.delete_file(file_id)
            self._files.pop(file_id, None)
        with contextlib.suppress(FileNotFoundError):
            await asyncio.to_thread(self.file_path(qf).unlink)
        if self.thumbnails is not None:
            await asyncio.to_thread(self.thumbnails.remove_file, qf.sha256)
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
            qf = self._files.get(job.file_id) or await self.get_file(job.file_id)
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
            runs = (await self.store.runs_for([job_id]))[job_id]
            uploading = [r for r in runs if self._flight_runs.get(r.id) == "uploading"]
            for run in uploading:
                task = self._flights.get(run.printer_id)
                if task is not None:
                    await self.tasks.cancel([task])
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

    # --- print a file already on a printer ----------------------------------------------------------

    async def print_now(
        self,
        printer_id: str,
        path: str,
        *,
        plate: int = 1,
        options: Mapping[str, Any] | None = None,
        ams_mapping: list[int] | None = None,
    ) -> dict[str, Any]:
        """Start a file on the printer's storage. Without an ``ams_mapping`` a 3MF is read (fetched
        over FTPS to a temp file) and its filaments matched to what the printer has loaded."""
        link = self.manager.get(printer_id)
        if link is None:
            raise QueueError(404, "not_found", "No such printer.")
        view = link.state.view()
        name = view.get("name") or printer_id
        if (view.get("link") or {}).get("state") != "connected":
            raise QueueError(409, "offline", f"{name} is not connected.")
        state = (view.get("print") or {}).get("state")
        if state in ACTIVE_PRINT_STATES:
            raise QueueError(409, "busy", f"{name} is busy ({state}).")
        try:
            remote = commands.storage_path(path)
        except CommandError as e:
            raise QueueError(400, "bad_request", e.message) from None
        params: dict[str, Any] = {"path": remote}
        opts = dict(options or {})
        if remote.lower().endswith(".3mf"):
            if ams_mapping is None:
                match = await self._match_remote(link, remote, plate, view, bool(opts.get("use_ams", True)))
                ams_mapping = dispatch.shape_ams_mapping(match.ams_mapping)
                opts["use_ams"] = match.use_ams
            params.update(plate=plate, options=opts, ams_mapping=ams_mapping)
        try:
            seq = await link.send_command(commands.PRINT_ACTION, params)
        except CommandError as e:
            raise QueueError(409 if e.code == "offline" else 400, e.code, e.message) from None
        log.info("printer %s: print of %s requested (sequence_id %s)", printer_id, remote, seq)
        return {"sequence_id": seq, "ams_mapping": ams_mapping}

    async def _match_remote(
        self, link: Any, remote: str, plate: int, view: Mapping[str, Any], use_ams: bool
    ) -> dispatch.FilamentMatch:
        files = getattr(link, "files", None)
        if files is None:
            raise QueueError(400, "bad_request", "This printer's files cannot be read; give 'ams_mapping'.")
        temp = self.temp_path()
        try:
            try:
                await files.download(remote, temp)
            except FileNotFoundError as e:
                raise QueueError(500, "internal", str(e)) from None
            except Exception as e:  # PrinterFilesError: plain words and a kind
                status = 404 if getattr(e, "kind", None) == "not_found" else 502
                raise QueueError(
                    status, getattr(e, "kind", "storage"), f"Could not read {remote}: {e}"
                ) from None
            try:
                meta = await asyncio.to_thread(_threemf().read_3mf, temp, geometry=False)
            except ArchiveError as e:
                raise QueueError(400, e.code, f"{remote}: {e}") from None
        finally:
            with contextlib.suppress(FileNotFoundError):
                await asyncio.to_thread(temp.unlink)
        problem = dispatch.plate_problem(meta, plate)
        if problem:
            raise QueueError(400, "bad_request", f"{remote}: {problem}.")
        snap = PrinterSnapshot.from_view(view, bed_clear=True)
        incompatible = dispatch.compatibility(meta, plate, snap)
        if incompatible:
            raise QueueError(409, "incompatible", f"{snap.name}: {incompatible}.")
        match = dispatch.match_filaments(dispatch.plate_filaments(meta, plate), snap, use_ams)
        if isinstance(match, str):
            raise QueueError(409, "filament", f"{snap.name}: {match}.")
        return match

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


def _printer_name(link: Any, printer_id: str) -> str:
    return str(link.state.view().get("name") or printer_id) if link is not None else printer_id


def _record_is_run(record: Mapping[str, Any], run: Run) -> bool:
    """Is this history record the print of this run? By queue job id; else by job name and time."""
    qid = record.get("queue_job_id")
    if isinstance(qid, int):
        return qid == run.job_id
    started = record.get("started_at")
    return (
        record.get("job") == run.subtask
        and isinstance(started, int | float)
        and started >= run.started_at - RECORD_SLACK_S
    )


async def _await_reply(sub: Any, printer_id: str, seq: str, timeout: float) -> CommandOutcome | None:
    """The command event answering ``seq`` on ``printer_id``; None if none came in time."""
    try:
        async with asyncio.timeout(timeout):
            while True:
                event = await sub.get()
                if event.printer_id == printer_id and event.data.sequence_id == seq:
                    return event.data
    except TimeoutError:
        return None
