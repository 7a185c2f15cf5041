"""The history service: one print tracker per printer, fed from the event bus, its decisions written
to the database and then announced.

Inputs: ``printer`` events (each carries the printer's view after the change and the job's
identity: ``PrinterUpdate``; the last one per printer is kept), ``command`` events (our stop
accepted -> cancelled), ``printer_removed`` events, and ``expect()`` from the queue's dispatcher and
print-now. A report that only moves progress, layer or remaining time (most reports of a print) is
folded into the open record in place (``PrintTracker.progressed``) and the record is snapshotted
only when its paced write is queued. A tick every ``tick_s`` observes every printer's last update
once more, so time-based rules (an hour in an unknown state, no full report after a reconnect) and
printers that disappeared are handled without a report.

Writes go through one ordered queue and one writer task, so the database sees the tracker's
decisions in the order they were made. Opening and closing a record, state changes (pause/resume)
and reconciles are written at once; progress/layers at most every ``progress_write_s`` (SD card
wear), and on stop. A write that fails for a passing reason (disk busy, I/O error) is retried, in
order; one the schema refuses is logged and dropped. After each commit, and only then, a
``history`` event is published: ``Event("history", printer_id, RecordChange(action, record))``
(``action`` "started" | "updated" | "ended", ``record`` the PrintRecord as committed; its JSON is
made at the socket). ``ended`` may come twice for one record when its outcome is corrected (failed
-> cancelled, when our stop's answer arrives after the printer's report). The file of a print
nobody announced is read from the printer (jobs/print_files.py) once it has run a while.
"""

from __future__ import annotations

import asyncio
import logging
import math
import sqlite3
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from bambu_edge.bus import Event, EventBus, Listener
from bambu_edge.files.thumbnails import ThumbnailCache, ThumbnailError
from bambu_edge.jobs.history import HistoryRepository, record_json
from bambu_edge.jobs.records import Action, ActionKind, ExpectedPrint, PrintRecord
from bambu_edge.jobs.tracker import PROGRESS_FIELDS, PrintTracker, observe
from bambu_edge.printers.base import (
    COMMAND_EVENT,
    PRINTER_EVENT,
    PRINTER_REMOVED_EVENT,
    WARN_INTERVAL_S,
    PrinterUpdate,
)
from bambu_edge.printers.beat import sleep_to_beat
from bambu_edge.store.db import Database
from bambu_edge.tasks import TaskSet

log = logging.getLogger(__name__)

HISTORY_EVENT = "history"
PROGRESS_WRITE_S = 300.0
TICK_S = 10.0
REMOVED_GRACE_S = 120.0  # a printer with an open record missing from the manager this long is gone
RETRY_DELAYS_S = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
STOP_FLUSH_S = 3.0
READER_CACHE_KIB = 1024
# A print started elsewhere has its file read this long after it showed up: the queue's
# announcement (which knows more) comes within moments of its own prints.
PRINT_FILE_DELAY_S = 30.0
ANNOUNCE = {"open": "started", "update": "updated", "close": "ended", "amend": "ended"}
# The sections of the printer's view that observe() reads. Most reports change none of them
# (temperatures, fans, Wi-Fi): those are not observed once the tracker is watching. The tick
# observes every printer anyway (last_seen_at, time-based rules).
TRACKED_SECTIONS = frozenset({"link", "print", "hms", "ams", "external_spool", "name", "model"})


@dataclass(frozen=True, slots=True)
class RecordChange:
    """The payload of a ``history`` event: a record as committed, and what happened to it."""

    action: str  # "started" | "updated" | "ended"
    record: PrintRecord  # a snapshot: never changed after it is published

    def to_json(self) -> dict[str, Any]:
        return {"action": self.action, "record": record_json(self.record)}


@dataclass(slots=True)
class _Write:
    kind: ActionKind
    record: PrintRecord


def _progress_only(update: PrinterUpdate) -> bool:
    """Did this report (of the same job) move only progress-like fields of what the tracker reads?
    (Of the tracked sections only ``print`` changed, and in it only PROGRESS_FIELDS.)"""
    changes = update.changes
    moved = changes.get("print")
    if type(moved) is not dict or not PROGRESS_FIELDS.issuperset(moved):
        return False
    return sum(1 for k in changes if k in TRACKED_SECTIONS) == 1


