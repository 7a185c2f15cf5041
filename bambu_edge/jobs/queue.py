"""The queue's repository: print files, jobs, runs (one per copy sent to a printer), bed-clear marks
and the paused flag, in SQLite (migration 0003).

Operations that change several rows (a run starts: job, run and bed together) are one transaction,
so a crash never leaves a run without its job's state, and the service can announce what it
committed. A job's state follows from its runs (``_refresh_job``); only ``failed`` and
``cancelled`` are set by decision.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import aiosqlite
import orjson

from bambu_edge.files.meta import FilamentUse, ModelInfo, PlateMeta, PrintFileMeta
from bambu_edge.store.db import Database

FINISHED = frozenset({"done", "failed", "cancelled"})
RUN_IN_FLIGHT = ("uploading", "starting", "printing")
RUN_FINISHED = frozenset({"done", "failed", "cancelled"})
FINISHED_SHOWN = 50  # finished jobs listed with the queue (older ones stay in the database)
KEEP: Any = object()  # update_job: leave this column as it is


# --- PrintFileMeta from its JSON ------------------------------------------------------------------


def _fields(cls: type, data: Mapping[str, Any]) -> dict[str, Any]:
    """The keys of ``data`` that ``cls`` has, with JSON lists back as tuples where it wants tuples."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.name in data:
            value = data[f.name]
            if isinstance(value, list) and str(f.type).startswith("tuple"):
                value = tuple(value)
            out[f.name] = value
    return out


def meta_from_json(data: Mapping[str, Any]) -> PrintFileMeta:
    """The inverse of ``PrintFileMeta.to_json`` (unknown keys are ignored)."""
    plates = []
    for p in data.get("plates") or ():
        fields = _fields(PlateMeta, p)
        fields["filaments"] = tuple(FilamentUse(**_fields(FilamentUse, f)) for f in p.get("filaments") or ())
        plates.append(PlateMeta(**fields))
    fields = _fields(PrintFileMeta, data)
    fields["plates"] = tuple(plates)
    model = data.get("model")
    fields["model"] = ModelInfo(**_fields(ModelInfo, model)) if isinstance(model, Mapping) else None
    return PrintFileMeta(**fields)


# --- rows -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class QueueFile:
    id: int
    name: str
    kind: str
    size: int
    sha256: str
    md5: str
    meta: PrintFileMeta
    created_at: float

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "kind": self.kind,
            "size": self.size,
            "sha256": self.sha256,
            "meta": self.meta.to_json(),
            "created_at": self.created_at,
        }


@dataclass(frozen=True)
class Run:
    id: int
    job_id: int
    printer_id: str
    state: str
    remote_path: str | None
    subtask: str | None
    sequence_id: str | None
    history_id: int | None
    error: str | None
    started_at: float
    ended_at: float | None

    @property
    def in_flight(self) -> bool:
        return self.state in RUN_IN_FLIGHT

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "printer_id": self.printer_id,
            "state": self.state,
            "history_id": self.history_id,
            "error": self.error,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
        }


@dataclass(frozen=True)
class Job:
    id: int
    file_id: int
    file_name: str
    plate: int
    copies: int
    copies_done: int
    priority: int
    target: str | None
    position: int
    state: str
    options: dict[str, Any]
    attempts: int
    last_error: str | None
    next_attempt_at: float | None
    created_at: float
    updated_at: float
    ended_at: float | None

    @property
    def finished(self) -> bool:
        return self.state in FINISHED


def _file(row: Any) -> QueueFile:
    return QueueFile(
        row["id"],
        row["name"],
        row["kind"],
        row["size"],
        row["sha256"],
        row["md5"],
        meta_from_json(orjson.loads(row["meta_json"])),
        row["created_at"],
    )


def _run(row: Any) -> Run:
    return Run(
        row["id"],
        row["job_id"],
        row["printer_id"],
        row["state"],
        row["remote_path"],
        row["subtask"],
        row["sequence_id"],
        row["history_id"],
        row["error"],
        row["started_at"],
        row["ended_at"],
    )


def _job(row: Any) -> Job:
    return Job(
        row["id"],
        row["file_id"],
        row["file_name"],
        row["plate"],
        row["copies"],
        row["copies_done"],
        row["priority"],
        row["target"],
        row["position"],
        row["state"],
        orjson.loads(row["options_json"]),
        row["attempts"],
        row["last_error"],
        row["next_attempt_at"],
        row["created_at"],
        row["updated_at"],
        row["ended_at"],
    )


