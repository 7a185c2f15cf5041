"""Print history in SQLite (``print_history``, migration 0002): the records the tracker produces, and
the queries behind the history API (filters, sorts, pages, CSV, totals).

Writes are upserts of a whole record by ``uid``, so writing a record twice is harmless and a write
that failed can simply be repeated. A record once closed is never reopened by a late write (the
upsert only touches ``running`` rows); ``amend`` is the one way to change a closed record's outcome.
The closing write is ``durable`` (synchronous=FULL for that commit; see ``Database.transaction``).

All SQL is parameterised; the only SQL built from input is chosen from fixed texts (``SORTS``,
the filter clauses), never copied from it.
"""

from __future__ import annotations

import asyncio
import csv
import io
import math
import time
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from bambu_edge.jobs.records import OUTCOMES, FilamentSlot, JobKey, PrintRecord
from bambu_edge.store.db import Database

MAX_LIMIT = 500
DEFAULT_LIMIT = 50
DEFAULT_SORT = "-started_at"
CSV_CHUNK_ROWS = 500

# sort name -> (SQL expression, direction). The expressions match the indexes of migration 0002
# exactly (so the planner reads pages in index order) and are never NULL (keyset paging compares
# them). Ties are broken by id in the same direction.
SORTS: dict[str, tuple[str, str]] = {
    "started_at": ("h.started_at", "ASC"),
    "-started_at": ("h.started_at", "DESC"),
    "duration_s": ("ifnull(h.duration_s, -1.0)", "ASC"),
    "-duration_s": ("ifnull(h.duration_s, -1.0)", "DESC"),
    "job": ("ifnull(h.job, '') COLLATE NOCASE", "ASC"),
    "-job": ("ifnull(h.job, '') COLLATE NOCASE", "DESC"),
    "printer": ("ifnull(h.printer_name, h.printer_id) COLLATE NOCASE", "ASC"),
    "-printer": ("ifnull(h.printer_name, h.printer_id) COLLATE NOCASE", "DESC"),
}

COLUMNS = (
    "id",
    "uid",
    "printer_id",
    "printer_name",
    "model",
    "file",
    "job",
    "plate",
    "started_at",
    "ended_at",
    "duration_s",
    "outcome",
    "failure_reason",
    "error_code",
    "hms_json",
    "layers",
    "total_layers",
    "progress",
    "filament_json",
    "thumbnail",
    "queue_job_id",
    "state",
    "job_key",
    "last_seen_at",
    "remaining_s",
    "energy_kwh",
    "energy_cost",
)
# The timelapse is attached by the camera after the record closed (attach_timelapse), never upserted.
_SELECT = ", ".join(f"h.{c}" for c in (*COLUMNS, "timelapse", "node"))
# Written by power control once a record has ended (set_energy), never by the tracker's saves.
ENERGY_COLUMNS = ("energy_kwh", "energy_cost")
_WRITTEN = tuple(c for c in COLUMNS[1:] if c not in ENERGY_COLUMNS)  # not the row id either
_UPDATED = tuple(c for c in _WRITTEN if c not in ("uid", "printer_id"))
_UPSERT = (
    f"INSERT INTO print_history ({', '.join(_WRITTEN)}, created_at, updated_at)"
    f" VALUES ({', '.join(':' + c for c in _WRITTEN)}, :now, :now)"
    f" ON CONFLICT (uid) DO UPDATE SET {', '.join(f'{c} = excluded.{c}' for c in _UPDATED)},"
    " updated_at = excluded.updated_at"
    " WHERE print_history.outcome = 'running' AND print_history.node IS NULL"
    " RETURNING id"
)
# A record another unit sent (farm sync), by uid: inserted once, then updated only by a newer copy
# from the same unit (its updated_at, the sender's clock, orders the copies). Never touches this
# unit's own records (node NULL) nor another unit's. The files (thumbnail, timelapse) and the
# queue job stay on the unit that has them.
_REMOTE = (*_WRITTEN, *ENERGY_COLUMNS, "node")
_REMOTE_UPDATED = tuple(c for c in _REMOTE if c not in ("uid", "node"))
_UPSERT_REMOTE = (
    f"INSERT INTO print_history ({', '.join(_REMOTE)}, created_at, updated_at)"
    f" VALUES ({', '.join(':' + c for c in _REMOTE)}, :now, :updated_at)"
    f" ON CONFLICT (uid) DO UPDATE SET {', '.join(f'{c} = excluded.{c}' for c in _REMOTE_UPDATED)},"
    " updated_at = excluded.updated_at"
    " WHERE print_history.node IS excluded.node AND excluded.updated_at > print_history.updated_at"
    " RETURNING id"
)

