"""Moonraker's own history (``server.history.list``) imported once per Klipper printer, so the
prints it made before bambu-edge watched it appear in the history too.

Each job becomes a closed ``PrintRecord`` whose uid is derived from the printer and Moonraker's
job id, so importing again (every reconnect, every restart) writes the same rows, never doubles.
Prints bambu-edge followed itself (the tracker's records) are not imported a second time: only jobs
that started before the printer's first tracked record are taken.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from typing import Any

from bambu_edge.bus import Event, EventBus
from bambu_edge.jobs.history import HistoryRepository
from bambu_edge.jobs.records import FilamentSlot, JobKey, PrintRecord
from bambu_edge.printers.base import PRINTER_EVENT, PrinterUpdate
from bambu_edge.printers.moonraker import records
from bambu_edge.printers.moonraker.status import file_stem
from bambu_edge.tasks import TaskSet

log = logging.getLogger(__name__)

PAGE = 100
MAX_JOBS = 10_000  # a printer's whole life of prints, and a bound against a runaway server
TRACKED_MARGIN_S = 60.0  # a job that started this close to a tracked print is that print


def record_uid(printer_id: str, job_id: str) -> str:
    return hashlib.sha256(f"moonraker:{printer_id}:{job_id}".encode()).hexdigest()[:32]


def imported_record(printer_id: str, view: dict[str, Any], job: records.HistoryJob) -> PrintRecord:
    duration = job.print_duration_s
    if job.end_time is not None and job.end_time >= job.start_time:
        duration = job.end_time - job.start_time
    grams = job.filament_weight_g
    meters = job.filament_used_mm / 1000.0 if job.filament_used_mm is not None else None
    return PrintRecord(
        uid=record_uid(printer_id, job.job_id),
        printer_id=printer_id,
        started_at=job.start_time,
        printer_name=view.get("name"),
        model=view.get("model"),
        file=job.filename,
        job=file_stem(job.filename),
        ended_at=job.end_time if job.end_time is not None else job.start_time + (job.print_duration_s or 0.0),
        duration_s=duration,
        outcome=job.status,
        progress=100 if job.status == "success" else None,
        filament=(FilamentSlot(None, job.filament_type, None, grams, meters),)
        if (grams or meters or job.filament_type)
        else (),
        state="FINISH" if job.status == "success" else "FAILED",
        key=JobKey(file=job.filename, job_id=f"moonraker:{job.job_id}"),
    )


class MoonrakerHistoryImport:
    """Imports each Klipper printer's Moonraker history when its link connects (once per run)."""

    def __init__(self, repo: HistoryRepository, manager: Any, bus: EventBus, tasks: TaskSet):
        self.repo = repo
        self.manager = manager
        self.bus = bus
        self.tasks = tasks
        self.done: set[str] = set()
        self._running: set[str] = set()
        self._listener: Any = None

    def start(self) -> None:
        self._listener = self.bus.listen(PRINTER_EVENT, callback=self._on_event)
        for link in self.manager.links():
            self._consider(link.printer_id, link.state.view())

    def stop(self) -> None:
        if self._listener is not None:
            self._listener.close()
            self._listener = None

    def _on_event(self, event: Event) -> None:
        update = event.data
        if isinstance(update, PrinterUpdate) and "link" in update.changes:
            self._consider(event.printer_id or "", update.view)

    def _consider(self, printer_id: str, view: Any) -> None:
        if view.get("type") != "moonraker" or (view.get("link") or {}).get("state") != "connected":
            return
        if printer_id in self.done or printer_id in self._running:
            return
        self._running.add(printer_id)
        self.tasks.spawn(self._import(printer_id), name=f"moonraker-history-{printer_id}")

    async def _import(self, printer_id: str) -> None:
        try:
            link = self.manager.get(printer_id)
            if link is None or not hasattr(link, "history"):
                return
            count = await self.import_from(printer_id, link)
            self.done.add(printer_id)
            log.info("history: Moonraker history of %s checked: %d past print(s) imported", printer_id, count)
        except (ConnectionError, TimeoutError, OSError) as e:
            log.info("history: Moonraker history of %s not imported yet (%s); next connection", printer_id, e)
        except Exception:
            log.exception("history: importing the Moonraker history of %s failed", printer_id)
        finally:
            self._running.discard(printer_id)

    async def import_from(self, printer_id: str, link: Any) -> int:
        first_tracked = await self._first_tracked(printer_id)
        imported = 0
        start = 0
        while start < MAX_JOBS:
            page = await link.history(limit=PAGE, start=start)
            raw = page.get("jobs") if isinstance(page, dict) else None
            if not isinstance(raw, list) or not raw:
                break
            for job in records.history_jobs(page):
                if first_tracked is not None and job.start_time >= first_tracked - TRACKED_MARGIN_S:
                    continue  # bambu-edge followed this one (or a later one) itself
                rec = imported_record(printer_id, link.state.view(), job)
                if await self.repo.db.fetchone("SELECT 1 FROM print_history WHERE uid = ?", (rec.uid,)):
                    continue  # imported before: nothing is written again (SD card)
                if await self.repo.save(rec, durable=True) is not None:
                    imported += 1
            start += len(raw)
            await asyncio.sleep(0)
        return imported

    async def _first_tracked(self, printer_id: str) -> float | None:
        """When bambu-edge's own tracking of this printer's prints began (its first record that
        is not an imported one: those carry Moonraker's job id in their key)."""
        row = await self.repo.db.fetchone(
            "SELECT min(started_at) FROM print_history WHERE printer_id = ? AND job_key NOT LIKE ?",
            (printer_id, '%"job_id":"moonraker:%'),
        )
        return None if row is None or row[0] is None else float(row[0])
