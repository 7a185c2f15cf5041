"""The queue repository (jobs/queue.py) on a real, migrated SQLite database."""

from __future__ import annotations

import hashlib
import sqlite3

import pytest

from bambu_edge.files.meta import FilamentUse, ModelInfo, PlateMeta, PrintFileMeta
from bambu_edge.jobs.queue import QueueStore, meta_from_json
from bambu_edge.store.db import Database

META = PrintFileMeta(
    kind="3mf",
    title="cube",
    printer_model="P1S",
    printer_model_id="C12",
    nozzle_diameter=0.4,
    slicer="BambuStudio 02.01.01.52",
    plates=(
        PlateMeta(
            1,
            "Metadata/plate_1.gcode",
            "Metadata/plate_1.png",
            prediction_s=3600,
            weight_g=12.5,
            layers=120,
            filaments=(FilamentUse(1, "PLA", "#000000FF", 12.5, 4.1, "GFA00"),),
            objects=("cube",),
        ),
    ),
    model=ModelInfo(1, 8, 12),
    warnings=("lib3mf is not installed",),
)


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        self.t += 1.0
        return self.t


@pytest.fixture
async def store(tmp_path):
    db = await Database.open(tmp_path / "db.sqlite")
    await db.migrate()
    yield QueueStore(db, clock=Clock())
    await db.close()


async def add_file(store: QueueStore, content: bytes = b"cube", name: str = "cube.3mf"):
    return await store.add_file(
        name=name,
        kind="3mf",
        size=len(content),
        sha256=hashlib.sha256(content).hexdigest(),
        md5=hashlib.md5(content).hexdigest(),
        meta=META,
    )


def test_meta_round_trips_through_json():
    assert meta_from_json(META.to_json()) == META
    assert meta_from_json({"kind": "gcode", "future_field": 1}) == PrintFileMeta(kind="gcode")


async def test_the_same_bytes_are_one_file(store):
    f, created = await add_file(store)
    assert created and f.meta == META and f.name == "cube.3mf"
    again, created = await add_file(store, name="other name.3mf")
    assert not created and again.id == f.id and again.name == "cube.3mf"
    other, created = await add_file(store, b"other")
    assert created and other.id != f.id
    assert [x.id for x in await store.list_files()] == [other.id, f.id]


async def test_jobs_go_by_priority_then_position_and_can_be_moved(store):
    f, _ = await add_file(store)
    a = await store.add_job(file_id=f.id)
    b = await store.add_job(file_id=f.id)
    c = await store.add_job(file_id=f.id, priority=5)
    assert [j.id for j in await store.active_jobs()] == [c.id, a.id, b.id]
    await store.move_job(b.id, a.id)
    assert [j.id for j in await store.active_jobs()] == [c.id, b.id, a.id]
    await store.move_job(b.id, None)
    assert [j.id for j in await store.active_jobs()] == [c.id, a.id, b.id]
    assert (await store.get_job(a.id)).file_name == "cube.3mf"


async def test_a_copy_goes_through_its_states(store):
    f, _ = await add_file(store)
    job = await store.add_job(file_id=f.id, copies=2, options={"timelapse": True})
    assert job.state == "waiting" and job.options == {"timelapse": True}
    await store.set_bed("p1", True)
    run = await store.start_run(job.id, "p1", remote_path="/cache/cube.3mf", subtask="cube")
    assert run.state == "uploading"
    assert (await store.beds())["p1"] is False  # the print will be on the bed
    job = await store.get_job(job.id)
    assert job.state == "dispatching" and job.attempts == 1
    await store.update_run(run.id, state="starting", sequence_id="77")
    await store.update_run(run.id, state="printing")
    job = await store.get_job(job.id)
    assert job.state == "printing" and job.attempts == 0
    await store.end_run(run.id, success=True, history_id=9)
    job = await store.get_job(job.id)
    assert job.state == "waiting" and job.copies_done == 1
    run2 = await store.start_run(job.id, "p1", remote_path="/cache/cube.3mf", subtask="cube")
    await store.update_run(run2.id, state="printing")
    await store.end_run(run2.id, success=True, history_id=10)
    job = await store.get_job(job.id)
    assert job.state == "done" and job.copies_done == 2 and job.ended_at is not None
    runs = (await store.runs_for([job.id]))[job.id]
    assert [(r.state, r.history_id) for r in runs] == [("done", 9), ("done", 10)]
    assert await store.recent_load(0) == {"p1": 2}
    assert await store.recent_load(0, ["p1", "p2"]) == {"p1": 2}
    assert await store.recent_load(0, ["p2"]) == {}
    assert await store.recent_load(runs[-1].started_at + 1, ["p1"]) == {}