CSV_FIELDS = (
    "id",
    "uid",
    "printer_id",
    "printer_name",
    "model",
    "job",
    "file",
    "plate",
    "started_at",
    "ended_at",
    "duration_s",
    "outcome",
    "failure_reason",
    "error_code",
    "hms",
    "layers",
    "total_layers",
    "progress",
    "filament_grams",
    "filament_meters",
    "filament",
    "queue_job_id",
    "energy_kwh",
    "energy_cost",
)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


# --- records <-> rows <-> JSON --------------------------------------------------------------------


def _loads(text: Any, default: Any) -> Any:
    if not isinstance(text, str):
        return default
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return default


def record_params(rec: PrintRecord, now: float) -> dict[str, Any]:
    return {
        "uid": rec.uid,
        "printer_id": rec.printer_id,
        "printer_name": rec.printer_name,
        "model": rec.model,
        "file": rec.file,
        "job": rec.job,
        "plate": rec.plate,
        "started_at": float(rec.started_at),
        "ended_at": None if rec.ended_at is None else float(rec.ended_at),
        "duration_s": None if rec.duration_s is None else float(rec.duration_s),
        "outcome": rec.outcome,
        "failure_reason": rec.failure_reason,
        "error_code": rec.error_code,
        "hms_json": orjson.dumps(list(rec.hms)).decode(),
        "layers": rec.layers,
        "total_layers": rec.total_layers,
        "progress": rec.progress,
        "filament_json": orjson.dumps([s.to_json() for s in rec.filament]).decode(),
        "thumbnail": rec.thumbnail,
        "queue_job_id": rec.queue_job_id,
        "state": rec.state,
        "job_key": orjson.dumps(rec.key.to_json()).decode(),
        "last_seen_at": None if rec.last_seen_at is None else float(rec.last_seen_at),
        "remaining_s": rec.remaining_s,
        "now": now,
    }


def _column(row: Mapping[str, Any], name: str) -> Any:
    try:
        return row[name]
    except (KeyError, IndexError):
        return None


def record_from_row(row: Mapping[str, Any], local_node: str | None = None) -> PrintRecord:
    """``local_node``: the id of this unit, for its own records (stored with node NULL)."""
    hms = _loads(row["hms_json"], [])
    slots = (FilamentSlot.from_json(d) for d in _loads(row["filament_json"], []) if isinstance(d, dict))
    return PrintRecord(
        id=row["id"],
        uid=row["uid"],
        printer_id=row["printer_id"],
        printer_name=row["printer_name"],
        model=row["model"],
        file=row["file"],
        job=row["job"],
        plate=row["plate"],
        started_at=row["started_at"],
        ended_at=row["ended_at"],
        duration_s=row["duration_s"],
        outcome=row["outcome"],
        failure_reason=row["failure_reason"],
        error_code=row["error_code"],
        hms=tuple(c for c in hms if isinstance(c, str)) if isinstance(hms, list) else (),
        layers=row["layers"],
        total_layers=row["total_layers"],
        progress=row["progress"],
        filament=tuple(s for s in slots if s is not None),
        thumbnail=row["thumbnail"],
        queue_job_id=row["queue_job_id"],
        state=row["state"],
        key=JobKey.from_json(_loads(row["job_key"], {})),
        last_seen_at=row["last_seen_at"],
        remaining_s=row["remaining_s"],
        timelapse=row["timelapse"],
        energy_kwh=row["energy_kwh"],
        energy_cost=row["energy_cost"],
        node=_column(row, "node") or local_node,
    )


