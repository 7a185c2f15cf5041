"""One queued copy on one printer, from upload to print: the file goes to ``/cache/<safe name>``
over FTPS (with ``transfer`` events), ``project_file`` (``gcode_file`` for plain G-code) is sent and
the printer's reply awaited, and on success the history service is told what it will see
(``HistoryService.expect``).

A refusal (2025 firmware without Developer Mode) fails the job with the printer's message: sending
it again would only be refused again. Other failures (upload, offline, no answer) are retried with
backoff a few times (``retry_delays``), then the job fails with a plain reason. Whatever happens,
the printer's bed is free for the next decision again unless the print started.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import sqlite3
import unicodedata
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from bambu_edge.bus import EventBus
from bambu_edge.jobs import dispatch
from bambu_edge.jobs.dispatch import FilamentSource, Start
from bambu_edge.jobs.library import FileLibrary
from bambu_edge.jobs.queue import Job, QueueFile, QueueStore, Run
from bambu_edge.jobs.records import ExpectedPrint, FilamentSlot
from bambu_edge.printers.bambu import commands
from bambu_edge.printers.bambu.protocol import ACTIVE_PRINT_STATES
from bambu_edge.printers.base import COMMAND_EVENT, CommandError, CommandOutcome, PrinterUpdate
from bambu_edge.printers.transfers import TransferReporter
from bambu_edge.tasks import TaskSet

log = logging.getLogger(__name__)

REMOTE_DIR = "/cache"
MAX_NAME = 80  # characters of the file name kept on the printer
OPTION_KEYS = tuple(commands.PRINT_OPTIONS)
# project_file's md5: the documented examples and HAB send "", and what the firmware checks is not
# known (BAMBU.md section 6). The file's MD5 is kept; True sends it.
SEND_MD5 = False


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


def planned_filament(sources: Iterable[FilamentSource]) -> tuple[FilamentSlot, ...]:
    """The trays a print will use, with the slicer's type, colour, grams and metres (for history)."""
    return tuple(
        FilamentSlot(
            slot=s.tray.index,
            type=s.filament.type or s.tray.type,
            color=s.filament.color or s.tray.color,
            grams=s.filament.used_g,
            meters=s.filament.used_m,
        )
        for s in sources
    )


def shows_job(update: PrinterUpdate | None, subtask: str | None) -> bool:
    """The printer shows ``subtask`` under way (our print's reply may have been lost)."""
    job = update.view.get("print") if update is not None else None
    return type(job) is dict and job.get("state") in ACTIVE_PRINT_STATES and job.get("job") == subtask