async def test_a_failed_print_does_not_count_as_a_copy(store):
    f, _ = await add_file(store)
    job = await store.add_job(file_id=f.id)
    run = await store.start_run(job.id, "p1", remote_path="/cache/cube.3mf", subtask="cube")
    await store.update_run(run.id, state="printing")
    await store.end_run(run.id, success=False, history_id=3, error="cancelled on the printer")
    job = await store.get_job(job.id)
    assert job.state == "waiting" and job.copies_done == 0 and job.last_error == "cancelled on the printer"
    assert (await store.beds())["p1"] is False


async def test_one_copy_in_flight_per_printer(store):
    f, _ = await add_file(store)
    job = await store.add_job(file_id=f.id, copies=2)
    await store.start_run(job.id, "p1", remote_path="/cache/cube.3mf", subtask="cube")
    with pytest.raises(sqlite3.IntegrityError):
        await store.start_run(job.id, "p1", remote_path="/cache/cube.3mf", subtask="cube")
    await store.start_run(job.id, "p2", remote_path="/cache/cube.3mf", subtask="cube")
    assert {r.printer_id for r in await store.runs_in_flight()} == {"p1", "p2"}


async def test_failure_before_printing_retries_or_fails_and_keeps_the_bed_clear(store):
    f, _ = await add_file(store)
    job = await store.add_job(file_id=f.id)
    await store.set_bed("p1", True)
    run = await store.start_run(job.id, "p1", remote_path="/cache/cube.3mf", subtask="cube")
    await store.fail_run_before_print(run.id, error="upload failed", retry_at=5000.0)
    job = await store.get_job(job.id)
    assert job.state == "waiting" and job.next_attempt_at == 5000.0 and job.last_error == "upload failed"
    assert (await store.beds())["p1"] is True
    run = await store.start_run(job.id, "p1", remote_path="/cache/cube.3mf", subtask="cube")
    await store.fail_run_before_print(run.id, error="needs Developer Mode", retry_at=None)
    job = await store.get_job(job.id)
    assert job.state == "failed" and job.last_error == "needs Developer Mode" and job.attempts == 2
    job = await store.retry_job(job.id)
    assert job.state == "waiting" and job.attempts == 0 and job.ended_at is None


async def test_cancel_keeps_the_copy_in_flight(store):
    f, _ = await add_file(store)
    job = await store.add_job(file_id=f.id, copies=3)
    run = await store.start_run(job.id, "p1", remote_path="/cache/cube.3mf", subtask="cube")
    await store.update_run(run.id, state="printing")
    job = await store.cancel_job(job.id)
    assert job.state == "cancelled"
    assert await store.file_in_use(f.id)  # still printing
    await store.end_run(run.id, success=True, history_id=1)
    job = await store.get_job(job.id)
    assert job.state == "cancelled" and job.copies_done == 1
    assert not await store.file_in_use(f.id)
    assert [j.id for j in await store.list_jobs()] == [job.id]


async def test_deleting_a_file_deletes_its_finished_jobs(store):
    f, _ = await add_file(store)
    job = await store.add_job(file_id=f.id)
    assert await store.file_in_use(f.id)
    await store.cancel_job(job.id)
    assert await store.delete_file(f.id) == [job.id]
    assert await store.get_job(job.id) is None and await store.get_file(f.id) is None


async def test_bed_marks_and_pause_are_kept(store, tmp_path):
    assert await store.beds() == {}
    assert await store.set_bed("p1", True) is True
    assert await store.set_bed("p1", True) is False
    assert await store.paused() is False
    await store.set_paused(True)
    await store.db.close()
    db = await Database.open(tmp_path / "db.sqlite")
    again = QueueStore(db)
    assert await again.paused() is True and await again.beds() == {"p1": True}
    store.db = db  # the fixture closes this one


async def test_the_schema_refuses_nonsense(store):
    f, _ = await add_file(store)
    with pytest.raises(sqlite3.IntegrityError):
        await store.add_job(file_id=f.id, copies=0)
    with pytest.raises(sqlite3.IntegrityError):
        await store.add_job(file_id=f.id + 100)  # no such file
    await store.add_job(file_id=f.id)
    with pytest.raises(sqlite3.IntegrityError):
        await store.db.execute("UPDATE queue_jobs SET state = 'sleeping'")
