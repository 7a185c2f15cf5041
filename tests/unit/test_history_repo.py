"""The history repository (jobs/history.py) on a real SQLite database: writes, filters, sorts,
pages, CSV and totals."""

from __future__ import annotations

import csv
import io
import itertools
from pathlib import Path

import pytest

from bambu_edge.jobs.history import (
    CSV_FIELDS,
    SORTS,
    HistoryFilter,
    HistoryRepository,
    record_json,
)
from bambu_edge.jobs.records import FilamentSlot, JobKey, PrintRecord
from bambu_edge.store.db import Database

T0 = 1_764_000_000.0
_uids = (f"{i:032x}" for i in itertools.count(1))


@pytest.fixture
async def repo(tmp_path: Path):
    db = await Database.open(tmp_path / "bambu-edge.db")
    await db.migrate()
    yield HistoryRepository(db, clock=lambda: T0)
    await db.close()


def rec(**kw) -> PrintRecord:
    kw.setdefault("uid", next(_uids))
    kw.setdefault("printer_id", "p1")
    kw.setdefault("started_at", T0)
    outcome = kw.setdefault("outcome", "success")
    if outcome != "running":
        kw.setdefault("ended_at", kw["started_at"] + 600)
        kw.setdefault("duration_s", kw["ended_at"] - kw["started_at"])
    return PrintRecord(**kw)


async def add(repo: HistoryRepository, *records: PrintRecord) -> list[int]:
    return [await repo.save(r) for r in records]  # type: ignore[misc]


# --- writes ---------------------------------------------------------------------------------------


async def test_a_record_round_trips(repo):
    r = rec(
        outcome="running",
        printer_name="X1C left",
        model="X1C",
        job="cube",
        file="cube.3mf",
        plate=2,
        hms=("0700_2000_0002_0001",),
        filament=(FilamentSlot(2, "PETG", "#FFFFFFFF", 40.0, 13.2), FilamentSlot(254, "TPU")),
        thumbnail="abc",
        queue_job_id=4,
        state="PAUSE",
        key=JobKey(job="cube", file="/data/Metadata/plate_2.gcode", task_id="9"),
        last_seen_at=T0 + 5,
        remaining_s=300,
        progress=40,
        layers=8,
        total_layers=20,
    )
    rid = await repo.save(r)
    assert rid is not None
    (loaded,) = await repo.open_records()
    r.id = rid
    assert loaded == r
    assert loaded.id == rid and loaded.uid == r.uid and loaded.key == r.key and loaded.filament == r.filament
    assert (loaded.hms, loaded.state, loaded.remaining_s, loaded.queue_job_id) == (r.hms, "PAUSE", 300, 4)
    j = record_json(loaded)
    assert j["thumbnail"] == f"/api/history/{rid}/thumbnail" and j["hms"] == ["0700_2000_0002_0001"]
    assert j["filament"][0] == {
        "slot": 2,
        "type": "PETG",
        "color": "#FFFFFFFF",
        "grams": 40.0,
        "meters": 13.2,
    }
    assert set(j) >= {"id", "uid", "printer_id", "printer_name", "outcome", "duration_s", "queue_job_id"}


async def test_writes_are_idempotent_and_a_closed_record_stays_closed(repo):
    r = rec(outcome="running", progress=10)
    rid = await repo.save(r)
    r.progress = 20
    assert await repo.save(r) == rid  # an update, not a second row
    r.outcome, r.ended_at, r.duration_s = "success", T0 + 60, 60.0
    assert await repo.save(r, durable=True) == rid
    # A late write of the running snapshot must not reopen it.
    stale = rec(uid=r.uid, outcome="running", progress=15)
    assert await repo.save(stale) == rid
    loaded = await repo.get(rid)
    assert loaded is not None and loaded.outcome == "success" and loaded.progress == 20
    assert await repo.open_records() == []
    assert await repo.count(HistoryFilter()) == 1