class RunDriver:
    """Carries queued copies from upload to print, one task per printer (``flights``)."""

    def __init__(
        self,
        store: QueueStore,
        bus: EventBus,
        library: FileLibrary,
        history: Any,
        *,
        beds: dict[str, bool],
        announce_job: Callable[[int], Awaitable[None]],
        wake: Callable[[], None],
        printer_name: Callable[[str], str],
        last_update: Callable[[str], PrinterUpdate | None],
        retry_delays: tuple[float, ...],
        reply_timeout: float | None,
        clock: Callable[[], float],
        tasks: TaskSet,
    ):
        self.store = store
        self.bus = bus
        self.library = library
        self.history = history
        self.beds = beds  # the dispatcher's: a run that did not start leaves the bed as it was
        self.announce_job = announce_job
        self.wake = wake
        self.printer_name = printer_name
        self.last_update = last_update
        self.retry_delays = retry_delays
        self.max_attempts = len(retry_delays) + 1
        self.reply_timeout = reply_timeout
        self.clock = clock
        self.tasks = tasks
        self.flights: dict[str, asyncio.Task[None]] = {}  # printer -> dispatch task
        self.stages: dict[int, str] = {}  # run id -> stage ("uploading", "starting")
        self.stopping = False

    async def launch(self, start: Start, job: Job, qf: QueueFile, link: Any) -> None:
        pid = start.printer_id
        try:
            run = await self.store.start_run(
                job.id, pid, remote_path=remote_path_for(qf.name, qf.kind), subtask=job_name(qf.name)
            )
        except sqlite3.IntegrityError:  # a run is already in flight there (should not happen)
            log.warning("queue: printer %s already has a queued print in flight", pid)
            return
        self.beds[pid] = False
        log.info("queue: job %d (%s, plate %d) goes to printer %s", job.id, qf.name, job.plate, pid)
        self.stages[run.id] = "uploading"
        self.flights[pid] = self.tasks.spawn(
            self._dispatch(run, job, qf, start, link), name=f"queue-run-{run.id}"
        )

    async def cancel_uploads(self, runs: Iterable[Run]) -> None:
        """Stop the uploads of these runs (their job was removed): nothing reached the bed."""
        for run in runs:
            if self.stages.get(run.id) != "uploading":
                continue
            task = self.flights.get(run.printer_id)
            if task is not None:
                await self.tasks.cancel([task])

    async def stop(self) -> None:
        self.stopping = True
        await self.tasks.cancel(list(self.flights.values()))
        self.flights.clear()

    async def _dispatch(self, run: Run, job: Job, qf: QueueFile, start: Start, link: Any) -> None:
        pid = run.printer_id
        name = self.printer_name(pid)
        try:
            if link is None:
                await self.failed_attempt(run, f"{pid} is no longer configured")
                return
            try:
                await self._upload(link, qf, run)
            except Exception as e:  # FTPS errors are plain sentences already (PrinterFilesError)
                await self.failed_attempt(run, f"upload to {name} failed: {e}")
                return
            self.stages[run.id] = "starting"
            await self.store.update_run(run.id, state="starting")
            await self.announce_job(job.id)
            await self._start_print(link, name, run, job, qf, start)
        except asyncio.CancelledError:
            if not self.stopping and self.stages.get(run.id) == "uploading":
                # The user cancelled the job: nothing reached the printer's bed.
                with contextlib.suppress(Exception):
                    await asyncio.shield(self._cancel_run(run))
            raise
        except Exception:
            log.exception("queue: run %d failed unexpectedly", run.id)
            await self.failed_attempt(run, "an internal error stopped the dispatch (see the log)")
        finally:
            self.stages.pop(run.id, None)
            if self.flights.get(pid) is asyncio.current_task():
                del self.flights[pid]
            self.wake()

    async def _upload(self, link: Any, qf: QueueFile, run: Run) -> None:
        files = getattr(link, "files", None)
        if files is None:
            raise RuntimeError("this printer type cannot receive files")
        path = run.remote_path or remote_path_for(qf.name, qf.kind)
        reporter = TransferReporter(self.bus, run.printer_id, path, "upload", qf.size)
        reporter.progress(0, qf.size)
        try:
            await files.upload(self.library.file_path(qf), path, reporter.progress)
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
                    await self.refused(run, f"{name} cannot print this: {e.message}")
                else:
                    await self.failed_attempt(run, e.message)
                return
            await self.store.update_run(run.id, sequence_id=seq)
            reply = await _await_reply(sub, run.printer_id, seq, timeout)
        result = reply.result if reply else "timeout"
        message = reply.message if reply else None
        printing = shows_job(self.last_update(run.printer_id), run.subtask)
        if result == "success" or (result == "timeout" and printing):
            await self.printing(run, job, qf, start)
        elif result == "failed":
            await self.refused(run, message or f"{name} refused the print.")
        else:
            await self.failed_attempt(run, message or f"{name} did not answer the print command.")

    async def printing(self, run: Run, job: Job, qf: QueueFile, start: Start | None) -> None:
        await self.store.update_run(run.id, state="printing")
        log.info("queue: job %d is printing on %s", job.id, run.printer_id)
        await self.announce_job(job.id)
        await self._expect(run, job, qf, start)

    async def _expect(self, run: Run, job: Job, qf: QueueFile, start: Start | None) -> None:
        if self.history is None:
            return
        expected = ExpectedPrint(
            job=run.subtask or job_name(qf.name),
            file=qf.name,
            plate=job.plate,
            filament=planned_filament(start.sources if start else ()),
            thumbnail=await self.library.thumbnail_key(qf, job.plate),
            queue_job_id=job.id,
        )
        try:
            self.history.expect(run.printer_id, expected)
        except Exception:
            log.exception("queue: the history service did not take the announcement of run %d", run.id)

    async def refused(self, run: Run, message: str) -> None:
        log.warning("queue: printer %s refused job %d: %s", run.printer_id, run.job_id, message)
        await self.store.fail_run_before_print(run.id, error=message, retry_at=None)
        self.beds[run.printer_id] = True
        await self.announce_job(run.job_id)

    async def failed_attempt(self, run: Run, message: str) -> None:
        job = await self.store.get_job(run.job_id)
        attempts = job.attempts if job else self.max_attempts
        if attempts >= self.max_attempts:
            retry_at = None
            message = f"{message} (gave up after {attempts} attempts)"
        else:
            retry_at = self.clock() + self.retry_delays[max(attempts - 1, 0)]
        log.warning("queue: job %d, attempt %d on %s: %s", run.job_id, attempts, run.printer_id, message)
        await self.store.fail_run_before_print(run.id, error=message, retry_at=retry_at)
        self.beds[run.printer_id] = True
        await self.announce_job(run.job_id)

    async def _cancel_run(self, run: Run) -> None:
        await self.store.cancel_run(run.id)
        self.beds[run.printer_id] = True
        await self.announce_job(run.job_id)


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