JOB_SELECT = "SELECT j.*, f.name AS file_name FROM queue_jobs j JOIN queue_files f ON f.id = j.file_id"
ACTIVE_ORDER = "ORDER BY j.priority DESC, j.position, j.id"


async def _one(conn: aiosqlite.Connection, sql: str, params: Sequence[Any] = ()) -> Any:
    async with conn.execute(sql, params) as cur:
        return await cur.fetchone()


async def _all(conn: aiosqlite.Connection, sql: str, params: Sequence[Any] = ()) -> list[Any]:
    async with conn.execute(sql, params) as cur:
        return list(await cur.fetchall())


class QueueStore:
    def __init__(self, db: Database, clock: Any = time.time):
        self.db = db
        self.clock = clock

    # --- files ------------------------------------------------------------------------------------

    async def add_file(
        self, *, name: str, kind: str, size: int, sha256: str, md5: str, meta: PrintFileMeta
    ) -> tuple[QueueFile, bool]:
        """(file, created). The same bytes (sha256) uploaded again give the existing file."""
        async with self.db.transaction() as conn:
            row = await _one(conn, "SELECT id FROM queue_files WHERE sha256 = ?", (sha256,))
            if row is None:
                await conn.execute(
                    "INSERT INTO queue_files (name, kind, size, sha256, md5, meta_json, created_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (name, kind, size, sha256, md5, orjson.dumps(meta.to_json()).decode(), self.clock()),
                )
                created = True
            else:
                created = False
        found = await self.file_by_sha(sha256)
        assert found is not None
        return found, created

    async def file_by_sha(self, sha256: str) -> QueueFile | None:
        row = await self.db.fetchone("SELECT * FROM queue_files WHERE sha256 = ?", (sha256,))
        return _file(row) if row else None

    async def get_file(self, file_id: int) -> QueueFile | None:
        row = await self.db.fetchone("SELECT * FROM queue_files WHERE id = ?", (file_id,))
        return _file(row) if row else None

    async def list_files(self) -> list[QueueFile]:
        return [
            _file(r)
            for r in await self.db.fetchall("SELECT * FROM queue_files ORDER BY created_at DESC, id DESC")
        ]

    async def file_in_use(self, file_id: int) -> bool:
        """True while an unfinished job, or a copy in flight, needs the file."""
        row = await self.db.fetchone(
            "SELECT 1 FROM queue_jobs j WHERE j.file_id = ? AND (j.state IN ('waiting', 'dispatching', 'printing')"
            " OR EXISTS (SELECT 1 FROM queue_runs r WHERE r.job_id = j.id"
            " AND r.state IN ('uploading', 'starting', 'printing')))",
            (file_id,),
        )
        return row is not None

    async def delete_file(self, file_id: int) -> list[int]:
        """Delete the file and its (finished) jobs; returns the ids of the jobs removed with it."""
        async with self.db.transaction() as conn:
            rows = await _all(conn, "SELECT id FROM queue_jobs WHERE file_id = ?", (file_id,))
            await conn.execute("DELETE FROM queue_files WHERE id = ?", (file_id,))
        return [r["id"] for r in rows]

    # --- jobs ---------------------------------------------------------------------------------------

    async def add_job(
        self,
        *,
        file_id: int,
        plate: int = 1,
        copies: int = 1,
        priority: int = 0,
        target: str | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> Job:
        now = self.clock()
        async with self.db.transaction() as conn:
            row = await _one(conn, "SELECT coalesce(max(position), 0) + 1 FROM queue_jobs")
            cur = await conn.execute(
                "INSERT INTO queue_jobs (file_id, plate, copies, priority, target, position, options_json,"
                " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    file_id,
                    plate,
                    copies,
                    priority,
                    target,
                    row[0],
                    orjson.dumps(dict(options or {})).decode(),
                    now,
                    now,
                ),
            )
            job_id = cur.lastrowid
        job = await self.get_job(job_id)
        assert job is not None
        return job

    async def get_job(self, job_id: int) -> Job | None:
        row = await self.db.fetchone(f"{JOB_SELECT} WHERE j.id = ?", (job_id,))
        return _job(row) if row else None

    async def active_jobs(self) -> list[Job]:
        """Unfinished jobs in queue order (priority, then position)."""
        rows = await self.db.fetchall(
            f"{JOB_SELECT} WHERE j.state IN ('waiting', 'dispatching', 'printing') {ACTIVE_ORDER}"
        )
        return [_job(r) for r in rows]

    async def list_jobs(self, finished_limit: int = FINISHED_SHOWN) -> list[Job]:
        """Unfinished jobs in queue order, then the most recently finished ones."""
        active = await self.active_jobs()
        rows = await self.db.fetchall(
            f"{JOB_SELECT} WHERE j.state IN ('done', 'failed', 'cancelled')"
            " ORDER BY j.ended_at DESC, j.id DESC LIMIT ?",
            (finished_limit,),
        )
        return active + [_job(r) for r in rows]

    async def update_job(
        self,
        job_id: int,
        *,
        plate: int | None = None,
        copies: int | None = None,
        priority: int | None = None,
        target: Any = KEEP,
        options: Mapping[str, Any] | None = None,
    ) -> Job | None:
        sets: list[str] = []
        params: list[Any] = []
        for column, value in (("plate", plate), ("copies", copies), ("priority", priority)):
            if value is not None:
                sets.append(f"{column} = ?")
                params.append(value)
        if target is not KEEP:
            sets.append("target = ?")
            params.append(target)
        if options is not None:
            sets.append("options_json = ?")
            params.append(orjson.dumps(dict(options)).decode())
        if sets:
            now = self.clock()
            async with self.db.transaction() as conn:
                await conn.execute(
                    f"UPDATE queue_jobs SET {', '.join(sets)}, updated_at = ? WHERE id = ?",
                    (*params, now, job_id),
                )
                await _refresh_job(conn, job_id, now)
        return await self.get_job(job_id)

    async def delete_job(self, job_id: int) -> bool:
        return await self.db.execute("DELETE FROM queue_jobs WHERE id = ?", (job_id,)) > 0

    async def cancel_job(self, job_id: int) -> Job | None:
        """No more copies; copies in flight go on printing (their runs end as the printer reports)."""
        now = self.clock()
        await self.db.execute(
            "UPDATE queue_jobs SET state = 'cancelled', ended_at = ?, updated_at = ?, next_attempt_at = NULL"
            " WHERE id = ? AND state NOT IN ('done', 'cancelled')",
            (now, now, job_id),
        )
        return await self.get_job(job_id)

    async def retry_job(self, job_id: int) -> Job | None:
        """A failed or cancelled job waits again, with a fresh count of attempts."""
        now = self.clock()
        async with self.db.transaction() as conn:
            await conn.execute(
                "UPDATE queue_jobs SET state = 'waiting', ended_at = NULL, attempts = 0, next_attempt_at = NULL,"
                " last_error = NULL, updated_at = ? WHERE id = ? AND state IN ('failed', 'cancelled')",
                (now, job_id),
            )
            await _refresh_job(conn, job_id, now)
        return await self.get_job(job_id)

    async def move_job(self, job_id: int, before: int | None) -> None:
        """Put an unfinished job just before another one (None: last) in the manual order;
        positions of unfinished jobs are renumbered 1..n."""
        async with self.db.transaction() as conn:
            rows = await _all(
                conn,
                "SELECT id, position FROM queue_jobs WHERE state IN ('waiting', 'dispatching', 'printing')"
                " ORDER BY position, id",
            )
            order = [r["id"] for r in rows if r["id"] != job_id]
            old = {r["id"]: r["position"] for r in rows}
            at = order.index(before) if before is not None and before in order else len(order)
            order.insert(at, job_id)
            now = self.clock()
            for pos, jid in enumerate(order, start=1):
                if old.get(jid) != pos:
                    await conn.execute(
                        "UPDATE queue_jobs SET position = ?, updated_at = ? WHERE id = ?", (pos, now, jid)
                    )

    # --- runs ---------------------------------------------------------------------------------------

    async def start_run(self, job_id: int, printer_id: str, *, remote_path: str, subtask: str) -> Run:
        """A copy goes to a printer: the run (uploading), the job (dispatching) and the printer's bed
        (not clear: the print will be on it) change together. IntegrityError if a run is already in
        flight on that printer."""
        now = self.clock()
        async with self.db.transaction() as conn:
            cur = await conn.execute(
                "INSERT INTO queue_runs (job_id, printer_id, state, remote_path, subtask, started_at)"
                " VALUES (?, ?, 'uploading', ?, ?, ?)",
                (job_id, printer_id, remote_path, subtask, now),
            )
            run_id = cur.lastrowid
            await conn.execute(
                "UPDATE queue_jobs SET attempts = attempts + 1, next_attempt_at = NULL WHERE id = ?",
                (job_id,),
            )
            await _set_bed(conn, printer_id, False, now)
            await _refresh_job(conn, job_id, now)
        run = await self.get_run(run_id)
        assert run is not None
        return run

    async def get_run(self, run_id: int) -> Run | None:
        row = await self.db.fetchone("SELECT * FROM queue_runs WHERE id = ?", (run_id,))
        return _run(row) if row else None

    async def runs_for(self, job_ids: Iterable[int]) -> dict[int, list[Run]]:
        ids = list(job_ids)
        out: dict[int, list[Run]] = {i: [] for i in ids}
        if not ids:
            return out
        rows = await self.db.fetchall(
            f"SELECT * FROM queue_runs WHERE job_id IN ({','.join('?' * len(ids))}) ORDER BY started_at, id",
            ids,
        )
        for r in rows:
            out[r["job_id"]].append(_run(r))
        return out

    async def runs_in_flight(self) -> list[Run]:
        """At most one per printer, by printer: the order of the partial index queue_runs_in_flight,
        which holds only these rows (ORDER BY id made SQLite walk every run ever in rowid order)."""
        rows = await self.db.fetchall(
            "SELECT * FROM queue_runs WHERE state IN ('uploading', 'starting', 'printing') ORDER BY printer_id"
        )
        return [_run(r) for r in rows]

    async def update_run(
        self,
        run_id: int,
        *,
        state: str | None = None,
        sequence_id: str | None = None,
        history_id: int | None = None,
    ) -> Run | None:
        now = self.clock()
        async with self.db.transaction() as conn:
            row = await _one(conn, "SELECT job_id FROM queue_runs WHERE id = ?", (run_id,))
            if row is None:
                return None
            sets, params = [], []
            for column, value in (
                ("state", state),
                ("sequence_id", sequence_id),
                ("history_id", history_id),
            ):
                if value is not None:
                    sets.append(f"{column} = ?")
                    params.append(value)
            if state in RUN_FINISHED:
                sets.append("ended_at = ?")
                params.append(now)
            if sets:
                await conn.execute(f"UPDATE queue_runs SET {', '.join(sets)} WHERE id = ?", (*params, run_id))
            if state == "printing":
                # The printer took it: later failures are new attempts.
                await conn.execute(
                    "UPDATE queue_jobs SET attempts = 0, last_error = NULL, next_attempt_at = NULL WHERE id = ?",
                    (row["job_id"],),
                )
            await _refresh_job(conn, row["job_id"], now)
        return await self.get_run(run_id)

    async def fail_run_before_print(self, run_id: int, *, error: str, retry_at: float | None) -> Run | None:
        """The copy never started: the run fails, the printer's bed is as it was (clear), and the
        job waits for ``retry_at`` or fails when that is None."""
        now = self.clock()
        async with self.db.transaction() as conn:
            row = await _one(conn, "SELECT job_id, printer_id FROM queue_runs WHERE id = ?", (run_id,))
            if row is None:
                return None
            await conn.execute(
                "UPDATE queue_runs SET state = 'failed', error = ?, ended_at = ? WHERE id = ?",
                (error, now, run_id),
            )
            await _set_bed(conn, row["printer_id"], True, now)
            if retry_at is None:
                await conn.execute(
                    "UPDATE queue_jobs SET state = 'failed', ended_at = ?, last_error = ?, next_attempt_at = NULL,"
                    " updated_at = ? WHERE id = ? AND state NOT IN ('done', 'cancelled')",
                    (now, error, now, row["job_id"]),
                )
            else:
                await conn.execute(
                    "UPDATE queue_jobs SET last_error = ?, next_attempt_at = ?, updated_at = ? WHERE id = ?",
                    (error, retry_at, now, row["job_id"]),
                )
            await _refresh_job(conn, row["job_id"], now)
        return await self.get_run(run_id)

    async def cancel_run(self, run_id: int) -> Run | None:
        """A copy stopped before it reached the printer (the user removed its job): the bed is as it
        was (clear)."""
        now = self.clock()
        async with self.db.transaction() as conn:
            row = await _one(conn, "SELECT job_id, printer_id, state FROM queue_runs WHERE id = ?", (run_id,))
            if row is None or row["state"] not in RUN_IN_FLIGHT:
                return None
            await conn.execute(
                "UPDATE queue_runs SET state = 'cancelled', error = 'cancelled', ended_at = ? WHERE id = ?",
                (now, run_id),
            )
            await _set_bed(conn, row["printer_id"], True, now)
            await _refresh_job(conn, row["job_id"], now)
        return await self.get_run(run_id)

    async def end_run(
        self, run_id: int, *, success: bool, history_id: int | None, error: str | None = None
    ) -> Run | None:
        """The printer finished the copy (the tracker's record ended). A successful copy counts;
        a failed or cancelled one does not, so the job prints it again once the bed is cleared."""
        now = self.clock()
        async with self.db.transaction() as conn:
            row = await _one(conn, "SELECT job_id, state FROM queue_runs WHERE id = ?", (run_id,))
            if row is None:
                return None
            if row["state"] not in RUN_IN_FLIGHT:
                return _run(await _one(conn, "SELECT * FROM queue_runs WHERE id = ?", (run_id,)))
            await conn.execute(
                "UPDATE queue_runs SET state = ?, history_id = coalesce(?, history_id), error = ?, ended_at = ?"
                " WHERE id = ?",
                ("done" if success else "failed", history_id, error, now, run_id),
            )
            if success:
                await conn.execute(
                    "UPDATE queue_jobs SET copies_done = min(copies_done + 1, copies), updated_at = ?"
                    " WHERE id = ?",
                    (now, row["job_id"]),
                )
            elif error:
                await conn.execute(
                    "UPDATE queue_jobs SET last_error = ?, updated_at = ? WHERE id = ?",
                    (error, now, row["job_id"]),
                )
            await _refresh_job(conn, row["job_id"], now)
        return await self.get_run(run_id)

    async def recent_load(self, since: float, printers: Sequence[str] | None = None) -> dict[str, int]:
        """Copies sent to each printer since ``since`` (the dispatcher balances on this). Naming the
        ``printers`` reads only their recent rows of the (printer_id, started_at) index, not the
        whole index (every run ever)."""
        where, params = "started_at >= ?", [since, *(printers or ())]
        if printers is not None:
            where += f" AND printer_id IN ({','.join('?' * len(printers))})"
        rows = await self.db.fetchall(
            f"SELECT printer_id, count(*) FROM queue_runs WHERE {where} GROUP BY printer_id", params
        )
        return {r[0]: r[1] for r in rows}

    # --- beds and settings -------------------------------------------------------------------------

    async def beds(self) -> dict[str, bool]:
        return {
            r[0]: bool(r[1]) for r in await self.db.fetchall("SELECT printer_id, clear FROM printer_beds")
        }

    async def set_bed(self, printer_id: str, clear: bool) -> bool:
        """Returns True if the mark changed."""
        async with self.db.transaction() as conn:
            row = await _one(conn, "SELECT clear FROM printer_beds WHERE printer_id = ?", (printer_id,))
            if row is not None and bool(row[0]) == clear:
                return False
            await _set_bed(conn, printer_id, clear, self.clock())
        return True

    async def paused(self) -> bool:
        row = await self.db.fetchone("SELECT paused FROM queue_settings WHERE id = 1")
        return bool(row[0]) if row else False

    async def set_paused(self, paused: bool) -> None:
        await self.db.execute(
            "UPDATE queue_settings SET paused = ?, updated_at = ? WHERE id = 1", (int(paused), self.clock())
        )