def thumbnail_url(record_id: int | None) -> str:
    return f"/api/history/{record_id}/thumbnail"


def timelapse_url(record_id: int | None) -> str:
    return f"/api/history/{record_id}/timelapse.mp4"


def record_facts(rec: PrintRecord) -> dict[str, Any]:
    """What a record says about the print, the same wherever it is shown or sent (the API here,
    the farm's history messages): not this unit's ids, files or queue."""
    return {
        "uid": rec.uid,
        "printer_id": rec.printer_id,
        "printer_name": rec.printer_name,
        "model": rec.model,
        "file": rec.file,
        "job": rec.job,
        "plate": rec.plate,
        "started_at": rec.started_at,
        "ended_at": rec.ended_at,
        "duration_s": rec.duration_s,
        "outcome": rec.outcome,
        "failure_reason": rec.failure_reason,
        "error_code": rec.error_code,
        "hms": list(rec.hms),
        "layers": rec.layers,
        "total_layers": rec.total_layers,
        "progress": rec.progress,
        "filament": [s.to_json() for s in rec.filament],
        "state": rec.state,
        "energy_kwh": rec.energy_kwh,
        "energy_cost": rec.energy_cost,
    }


def record_json(rec: PrintRecord) -> dict[str, Any]:
    """The API's record (PLAN.md "History"), plus ``state``: the printer's last gcode_state while
    the print ran (e.g. PAUSE while paused)."""
    return {
        "id": rec.id,
        **record_facts(rec),
        "thumbnail": thumbnail_url(rec.id) if rec.thumbnail and rec.id is not None else None,
        "queue_job_id": rec.queue_job_id,
        "timelapse": timelapse_url(rec.id) if rec.timelapse and rec.id is not None else None,
        "node": rec.node,
    }


# --- filters --------------------------------------------------------------------------------------


def like_pattern(text: str) -> str:
    """``%text%`` for ``LIKE ... ESCAPE '\\'``: the user's % and _ match themselves."""
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


@dataclass(frozen=True, slots=True)
class HistoryFilter:
    """Which records: any of ``printers``, any of ``outcomes``, ``q`` in the job or file name (no
    case), started in ``[since, until)`` (Unix seconds)."""

    printers: tuple[str, ...] = ()
    outcomes: tuple[str, ...] = ()
    q: str | None = None
    since: float | None = None
    until: float | None = None

    def __post_init__(self) -> None:
        bad = [o for o in self.outcomes if o not in OUTCOMES]
        if bad:
            raise ValueError(f"unknown outcome {bad[0]!r}")
        # SQLite ends a LIKE pattern at a NUL: "%\0%" would match everything.
        if self.q is not None and not self.q.isprintable():
            raise ValueError("the search text must be printable (no control characters)")
        for t in (self.since, self.until):
            if t is not None and not math.isfinite(t):
                raise ValueError("times must be finite numbers")

    def where(self) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        params: list[Any] = []
        if self.printers:
            clauses.append(f"h.printer_id IN ({', '.join('?' * len(self.printers))})")
            params += self.printers
        if self.outcomes:
            clauses.append(f"h.outcome IN ({', '.join('?' * len(self.outcomes))})")
            params += self.outcomes
        if self.q:
            clauses.append("(h.job LIKE ? ESCAPE '\\' OR h.file LIKE ? ESCAPE '\\')")
            params += [like_pattern(self.q)] * 2
        if self.since is not None:
            clauses.append("h.started_at >= ?")
            params.append(float(self.since))
        if self.until is not None:
            clauses.append("h.started_at < ?")
            params.append(float(self.until))
        return (" AND ".join(clauses) if clauses else "1"), params