async def test_amend_changes_only_a_closed_record(repo):
    r = rec(outcome="failed", failure_reason="x", filament=(FilamentSlot(0, "PLA", None, 5.0),))
    rid = await repo.save(r)
    r.outcome, r.failure_reason = "cancelled", "stopped from bambu-edge"
    assert await repo.amend(r) == rid
    got = await repo.get(rid)
    assert got is not None and got.outcome == "cancelled" and got.failure_reason == "stopped from bambu-edge"
    running = rec(outcome="running", printer_id="p2")
    await repo.save(running)
    running.outcome = "cancelled"
    assert await repo.amend(running) is None
    assert await repo.amend(rec(outcome="cancelled")) is None  # no such record


async def test_the_closing_write_is_fsynced_and_the_setting_restored(repo):
    seen: list[str] = []
    await repo.db.conn.set_trace_callback(seen.append)
    r = rec(outcome="running")
    await repo.save(r)
    plain = list(seen)
    seen.clear()
    r.outcome, r.ended_at, r.duration_s = "success", T0 + 1, 1.0
    await repo.save(r, durable=True)
    await repo.db.conn.set_trace_callback(None)
    assert not any("synchronous" in s for s in plain)
    statements = [s.strip().upper() for s in seen]
    full = statements.index("PRAGMA SYNCHRONOUS=FULL")
    assert statements[full + 1] == "BEGIN IMMEDIATE" and "COMMIT" in statements[full:]
    assert statements.index("PRAGMA SYNCHRONOUS=NORMAL") > statements.index("COMMIT")
    assert (await repo.db.fetchone("PRAGMA synchronous"))[0] == 1  # NORMAL again


async def test_one_printer_cannot_have_two_open_records(repo):
    import sqlite3

    await repo.save(rec(outcome="running"))
    with pytest.raises(sqlite3.IntegrityError):
        await repo.save(rec(outcome="running"))
    assert len(await repo.open_records()) == 1


# --- queries --------------------------------------------------------------------------------------


async def _sample(repo) -> list[PrintRecord]:
    records = [
        rec(printer_id="p1", printer_name="Alpha", job="Benchy", file="benchy.3mf", started_at=T0 + 10),
        rec(
            printer_id="p2",
            printer_name="beta",
            job="cube",
            file="cube.3mf",
            started_at=T0 + 20,
            outcome="failed",
        ),
        rec(printer_id="p1", printer_name="Alpha", job="100%_done", file="a_b.3mf", started_at=T0 + 30),
        rec(printer_id="p3", printer_name=None, job=None, file=None, started_at=T0 + 40, outcome="running"),
        rec(
            printer_id="p2",
            printer_name="beta",
            job="Cube",
            file="CUBE.gcode",
            started_at=T0 + 50,
            outcome="cancelled",
        ),
        rec(
            printer_id="p1",
            printer_name="Alpha",
            job="vase",
            file="vase.3mf",
            started_at=T0 + 60,
            duration_s=5.0,
            ended_at=T0 + 65,
            outcome="unknown",
        ),
    ]
    for r in records:
        r.id = await repo.save(r)
    return records


async def test_filters(repo):
    recs = await _sample(repo)

    async def ids(**kw) -> list[int]:
        items, total = await repo.page(HistoryFilter(**kw), "started_at", 500, 0)
        assert total == len(items)
        return [r.id for r in items]

    assert await ids() == [r.id for r in recs]
    assert await ids(printers=("p2",)) == [recs[1].id, recs[4].id]
    assert await ids(printers=("p2", "p3")) == [recs[1].id, recs[3].id, recs[4].id]
    assert await ids(outcomes=("failed", "cancelled")) == [recs[1].id, recs[4].id]
    assert await ids(q="cube") == [recs[1].id, recs[4].id]  # job or file, any case
    assert await ids(q="%") == [recs[2].id]  # a literal %, not a wildcard
    assert await ids(q="a_b") == [recs[2].id]
    assert await ids(q="_") == [recs[2].id]
    assert await ids(since=T0 + 20, until=T0 + 50) == [recs[1].id, recs[2].id, recs[3].id]  # [since, until)
    assert await ids(printers=("p1",), q="vase", outcomes=("unknown",), since=T0) == [recs[5].id]
    assert await ids(printers=("nobody",)) == []
    with pytest.raises(ValueError, match="outcome"):
        HistoryFilter(outcomes=("finished",))