async def _set_bed(conn: aiosqlite.Connection, printer_id: str, clear: bool, now: float) -> None:
    await conn.execute(
        "INSERT INTO printer_beds (printer_id, clear, changed_at) VALUES (?, ?, ?)"
        " ON CONFLICT (printer_id) DO UPDATE SET clear = excluded.clear, changed_at = excluded.changed_at",
        (printer_id, int(clear), now),
    )


async def _refresh_job(conn: aiosqlite.Connection, job_id: int, now: float) -> None:
    """Derive an unfinished job's state from its copies and runs."""
    job = await _one(conn, "SELECT state, copies, copies_done FROM queue_jobs WHERE id = ?", (job_id,))
    if job is None:
        return
    if job["state"] in ("failed", "cancelled"):
        return
    if job["copies_done"] >= job["copies"]:
        state = "done"
    else:
        rows = await _all(
            conn,
            "SELECT state FROM queue_runs WHERE job_id = ? AND state IN ('uploading', 'starting', 'printing')",
            (job_id,),
        )
        states = {r[0] for r in rows}
        if states & {"uploading", "starting"}:
            state = "dispatching"
        elif "printing" in states:
            state = "printing"
        else:
            state = "waiting"
    if state != job["state"]:
        await conn.execute(
            "UPDATE queue_jobs SET state = ?, updated_at = ?, ended_at = ? WHERE id = ?",
            (state, now, now if state in FINISHED else None, job_id),
        )