def _order(sort: str) -> tuple[str, str]:
    try:
        return SORTS[sort]
    except KeyError:
        raise ValueError(f"unknown sort {sort!r}") from None


# --- CSV ------------------------------------------------------------------------------------------


def _iso(t: Any) -> str:
    if not isinstance(t, int | float) or not math.isfinite(t):
        return ""
    try:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))
    except (OverflowError, OSError, ValueError):
        return ""


def _cell(v: Any) -> Any:
    """A spreadsheet must not run a job name as a formula (CSV injection)."""
    if isinstance(v, str) and v.startswith(_FORMULA_START):
        return "'" + v
    return "" if v is None else v


def _num_text(v: float | None) -> str:
    return "" if v is None else f"{v:g}"


def _number(v: Any) -> float | None:
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) else None


def _csv_row(row: Mapping[str, Any]) -> list[Any]:
    hms = _loads(row["hms_json"], [])
    slots = _loads(row["filament_json"], [])
    grams: list[float] = []
    meters: list[float] = []
    described = []
    for d in slots if isinstance(slots, list) else ():
        if not isinstance(d, dict):
            continue
        slot, kind, color = d.get("slot"), d.get("type"), d.get("color")
        parts = [
            f"slot {slot}" if isinstance(slot, int) else "slot ?",
            kind if isinstance(kind, str) else "?",
        ]
        if isinstance(color, str):
            parts.append(color)
        g, m = _number(d.get("grams")), _number(d.get("meters"))
        if g is not None:
            grams.append(g)
            parts.append(f"{g:g} g")
        if m is not None:
            meters.append(m)
            parts.append(f"{m:g} m")
        described.append(" ".join(parts))
    return [
        row["id"],
        row["uid"],
        _cell(row["printer_id"]),
        _cell(row["printer_name"]),
        _cell(row["model"]),
        _cell(row["job"]),
        _cell(row["file"]),
        _cell(row["plate"]),
        _iso(row["started_at"]),
        _iso(row["ended_at"]),
        _num_text(row["duration_s"]),
        row["outcome"],
        _cell(row["failure_reason"]),
        _cell(row["error_code"]),
        " ".join(c for c in hms if isinstance(c, str)) if isinstance(hms, list) else "",
        _cell(row["layers"]),
        _cell(row["total_layers"]),
        _cell(row["progress"]),
        _num_text(round(sum(grams), 2)) if grams else "",
        _num_text(round(sum(meters), 3)) if meters else "",
        _cell(" | ".join(described)),
        _cell(row["queue_job_id"]),
        _num_text(_number(row["energy_kwh"])),
        _num_text(_number(row["energy_cost"])),
    ]