async def test_sorts_and_ties(repo):
    recs = await _sample(repo)

    def key(sort: str):
        name = sort.lstrip("-")
        if name == "started_at":
            return lambda r: r.started_at
        if name == "duration_s":
            return lambda r: -1.0 if r.duration_s is None else r.duration_s
        if name == "job":
            return lambda r: (r.job or "").lower()
        return lambda r: (r.printer_name or r.printer_id).lower()

    for sort in SORTS:
        items, _ = await repo.page(HistoryFilter(), sort, 500, 0)
        desc = sort.startswith("-")
        k = key(sort)
        expected = [r for _, r in sorted((((k(r), r.id), r) for r in recs), key=lambda x: x[0], reverse=desc)]
        assert [r.id for r in items] == [r.id for r in expected], sort
        # The CSV's keyset steps give the same order, even two rows at a time and across ties.
        text = "".join([c async for c in repo.csv_chunks(HistoryFilter(), sort, 2)])
        stepped = [int(row[0]) for row in list(csv.reader(io.StringIO(text)))[1:]]
        assert stepped == [r.id for r in expected], sort
    with pytest.raises(ValueError, match="sort"):
        await repo.page(HistoryFilter(), "started_at; DROP TABLE print_history")


async def test_paging(repo):
    for i in range(23):
        await repo.save(rec(started_at=T0 + i, job=f"job {i}"))
    page1, total = await repo.page(HistoryFilter(), "-started_at", 10, 0)
    page3, _ = await repo.page(HistoryFilter(), "-started_at", 10, 20)
    assert total == 23 and [r.job for r in page1][:2] == ["job 22", "job 21"]
    assert [r.job for r in page3] == ["job 2", "job 1", "job 0"]
    assert (await repo.page(HistoryFilter(), "-started_at", 10, 100))[0] == []
    with pytest.raises(ValueError):
        await repo.page(HistoryFilter(), "-started_at", 501, 0)
    with pytest.raises(ValueError):
        await repo.page(HistoryFilter(), "-started_at", 10, -1)


async def test_csv_has_every_row_quoted_and_no_formulas(repo):
    await repo.save(
        rec(
            job='=HYPERLINK("http://evil","x")',
            file='a,b\n"c".3mf',
            printer_name="+Alpha",
            failure_reason="Print error 0700_8006; AMS: serious problem (HMS 0700_2000_0002_0001)",
            outcome="failed",
            error_code="0700_8006",
            hms=("0700_2000_0002_0001", "0300_0100_0001_0007"),
            filament=(
                FilamentSlot(2, "PETG", "#FFFFFFFF", 40.0, 13.2),
                FilamentSlot(5, "PLA", None, 2.5, None),
            ),
        )
    )
    for i in range(1200):  # more than two export chunks
        await repo.save(rec(started_at=T0 + 10 + i, job=f"job {i}", printer_id=f"p{i % 3}"))
    text = "".join([c async for c in repo.csv_chunks(HistoryFilter(), "started_at")])
    rows = list(csv.reader(io.StringIO(text)))
    assert tuple(rows[0]) == CSV_FIELDS
    assert len(rows) == 1 + 1201
    first = dict(zip(CSV_FIELDS, rows[1], strict=True))
    assert first["job"].startswith("'=") and first["printer_name"] == "'+Alpha"
    assert first["file"] == 'a,b\n"c".3mf'  # commas, quotes and newlines survive the round trip
    assert first["started_at"] == "2025-11-24T16:00:00Z" and first["duration_s"] == "600"
    assert first["hms"] == "0700_2000_0002_0001 0300_0100_0001_0007"
    assert first["filament_grams"] == "42.5" and first["filament_meters"] == "13.2"
    assert first["filament"] == "slot 2 PETG #FFFFFFFF 40 g 13.2 m | slot 5 PLA 2.5 g"
    assert [r[5] for r in rows[2:5]] == ["job 0", "job 1", "job 2"]
    # Filters apply to the export too.
    text = "".join([c async for c in repo.csv_chunks(HistoryFilter(printers=("p1",), q="job 1"))])
    jobs = [r[5] for r in list(csv.reader(io.StringIO(text)))[1:]]
    assert jobs and all(j.startswith("job 1") for j in jobs)
    assert jobs == sorted(jobs, key=lambda j: -int(j.split()[1]))  # default sort: newest first