class HistoryService:
    def __init__(
        self,
        store: Any,
        manager: Any,
        bus: EventBus,
        *,
        thumbnails: ThumbnailCache | None = None,
        tasks: TaskSet | None = None,
    ):
        self.store = store
        self.manager = manager
        self.bus = bus
        self.thumbnails = thumbnails
        self.tasks = tasks or TaskSet("history")
        self.print_file_delay_s = PRINT_FILE_DELAY_S
        self._fetch_lock = asyncio.Lock()  # one print file in memory at a time
        self._fetches: set[asyncio.Task[None]] = set()
        self.progress_write_s = PROGRESS_WRITE_S
        self.tick_s = TICK_S
        self.removed_grace_s = REMOVED_GRACE_S
        self._repo: HistoryRepository | None = None
        self._reader: Database | None = None
        self._trackers: dict[str, PrintTracker] = {}
        self._queue: deque[_Write] = deque()
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._dirty: dict[str, PrintRecord] = {}  # uid -> latest snapshot not written yet
        self._last_write: dict[str, float] = {}  # uid -> when it was last written
        self._written: dict[str, PrintRecord] = {}  # uid -> the snapshot last written (open records)
        self._missing: dict[str, float] = {}  # printer id -> first tick it had no link
        self._updates: dict[str, PrinterUpdate] = {}  # printer id -> the last update seen
        self._listener: Listener | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._writer: asyncio.Task[None] | None = None
        self._warned_at = -1e18

    # --- service ------------------------------------------------------------------------------------

    @property
    def repo(self) -> HistoryRepository:
        if self._repo is None:
            raise RuntimeError("the history service is not started")
        return self._repo

    async def start(self) -> None:
        db = self.store.db
        # The API's queries get their own read-only connection (see HistoryRepository).
        self._reader = await Database.open(db.path)
        try:
            await self._reader.execute("PRAGMA query_only=ON")
            await self._reader.execute(f"PRAGMA cache_size=-{READER_CACHE_KIB}")
            self._repo = HistoryRepository(db, reader=self._reader, node=getattr(self.manager, "node", None))
            await self._start_tracking()
        except BaseException:
            await self._reader.close()
            self._reader = None
            raise

    async def _start_tracking(self) -> None:
        assert self._repo is not None
        for rec in await self._repo.open_records():
            self._trackers[rec.printer_id] = PrintTracker(rec.printer_id, record=rec)
        if self._trackers:
            log.info("history: %d print(s) were open when bambu-edge last stopped", len(self._trackers))
        # Listening and fed in one step (no await between): nothing published meanwhile is lost.
        # Events are handled in the publisher's turn (all of it is in-memory bookkeeping; writes go
        # to the writer task): no task switch per printer report.
        self._listener = self.bus.listen(
            PRINTER_EVENT, COMMAND_EVENT, PRINTER_REMOVED_EVENT, callback=self._on_event_guarded
        )
        self._writer = self.tasks.spawn(self._write_loop(), name="history-writer")
        self._tasks = [self.tasks.spawn(self._tick_loop(), name="history-tick")]
        now = time.time()
        for link in self.manager.links():
            # Reports may have arrived before we subscribed. The links started with this process, so
            # a state that has had a report holds nothing from before their current connection.
            state = link.state
            seen = state.updated_at is not None
            update = PrinterUpdate({}, state.view(), report=seen, full=seen, identity=state.identity)
            self._on_printer(link.printer_id, update, now)

    async def stop(self) -> None:
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        tasks, self._tasks = [*self._tasks, *self._fetches], []
        await self.tasks.cancel(tasks)
        # Progress not written yet is written now: a clean stop loses nothing.
        for rec in self._dirty.values():
            self._enqueue("update", rec.snapshot())
        self._dirty.clear()
        writer, self._writer = self._writer, None
        if writer is not None:
            try:
                await asyncio.wait_for(self._drained(), STOP_FLUSH_S)
            except TimeoutError:
                log.error("history: %d write(s) not done at stop", len(self._queue))
            await self.tasks.cancel([writer])
        reader, self._reader = self._reader, None
        if reader is not None:
            await reader.close()

    async def _drained(self) -> None:
        while self._queue or not self._idle.is_set():
            self._wake.set()
            await asyncio.sleep(0.01)

    # --- inputs -------------------------------------------------------------------------------------

    def expect(self, printer_id: str, expected: ExpectedPrint) -> None:
        """The dispatcher has just started ``expected`` on ``printer_id`` (it sent project_file):
        the record the tracker opens for it carries its metadata and ``queue_job_id``. Also applies
        if the printer's report showed the print before this call. Returns at once; the record is
        written (and announced) by the writer."""
        if not isinstance(expected, ExpectedPrint):
            raise TypeError("expect() needs an ExpectedPrint")
        self._handle(self._tracker(printer_id).expect(expected, time.time()))

    async def thumbnail(self, record: PrintRecord) -> bytes | None:
        """The record's thumbnail (PNG) from the thumbnail cache, if it has one."""
        if not record.thumbnail or self.thumbnails is None:
            return None
        try:
            return await asyncio.to_thread(self.thumbnails.get, record.thumbnail)
        except ThumbnailError:  # not a key of the cache (a record synced from elsewhere)
            return None

    # --- internals: trackers ------------------------------------------------------------------------

    def _tracker(self, printer_id: str) -> PrintTracker:
        tracker = self._trackers.get(printer_id)
        if tracker is None:
            tracker = self._trackers[printer_id] = PrintTracker(printer_id)
        return tracker

    def _on_printer(self, pid: str, update: PrinterUpdate, now: float) -> None:
        tracker = self._tracker(pid)
        last = self._updates.get(pid)
        self._updates[pid] = update
        same_job = last is not None and (update.identity is last.identity or update.identity == last.identity)
        if update.report and tracker.watching and same_job:
            if TRACKED_SECTIONS.isdisjoint(update.changes):
                return  # temperatures, fans, Wi-Fi: nothing the tracker reads
            if _progress_only(update):
                rec = tracker.progressed(update.view["print"], now)
                if rec is not None:
                    self._paced(rec, now)
                    return
        obs = observe(update.view, update.identity, now, report=update.report, full=update.full)
        self._handle(tracker.observe(obs))

    def _on_event_guarded(self, event: Event) -> None:
        try:
            self._on_event(event)
        except Exception:  # one bad event must not end history
            self._warn("history: an event could not be handled", exc_info=True)

    def _on_event(self, event: Event) -> None:
        pid = event.printer_id
        if not isinstance(pid, str):
            return
        now = time.time()
        data = event.data
        if event.kind == PRINTER_EVENT:
            if self.manager.get(pid) is not None:  # not the last words of one just removed
                self._on_printer(pid, data, now)
        elif event.kind == COMMAND_EVENT:
            tracker = self._trackers.get(pid)
            if tracker is not None:
                self._handle(tracker.command(data.action, data.result, now))
        elif event.kind == PRINTER_REMOVED_EVENT:
            self._updates.pop(pid, None)
            tracker = self._trackers.pop(pid, None)
            if tracker is not None:
                self._handle(tracker.removed(now))

    async def _tick_loop(self) -> None:
        while True:
            await sleep_to_beat(self.tick_s)
            try:
                self._tick(time.time())
            except Exception:
                self._warn("history: the periodic check failed", exc_info=True)

    def _tick(self, now: float) -> None:
        for pid, update in list(self._updates.items()):
            if self.manager.get(pid) is None:
                continue
            self._missing.pop(pid, None)
            obs = observe(update.view, update.identity, now, report=False, full=False)
            self._handle(self._tracker(pid).observe(obs))
        for pid, tracker in list(self._trackers.items()):
            if self.manager.get(pid) is not None:
                continue
            if tracker.record is None:
                self._trackers.pop(pid, None)
                self._updates.pop(pid, None)
                continue
            if now - self._missing.setdefault(pid, now) >= self.removed_grace_s:
                self._trackers.pop(pid, None)
                self._updates.pop(pid, None)
                self._missing.pop(pid, None)
                self._handle(tracker.removed(now))
        for uid, rec in list(self._dirty.items()):
            if now - self._last_write.get(uid, -math.inf) >= self.progress_write_s:
                del self._dirty[uid]
                self._last_write[uid] = now
                self._enqueue("update", rec.snapshot())

    # --- internals: writes --------------------------------------------------------------------------

    def _paced(self, rec: PrintRecord, now: float) -> None:
        """The open record moved on (progress): written now if its last write is old enough, else
        kept as the tracker's own record (not a copy) and snapshotted when its write is queued."""
        uid = rec.uid
        if now - self._last_write.get(uid, -math.inf) < self.progress_write_s:
            self._dirty[uid] = rec
            return
        self._dirty.pop(uid, None)
        self._last_write[uid] = now
        self._enqueue("update", rec.snapshot())

    def _handle(self, actions: list[Action]) -> None:
        now = time.time()
        for a in actions:
            uid = a.record.uid
            if a.kind == "update" and not a.urgent:
                if now - self._last_write.get(uid, -math.inf) < self.progress_write_s:
                    self._dirty[uid] = a.record  # progress: written with the next write, or later
                    continue
            self._dirty.pop(uid, None)
            if a.kind in ("close", "amend"):  # closed: no progress to pace any more
                self._last_write.pop(uid, None)
            else:
                self._last_write[uid] = now
            self._enqueue(a.kind, a.record)

    def _enqueue(self, kind: ActionKind, rec: PrintRecord) -> None:
        q = self._queue
        if kind == "update" and q and q[-1].kind == "update" and q[-1].record.uid == rec.uid:
            q[-1] = _Write(kind, rec)  # a newer snapshot of the same record replaces the queued one
        else:
            q.append(_Write(kind, rec))
        self._wake.set()

    async def _write_loop(self) -> None:
        failures = 0
        while True:
            if not self._queue:
                self._idle.set()
                await self._wake.wait()
                self._wake.clear()
                continue
            self._idle.clear()
            item = self._queue.popleft()
            try:
                await self._write(item)
                failures = 0
            except asyncio.CancelledError:
                self._queue.appendleft(item)
                raise
            except sqlite3.IntegrityError as e:
                log.error("history: the database refused a record (%s); it is dropped: %r", e, item.record)
            except (sqlite3.Error, OSError) as e:
                # Disk busy or failing: keep the order, try again later.
                self._queue.appendleft(item)
                delay = RETRY_DELAYS_S[min(failures, len(RETRY_DELAYS_S) - 1)]
                failures += 1
                self._warn(f"history: a database write failed ({e}); retrying in {delay:g} s")
                await asyncio.sleep(delay)
            except Exception:
                log.exception("history: a record could not be written; it is dropped")

    async def _write(self, item: _Write) -> None:
        rec = item.record
        if item.kind == "amend":
            rec.id = await self.repo.amend(rec)
            if rec.id is None:
                return
        else:
            closing = item.kind == "close"
            rec.id = await self.repo.save(rec, durable=closing, previous=self._written.get(rec.uid))
            if closing:
                self._written.pop(rec.uid, None)
            else:
                self._written[rec.uid] = rec
        tracker = self._trackers.get(rec.printer_id)
        if tracker is not None and tracker.record is not None and tracker.record.uid == rec.uid:
            tracker.record.id = rec.id
        if item.kind == "open" and tracker is not None and tracker.needs_file(rec.uid):
            self._read_print_file_later(rec)
        if rec.node is None:
            rec.node = self.repo.node  # this unit's record (stored with node NULL)
        # Committed: now it may be announced.
        self.bus.publish(Event(HISTORY_EVENT, rec.printer_id, RecordChange(ANNOUNCE[item.kind], rec)))

    async def set_energy(self, record_id: int, kwh: float, cost: float | None) -> PrintRecord | None:
        """Store what an ended print used (bambu_edge/power/) and announce the record again."""
        rec = await self.repo.set_energy(record_id, kwh, cost)
        if rec is not None:
            self.bus.publish(Event(HISTORY_EVENT, rec.printer_id, RecordChange("updated", rec)))
        return rec

    # --- internals: the file of a print started elsewhere ----------------------------------------

    def _read_print_file_later(self, rec: PrintRecord) -> None:
        link = self.manager.get(rec.printer_id)
        if link is None or not hasattr(link, "files"):
            return
        task = self.tasks.spawn(self._read_print_file(rec.printer_id, rec.uid), name="history-print-file")
        self._fetches.add(task)
        task.add_done_callback(self._fetches.discard)

    async def _read_print_file(self, printer_id: str, uid: str) -> None:
        await asyncio.sleep(self.print_file_delay_s)
        async with self._fetch_lock:
            tracker = self._trackers.get(printer_id)
            rec = tracker.record if tracker is not None else None
            link = self.manager.get(printer_id)
            if rec is None or tracker is None or not tracker.needs_file(uid) or link is None:
                return  # ended, or labelled by an announcement meanwhile
            # Imported on first use: the 3MF reader costs ~2.5 MB of RSS, and many units never need it.
            from bambu_edge.jobs import print_files

            try:
                info = await print_files.print_file_info(link.files, rec.job, rec.key.file, self.thumbnails)
            except Exception as exc:  # best effort: never a problem for the print itself
                log.info("printer %s: the print's file could not be read (%s)", printer_id, exc)
                return
        if info is not None and tracker is not None:
            self._handle(tracker.enrich(uid, info))

    def _warn(self, message: str, **kwargs: Any) -> None:
        now = time.monotonic()
        if now - self._warned_at >= WARN_INTERVAL_S:
            self._warned_at = now
            log.warning(message, **kwargs)