def csv_text(rows: Iterable[Sequence[Any]]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\r\n").writerows(rows)
    return buf.getvalue()


def _csv_chunk(rows: Sequence[Mapping[str, Any]]) -> str:
    return csv_text(_csv_row(r) for r in rows)


# --- the repository -------------------------------------------------------------------------------


class HistoryRepository:
    """``db`` takes the writes. ``reader``, if given, is a second connection to the same file for the
    API's queries: totals over years of history take long (on a Pi, seconds), and on the one shared
    connection they would hold up every other statement, logins included. WAL lets them run side by
    side; a reader sees every commit made before its statement starts."""

    def __init__(
        self,
        db: Database,
        clock: Any = time.time,
        *,
        reader: Database | None = None,
        node: str | None = None,
    ):
        self.db = db
        self.reader = reader or db
        self._clock = clock
        self.node = node  # this unit's id: what its own records (node NULL) carry when read

    def _record(self, row: Mapping[str, Any]) -> PrintRecord:
        return record_from_row(row, self.node)

    # --- writes (the history service) -------------------------------------------------------------

    async def save(
        self, rec: PrintRecord, *, durable: bool = False, previous: PrintRecord | None = None
    ) -> int | None:
        """Insert or update ``rec`` (by uid); its row id. A closed row is left as it is (then the id
        of that row is returned all the same). ``durable`` for the closing write.

        ``previous``: the snapshot of this record last written. Then only the columns that changed
        are set: SQLite rewrites every index whose columns an UPDATE names, even to the same value,
        so a progress write touches one table page instead of nine (SD card wear)."""
        params = record_params(rec, self._clock())
        if previous is not None and previous.uid == rec.uid:
            old = record_params(previous, params["now"])
            changed = [f"{c} = :{c}, " for c in _UPDATED if params[c] != old[c]]
            async with self.db.transaction(durable=durable) as conn:
                async with conn.execute(
                    f"UPDATE print_history SET {''.join(changed)}updated_at = :now"
                    " WHERE uid = :uid AND outcome = 'running' AND node IS NULL RETURNING id",
                    params,
                ) as cur:
                    row = await cur.fetchone()
                if row is not None:
                    await self._write_filament(conn, int(row[0]), rec)
            if row is not None:
                return int(row[0])
        async with self.db.transaction(durable=durable) as conn:
            async with conn.execute(_UPSERT, params) as cur:
                row = await cur.fetchone()
            if row is not None:
                await self._write_filament(conn, int(row[0]), rec)
            else:  # the row was closed already and is left alone
                async with conn.execute("SELECT id FROM print_history WHERE uid = ?", (rec.uid,)) as cur:
                    row = await cur.fetchone()
        return None if row is None else int(row[0])

    @staticmethod
    async def _write_filament(conn: Any, record_id: int, rec: PrintRecord) -> None:
        """The filament rows of an ended record (for totals); nothing while it runs."""
        if rec.outcome == "running":
            return
        await conn.execute("DELETE FROM print_history_filament WHERE history_id = ?", (record_id,))
        await conn.executemany(
            "INSERT INTO print_history_filament (history_id, position, slot, type, color, grams, meters)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(record_id, i, s.slot, s.type, s.color, s.grams, s.meters) for i, s in enumerate(rec.filament)],
        )

    async def amend(self, rec: PrintRecord) -> int | None:
        """Correct the outcome of a closed record (outcome, reason, error code, filament); its row
        id, or None if there is no closed record with that uid."""
        if rec.outcome == "running":
            return None
        async with self.db.transaction(durable=True) as conn:
            async with conn.execute(
                "UPDATE print_history SET outcome = ?, failure_reason = ?, error_code = ?,"
                " filament_json = ?, updated_at = ? WHERE uid = ? AND outcome <> 'running' AND node IS NULL"
                " RETURNING id",
                (
                    rec.outcome,
                    rec.failure_reason,
                    rec.error_code,
                    orjson.dumps([s.to_json() for s in rec.filament]).decode(),
                    self._clock(),
                    rec.uid,
                ),
            ) as cur:
                row = await cur.fetchone()
            if row is None:
                return None
            await self._write_filament(conn, int(row[0]), rec)
            return int(row[0])

    async def set_energy(self, record_id: int, kwh: float, cost: float | None) -> PrintRecord | None:
        """The energy an ended print used (power control); the record after, None if there is no
        ended record with that id."""
        async with self.db.transaction(durable=True) as conn:
            async with conn.execute(
                "UPDATE print_history SET energy_kwh = ?, energy_cost = ?, updated_at = ?"
                " WHERE id = ? AND outcome <> 'running' AND node IS NULL RETURNING id",
                (kwh, cost, self._clock(), record_id),
            ) as cur:
                row = await cur.fetchone()
        if row is None:
            return None
        got = await self.db.fetchone(f"SELECT {_SELECT} FROM print_history h WHERE h.id = ?", (record_id,))
        return None if got is None else self._record(got)

    # --- farm sync (bambu_edge/farm/) ---------------------------------------------------------------

    async def save_remote(self, rec: PrintRecord, node: str, updated_at: float) -> int | None:
        """Insert or update a record unit ``node`` sent (its ``updated_at``); the row id, or None
        when nothing changed (a copy seen already, an older one, or a uid that is not ``node``'s).
        sqlite3.IntegrityError for values the table refuses."""
        params = record_params(rec, self._clock())
        params.update(
            thumbnail=None,
            queue_job_id=None,
            energy_kwh=rec.energy_kwh,
            energy_cost=rec.energy_cost,
            node=node,
            updated_at=float(updated_at),
        )
        async with self.db.transaction(durable=not rec.open) as conn:
            async with conn.execute(_UPSERT_REMOTE, params) as cur:
                row = await cur.fetchone()
            if row is not None:
                await self._write_filament(conn, int(row[0]), rec)
        return None if row is None else int(row[0])

    async def local_changed_since(self, since: float, limit: int = 200) -> list[tuple[PrintRecord, float]]:
        """This unit's records written after ``since`` (updated_at), oldest change first, with
        their updated_at: what the farm has not acknowledged yet."""
        rows = await self.db.fetchall(
            f"SELECT {_SELECT}, h.updated_at AS updated_at FROM print_history h"
            " WHERE h.node IS NULL AND h.updated_at > ? ORDER BY h.updated_at, h.id LIMIT ?",
            (since, limit),
        )
        return [(self._record(r), float(r["updated_at"])) for r in rows]

    # --- reads ------------------------------------------------------------------------------------

    async def attach_media(self, record_id: int, *, timelapse: str | None, thumbnail: str | None) -> bool:
        """The camera's timelapse of an ended print, and its last frame as the picture of a print
        that had none (a plate picture is never replaced). False if no such ended record."""
        async with self.db.transaction(durable=True) as conn:
            async with conn.execute(
                "UPDATE print_history SET timelapse = coalesce(?, timelapse),"
                " thumbnail = coalesce(thumbnail, ?), updated_at = ?"
                " WHERE id = ? AND outcome <> 'running' AND node IS NULL RETURNING id",
                (timelapse, thumbnail, self._clock(), record_id),
            ) as cur:
                return await cur.fetchone() is not None

    async def open_records(self) -> list[PrintRecord]:
        rows = await self.db.fetchall(
            f"SELECT {_SELECT} FROM print_history h WHERE h.outcome = 'running' AND h.node IS NULL"
        )
        return [self._record(r) for r in rows]

    async def get(self, record_id: int) -> PrintRecord | None:
        row = await self.reader.fetchone(
            f"SELECT {_SELECT} FROM print_history h WHERE h.id = ?", (record_id,)
        )
        return None if row is None else self._record(row)

    async def count(self, f: HistoryFilter) -> int:
        where, params = f.where()
        if not params:  # without a WHERE, SQLite counts the smallest index
            row = await self.reader.fetchone("SELECT count(*) FROM print_history")
        else:
            row = await self.reader.fetchone(f"SELECT count(*) FROM print_history h WHERE {where}", params)
        return int(row[0]) if row else 0

    async def page(
        self, f: HistoryFilter, sort: str = DEFAULT_SORT, limit: int = DEFAULT_LIMIT, offset: int = 0
    ) -> tuple[list[PrintRecord], int]:
        """One page of records and the number of all that match."""
        expr, direction = _order(sort)
        if not 0 <= limit <= MAX_LIMIT or offset < 0:
            raise ValueError(f"limit must be 0..{MAX_LIMIT} and offset at least 0")
        where, params = f.where()
        rows = await self.reader.fetchall(
            f"SELECT {_SELECT} FROM print_history h WHERE {where}"
            f" ORDER BY {expr} {direction}, h.id {direction} LIMIT ? OFFSET ?",
            [*params, limit, offset],
        )
        items = [self._record(r) for r in rows]
        if len(rows) < limit and (rows or offset == 0):
            return items, offset + len(rows)  # the last page: no need to count (a text search scans)
        return items, await self.count(f)

    async def _keyset(self, f: HistoryFilter, sort: str, chunk_rows: int) -> AsyncIterator[list[Any]]:
        """Every matching row in ``sort`` order, ``chunk_rows`` at a time. Each chunk is its own
        short query that starts after the last row of the one before (keyset paging), so no read
        stays open while a slow client drains the export, and no OFFSET rescans."""
        expr, direction = _order(sort)
        op = ">" if direction == "ASC" else "<"
        where, params = f.where()
        sql = f"SELECT {_SELECT}, {expr} AS sort_key FROM print_history h WHERE {where}"
        order = f" ORDER BY {expr} {direction}, h.id {direction} LIMIT ?"
        rows = await self.reader.fetchall(sql + order, [*params, chunk_rows])
        while rows:
            yield rows
            if len(rows) < chunk_rows:
                return
            last = rows[-1]
            # Spelled out rather than as a row value, which SQLite cannot seek in an expression index.
            after = f" AND {expr} {op}= ? AND ({expr} {op} ? OR h.id {op} ?)"
            key = last["sort_key"]
            rows = await self.reader.fetchall(
                sql + after + order, [*params, key, key, last["id"], chunk_rows]
            )

    async def csv_chunks(
        self, f: HistoryFilter, sort: str = DEFAULT_SORT, chunk_rows: int = CSV_CHUNK_ROWS
    ) -> AsyncIterator[str]:
        """The CSV export: a header row, then every matching record, one text chunk per query."""
        _order(sort)  # a bad sort fails before anything is sent
        yield csv_text([CSV_FIELDS])
        async for rows in self._keyset(f, sort, chunk_rows):
            # Formatting is plain Python: off the event loop, which stays free for the printers.
            yield await asyncio.to_thread(_csv_chunk, rows)

    async def totals(self, f: HistoryFilter) -> dict[str, Any]:
        """Count by outcome, success rate (success / (success + failed + cancelled); running and
        unknown say nothing about it), print hours and filament by type and colour of ended prints."""
        where, params = f.where()
        counts = ", ".join(f"sum(h.outcome = '{o}')" for o in OUTCOMES)  # fixed names, not input
        row = await self.reader.fetchone(
            f"SELECT count(*), {counts}, sum(CASE WHEN h.outcome <> 'running' THEN h.duration_s END),"
            " sum(h.energy_kwh), sum(h.energy_cost)"
            f" FROM print_history h WHERE {where}",
            params,
        )
        assert row is not None
        by_outcome = {o: int(row[i + 1] or 0) for i, o in enumerate(OUTCOMES)}
        decided = by_outcome["success"] + by_outcome["failed"] + by_outcome["cancelled"]
        # print_history_filament holds ended prints only. Without a filter its covering index
        # answers alone; with one, the matching records are found first.
        source = "print_history_filament f"
        if params:
            source = f"print_history h JOIN print_history_filament f ON f.history_id = h.id WHERE {where}"
        filament = await self.reader.fetchall(
            "SELECT f.type AS type, f.color AS color, sum(f.grams) AS grams, sum(f.meters) AS meters"
            f" FROM {source} GROUP BY 1, 2 ORDER BY 3 DESC NULLS LAST, 1, 2",
            params,
        )
        return {
            "count": int(row[0] or 0),
            "by_outcome": by_outcome,
            "success_rate": round(by_outcome["success"] / decided, 4) if decided else None,
            "print_hours": round((row[len(OUTCOMES) + 1] or 0.0) / 3600.0, 3),
            # Sums over the prints whose energy was measured; null when none was.
            "energy_kwh": None if row[len(OUTCOMES) + 2] is None else round(row[len(OUTCOMES) + 2], 3),
            "energy_cost": None if row[len(OUTCOMES) + 3] is None else round(row[len(OUTCOMES) + 3], 2),
            "filament": [
                {
                    "type": r["type"],
                    "color": r["color"],
                    "grams": None if r["grams"] is None else round(float(r["grams"]), 2),
                    "meters": None if r["meters"] is None else round(float(r["meters"]), 3),
                }
                for r in filament
            ],
        }