async def test_totals(repo):
    pla_white = FilamentSlot(0, "PLA", "#FFFFFFFF", 10.0, 3.0)
    await add(
        repo,
        rec(
            outcome="success",
            duration_s=3600.0,
            ended_at=T0 + 3600,
            filament=(pla_white, FilamentSlot(1, "PETG", "#000000FF", 5.0, 1.5)),
        ),
        rec(outcome="success", duration_s=1800.0, ended_at=T0 + 1800, filament=(pla_white,)),
        rec(
            outcome="failed",
            duration_s=1800.0,
            ended_at=T0 + 1800,
            filament=(FilamentSlot(0, "PLA", "#FFFFFFFF", 2.5, None),),
        ),
        rec(
            outcome="cancelled",
            duration_s=0.0,
            ended_at=T0,
            filament=(FilamentSlot(3, None, None, None, None),),
        ),
        rec(outcome="unknown", duration_s=600.0),
        rec(outcome="running", printer_id="p2", filament=(FilamentSlot(0, "ABS", "#FF0000FF", 99.0, 30.0),)),
    )
    t = await repo.totals(HistoryFilter())
    assert t["count"] == 6
    assert t["by_outcome"] == {"running": 1, "success": 2, "failed": 1, "cancelled": 1, "unknown": 1}
    assert t["success_rate"] == 0.5  # success / (success + failed + cancelled)
    assert t["print_hours"] == pytest.approx((3600 + 1800 + 1800 + 600) / 3600, abs=1e-3)
    assert t["filament"] == [
        {"type": "PLA", "color": "#FFFFFFFF", "grams": 22.5, "meters": 6.0},
        {"type": "PETG", "color": "#000000FF", "grams": 5.0, "meters": 1.5},
        {"type": None, "color": None, "grams": None, "meters": None},
    ]  # the running print's planned ABS is not "used" yet
    # An amended outcome moves its filament with it.
    failed = (await repo.page(HistoryFilter(outcomes=("failed",))))[0][0]
    failed.outcome = "cancelled"
    assert await repo.amend(failed)
    assert (await repo.totals(HistoryFilter(outcomes=("cancelled",))))["filament"][0]["grams"] == 2.5
    failed.outcome = "failed"
    assert await repo.amend(failed)
    # A stale write of a closed record changes nothing, its filament rows included.
    stale = rec(uid=failed.uid, outcome="running", filament=())
    await repo.save(stale)
    assert await repo.totals(HistoryFilter()) == t
    only_failed = await repo.totals(HistoryFilter(outcomes=("failed",)))
    assert only_failed["count"] == 1 and only_failed["success_rate"] == 0.0
    none = await repo.totals(HistoryFilter(printers=("nobody",)))
    assert none == {
        "count": 0,
        "by_outcome": {"running": 0, "success": 0, "failed": 0, "cancelled": 0, "unknown": 0},
        "success_rate": None,
        "print_hours": 0.0,
        "energy_kwh": None,
        "energy_cost": None,
        "filament": [],
    }


