"""Names the dispatcher gives a queued file on the printer, and how it recognises its prints."""

from __future__ import annotations

from bambu_edge.jobs.dispatcher import record_is_run
from bambu_edge.jobs.queue import Run
from bambu_edge.jobs.records import PrintRecord
from bambu_edge.jobs.run import job_name, remote_path_for


def test_job_name_is_the_file_name_without_its_extension():
    assert job_name("cube.gcode.3mf") == "cube"
    assert job_name("Benchy v2.3mf") == "Benchy v2"
    assert job_name("benchy.gcode") == "benchy"
    assert job_name(".3mf") == "print"
    assert job_name("a\x1bb.3mf") == "ab"


def test_remote_path_is_a_safe_ascii_name_in_cache():
    assert remote_path_for("cube.gcode.3mf", "3mf") == "/cache/cube.gcode.3mf"
    assert remote_path_for("Würfel groß (2).3mf", "3mf") == "/cache/Wurfel_gro_2.3mf"
    assert remote_path_for("../../etc/passwd.3mf", "3mf") == "/cache/passwd.3mf"
    assert remote_path_for("日本.3mf", "3mf") == "/cache/print.3mf"
    assert remote_path_for("benchy.gcode", "gcode") == "/cache/benchy.gcode"
    assert len(remote_path_for("x" * 300 + ".3mf", "3mf")) < 100


def _run(**kw) -> Run:
    base = dict(
        id=1, job_id=7, printer_id="p1", state="printing", remote_path="/cache/cube.3mf", subtask="cube",
        sequence_id="5", history_id=None, error=None, started_at=1000.0, ended_at=None,
    )  # fmt: skip
    base.update(kw)
    return Run(**base)


def _record(queue_job_id: int | None, job: str | None = None, started_at: float = 0.0) -> PrintRecord:
    return PrintRecord(uid="u", printer_id="p1", started_at=started_at, job=job, queue_job_id=queue_job_id)


def test_a_record_is_the_run_by_queue_job_id_else_by_name_and_time():
    run = _run()
    assert record_is_run(_record(7), run)
    assert not record_is_run(_record(8, "cube", 1001.0), run)
    assert record_is_run(_record(None, "cube", 1001.0), run)
    # The print that was on the printer before ours (it ended just as we started) is not ours.
    assert not record_is_run(_record(None, "cube", 500.0), run)
    assert not record_is_run(_record(None, "other", 1001.0), run)