INJECTIONS = [
    "' OR '1'='1",
    "p1' --",
    "x'); DROP TABLE print_history; --",
    '" OR 1=1 --',
    "%' UNION SELECT * FROM users --",
    "\\",
    "\x00",
]


async def test_sql_injection_in_every_parameter_finds_nothing_and_breaks_nothing(repo):
    await _sample(repo)
    await repo.db.execute(
        "INSERT INTO users (name, password_hash, role, created_at, password_changed_at)"
        " VALUES ('admin', '$argon2id$x', 'admin', 1, 1)"
    )
    for evil in INJECTIONS:
        f = HistoryFilter(printers=(evil,))
        assert await repo.page(f) == ([], 0)
        assert (await repo.totals(f))["count"] == 0
        assert [c async for c in repo.csv_chunks(f)][1:] == []
        if evil.isprintable():
            assert (await repo.page(HistoryFilter(q=evil)))[1] == 0
        else:
            with pytest.raises(ValueError, match="printable"):
                HistoryFilter(q=evil)
        with pytest.raises(ValueError):
            HistoryFilter(outcomes=(evil,))
        with pytest.raises(ValueError):
            await repo.page(HistoryFilter(), evil)
        with pytest.raises(ValueError):
            [c async for c in repo.csv_chunks(HistoryFilter(), evil)]
    assert await repo.count(HistoryFilter()) == 6
    assert (await repo.db.fetchone("SELECT count(*) FROM users"))[0] == 1


async def test_a_write_after_a_write_sets_only_what_changed(repo):
    seen: list[str] = []
    r = rec(outcome="running", job="cube", progress=1)
    rid = await repo.save(r)
    before = r.snapshot()
    r.progress, r.last_seen_at = 2, T0 + 5
    await repo.db.conn.set_trace_callback(seen.append)
    assert await repo.save(r, previous=before) == rid
    await repo.db.conn.set_trace_callback(None)
    (update,) = [s for s in seen if s.lstrip().startswith("UPDATE")]
    update = update.split(" WHERE ")[0]
    # Indexed columns are left out, so their index pages are not rewritten.
    assert "progress = " in update and "last_seen_at = " in update
    assert "job = " not in update and "started_at = " not in update and "outcome = " not in update
    got = await repo.get(rid)
    assert got is not None and got.progress == 2 and got.last_seen_at == T0 + 5
    # The row is missing (its first write failed): the full record is written instead.
    lost = rec(outcome="running", printer_id="p9", progress=7)
    lost_id = await repo.save(lost, previous=lost.snapshot())
    assert lost_id is not None
    assert (await repo.get(lost_id)).progress == 7  # type: ignore[union-attr]


# --- energy (issue 11: power control writes it after the print) -------------------------------------


async def test_energy_goes_on_an_ended_record_and_into_totals_and_csv(repo):
    running = rec(outcome="running")
    ended, other = rec(), rec()
    rid, eid, oid = await add(repo, running, ended, other)
    assert await repo.set_energy(rid, 1.0, 0.3) is None  # still printing: nothing to measure yet
    got = await repo.set_energy(eid, 0.85, 0.255)
    assert (got.energy_kwh, got.energy_cost) == (0.85, 0.255)
    assert record_json(got)["energy_kwh"] == 0.85 and record_json(got)["energy_cost"] == 0.255
    # A later save of the record (the tracker's) leaves the measurement alone.
    await repo.save(ended)
    assert (await repo.get(eid)).energy_kwh == 0.85
    assert (await repo.get(oid)).energy_kwh is None
    t = await repo.totals(HistoryFilter())
    assert (t["energy_kwh"], t["energy_cost"]) == (0.85, 0.26)
    text = "".join([c async for c in repo.csv_chunks(HistoryFilter())])
    rows = {r["id"]: r for r in csv.DictReader(io.StringIO(text))}
    assert (rows[str(eid)]["energy_kwh"], rows[str(eid)]["energy_cost"]) == ("0.85", "0.255")
    assert rows[str(oid)]["energy_kwh"] == ""
