"""The print tracker (jobs/tracker.py): report sequences in, history actions out."""

from __future__ import annotations

import dataclasses
import itertools
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bambu_edge.jobs.records import (
    Action,
    ExpectedPrint,
    FilamentSlot,
    JobKey,
    Observation,
    PrintFileInfo,
    PrintRecord,
    plate_of,
)
from bambu_edge.jobs.tracker import (
    FRESH_FALLBACK_S,
    REASON_CANCELLED_ON_PRINTER,
    REASON_NOT_WATCHING,
    REASON_REMOVED,
    REASON_STOPPED_HERE,
    UNKNOWN_STATE_LIMIT_S,
    PrintTracker,
    observe,
)
from bambu_edge.printers.bambu.fixtures import load_fixture
from bambu_edge.printers.bambu.protocol import PRINT_ERROR_CANCELLED
from bambu_edge.printers.bambu.report import BambuState
from bambu_edge.printers.base import NO_IDENTITY

T0 = 1_764_000_000.0
GCODE = "/data/Metadata/plate_2.gcode"


def ob(now: float, state: str | None, **kw: Any) -> Observation:
    """A connected, full report; ``job``/``file`` default to one print's identity."""
    kw.setdefault("job", "cube")
    kw.setdefault("file", GCODE)
    kw.setdefault("key", JobKey(job=kw["job"], file=kw["file"]))
    kw.setdefault("link", "connected")
    kw.setdefault("report", True)
    kw.setdefault("full", True)
    kw.setdefault("printer_name", "X1C left")
    kw.setdefault("model", "X1C")
    return Observation(now=now, state=state, **kw)


def tracker(record: PrintRecord | None = None) -> PrintTracker:
    counter = itertools.count(1)
    return PrintTracker("x1c", record=record, uid_factory=lambda: f"{next(counter):032x}")


def feed(t: PrintTracker, *observations: Observation) -> list[Action]:
    out: list[Action] = []
    for o in observations:
        out += t.observe(o)
    return out


def kinds(actions: list[Action]) -> list[str]:
    return [a.kind for a in actions]


def closed(actions: list[Action]) -> PrintRecord:
    (rec,) = [a.record for a in actions if a.kind == "close"]
    return rec


# --- ordinary prints ------------------------------------------------------------------------------


def test_a_print_from_prepare_to_finish_is_one_complete_record():
    t = tracker()
    assert feed(t, ob(T0, "IDLE", job=None, file=None)) == []
    opened = t.observe(ob(T0 + 1, "PREPARE", progress=100, layer=480, total_layers=480))
    assert kinds(opened) == ["open"]
    rec = opened[0].record
    assert rec.outcome == "running" and rec.started_at == T0 + 1 and rec.plate == 2
    assert rec.job == "cube" and rec.file == GCODE and rec.printer_name == "X1C left" and rec.model == "X1C"
    # While preparing, progress and layers are still the last print's: not taken.
    assert rec.progress is None and rec.layers is None

    running = feed(
        t,
        ob(T0 + 60, "RUNNING", progress=0, layer=1, total_layers=50, remaining_s=3600),
        ob(T0 + 120, "RUNNING", progress=10, layer=5, total_layers=50, remaining_s=3000),
    )
    assert kinds(running) == ["update", "update"]
    assert running[0].urgent  # PREPARE -> RUNNING is a state change
    assert not running[1].urgent  # progress alone may wait
    assert running[1].record.progress == 10 and running[1].record.layers == 5

    end = t.observe(ob(T0 + 3700, "FINISH", progress=100, layer=50, total_layers=50, remaining_s=0))
    rec = closed(end)
    assert rec.outcome == "success" and rec.failure_reason is None and rec.error_code is None
    assert rec.ended_at == T0 + 3700 and rec.duration_s == 3699
    assert rec.progress == 100 and rec.layers == 50 and rec.total_layers == 50
    assert t.record is None
    # FINISH stays on the screen: nothing more happens.
    assert feed(t, ob(T0 + 3800, "FINISH"), ob(T0 + 9000, "FINISH", job="cube")) == []


def test_pause_and_resume_are_written_at_once():
    t = tracker()
    feed(t, ob(T0, "RUNNING", progress=20, layer=3))
    paused = t.observe(ob(T0 + 10, "PAUSE", progress=20, layer=3))
    assert kinds(paused) == ["update"] and paused[0].urgent and paused[0].record.state == "PAUSE"
    resumed = t.observe(ob(T0 + 99, "RUNNING", progress=20, layer=3))
    assert resumed[0].urgent and resumed[0].record.state == "RUNNING"
    assert t.record is not None and t.record.uid == paused[0].record.uid


def test_finish_straight_to_prepare_is_a_new_print_of_the_same_file():
    t = tracker()
    first = feed(t, ob(T0, "RUNNING", progress=50), ob(T0 + 100, "FINISH", progress=100))
    again = feed(t, ob(T0 + 200, "PREPARE", progress=100), ob(T0 + 300, "RUNNING", progress=1))
    assert kinds(first) == ["open", "close"]
    assert kinds(again) == ["open", "update"]
    assert again[0].record.uid != first[0].record.uid
    assert closed(first).outcome == "success"


def test_first_sight_mid_print_opens_a_record_from_now_or_the_printers_start_time():
    t = tracker()
    rec = t.observe(ob(T0, "RUNNING", progress=40, layer=20, total_layers=50))[0].record
    assert rec.started_at == T0 and rec.progress == 40 and rec.layers == 20
    t2 = tracker()
    key = JobKey(job="cube", file=GCODE, start_time=int(T0) - 1800)
    rec2 = t2.observe(ob(T0, "RUNNING", progress=40, key=key))[0].record
    assert rec2.started_at == T0 - 1800  # gcode_start_time (older firmware)
    # A start time in the future is not believed.
    t3 = tracker()
    rec3 = t3.observe(ob(T0, "RUNNING", key=JobKey(job="cube", start_time=int(T0) + 86400)))[0].record
    assert rec3.started_at == T0


def test_job_fields_corrected_while_preparing_stay_one_record():
    """The printer may show the last job's name for a moment when a new print starts."""
    t = tracker()
    opened = t.observe(ob(T0, "PREPARE", job="old job", file="/data/Metadata/plate_1.gcode"))
    fixed = t.observe(ob(T0 + 1, "PREPARE", job="new job", file=GCODE))
    assert kinds(opened) == ["open"] and kinds(fixed) == ["update"]
    assert fixed[0].urgent and fixed[0].record.job == "new job" and fixed[0].record.plate == 2
    assert fixed[0].record.uid == opened[0].record.uid


def test_another_job_while_we_watched_closes_the_first_as_unknown():
    t = tracker()
    feed(t, ob(T0, "RUNNING", progress=50))
    out = t.observe(ob(T0 + 5, "RUNNING", job="other", file="/data/Metadata/plate_1.gcode", progress=3))
    assert kinds(out) == ["close", "open"]
    assert out[0].record.outcome == "unknown" and out[0].record.ended_at == T0
    assert out[1].record.job == "other"


# --- how prints end --------------------------------------------------------------------------------


def test_a_stop_on_the_printer_is_cancelled():
    t = tracker()
    feed(t, ob(T0, "RUNNING", progress=30))
    rec = closed(t.observe(ob(T0 + 60, "FAILED", progress=30, print_error=PRINT_ERROR_CANCELLED)))
    assert rec.outcome == "cancelled" and rec.failure_reason == REASON_CANCELLED_ON_PRINTER
    assert rec.error_code == "0300_400C" and rec.progress == 30


def test_our_accepted_stop_command_means_cancelled():
    t = tracker()
    feed(t, ob(T0, "RUNNING", progress=30))
    assert t.command("stop", "success", T0 + 1) == []
    rec = closed(t.observe(ob(T0 + 2, "FAILED", print_error=0)))
    assert rec.outcome == "cancelled" and rec.failure_reason == REASON_STOPPED_HERE
    # ... also when the printer goes straight to IDLE.
    t2 = tracker()
    feed(t2, ob(T0, "RUNNING"))
    t2.command("stop", "success", T0 + 1)
    assert closed(t2.observe(ob(T0 + 2, "IDLE", job=None, file=None))).outcome == "cancelled"


def test_a_stop_the_printer_refused_or_never_answered_does_not_cancel():
    t = tracker()
    feed(t, ob(T0, "RUNNING"))
    t.command("stop", "failed", T0 + 1)
    t.command("stop", "timeout", T0 + 2)
    t.command("pause", "success", T0 + 3)
    assert closed(t.observe(ob(T0 + 4, "FAILED", print_error=117473286))).outcome == "failed"


def test_a_stop_answer_after_the_failed_report_amends_the_outcome():
    t = tracker()
    feed(t, ob(T0, "RUNNING"))
    rec = closed(t.observe(ob(T0 + 2, "FAILED", print_error=0)))
    assert rec.outcome == "failed"
    (amend,) = t.command("stop", "success", T0 + 3)
    assert amend.kind == "amend" and amend.record.uid == rec.uid
    assert amend.record.outcome == "cancelled" and amend.record.failure_reason == REASON_STOPPED_HERE
    assert t.command("stop", "success", T0 + 4) == []  # once
    # Much later, an unrelated stop does not touch an old record.
    t2 = tracker()
    feed(t2, ob(T0, "RUNNING"), ob(T0 + 2, "FAILED", print_error=0))
    assert t2.command("stop", "success", T0 + 600) == []


def test_a_failure_carries_print_error_and_hms_in_words():
    t = tracker()
    alarm = ("0700_2000_0002_0001", "AMS: serious problem")
    feed(t, ob(T0, "RUNNING", progress=12), ob(T0 + 5, "RUNNING", progress=12, hms=(alarm,)))
    rec = closed(t.observe(ob(T0 + 6, "FAILED", print_error=117473286, hms=(alarm,))))
    assert rec.outcome == "failed" and rec.error_code == "0700_8006"
    assert rec.failure_reason == "Print error 0700_8006; AMS: serious problem (HMS 0700_2000_0002_0001)"
    assert rec.hms == ("0700_2000_0002_0001",)
    # Without any code the reason still says what happened.
    t2 = tracker()
    feed(t2, ob(T0, "RUNNING"))
    assert (
        closed(t2.observe(ob(T0 + 1, "FAILED"))).failure_reason == "the printer reported the print as failed"
    )


def test_a_p1s_that_keeps_a_print_error_with_finish_still_succeeded():
    t = tracker()
    feed(t, ob(T0, "RUNNING", progress=99))
    rec = closed(t.observe(ob(T0 + 10, "FINISH", progress=100, print_error=117473286)))
    assert rec.outcome == "success" and rec.error_code is None and rec.failure_reason is None


def test_idle_or_slicing_without_an_end_state_is_unknown():
    for state in ("IDLE", "SLICING"):
        t = tracker()
        feed(t, ob(T0, "RUNNING", progress=40), ob(T0 + 30, "RUNNING", progress=41))
        rec = closed(t.observe(ob(T0 + 31, state, job=None, file=None)))
        assert rec.outcome == "unknown" and rec.ended_at == T0 + 30  # when we last saw it run


def test_a_print_that_fails_before_it_runs_is_recorded():
    t = tracker()
    feed(t, ob(T0, "IDLE", job=None, file=None))
    out = t.observe(ob(T0 + 1, "FAILED", job="big", print_error=117473286))
    assert kinds(out) == ["open", "close"]
    assert out[1].record.outcome == "failed" and out[1].record.duration_s == 0
    # A FAILED screen that stays is not a new failure every time.
    assert feed(t, ob(T0 + 2, "FAILED", job="big", print_error=117473286)) == []
    # ... nor is one seen first after a connect.
    t2 = tracker()
    assert feed(t2, ob(T0, "FAILED", print_error=117473286)) == []


def test_init_and_unknown_states_decide_nothing_for_an_hour():
    t = tracker()
    feed(t, ob(T0, "RUNNING", progress=40))
    for state in ("INIT", "CALIBRATING_X", "", "running"):
        assert t.observe(ob(T0 + 10, state)) == []
    assert t.record is not None
    # It comes back printing: the same record.
    back = t.observe(ob(T0 + 20, "RUNNING", progress=41))
    assert kinds(back) == ["update"] and back[0].record.uid == t.record.uid
    assert t.observe(ob(T0 + 30, "INIT")) == []
    out = t.observe(ob(T0 + 30 + UNKNOWN_STATE_LIMIT_S, "INIT"))
    assert closed(out).outcome == "unknown" and "INIT" in closed(out).failure_reason


def test_removed_printer_closes_its_record():
    t = tracker()
    assert t.removed(T0) == []
    feed(t, ob(T0, "RUNNING"))
    rec = closed(t.removed(T0 + 5))
    assert rec.outcome == "unknown" and rec.failure_reason == REASON_REMOVED


# --- offline, reconnect, restart -------------------------------------------------------------------


def test_nothing_is_decided_while_the_link_is_down():
    t = tracker()
    feed(t, ob(T0, "RUNNING", progress=10))
    for link in ("offline", "connecting", "auth_failed", "tls_mismatch"):
        # The view still shows stale values; they must not close anything.
        assert t.observe(ob(T0 + 5, "FINISH", link=link)) == []
        assert t.observe(ob(T0 + 5, "IDLE", link=link, report=False)) == []
    assert t.record is not None and t.record.outcome == "running"


def test_after_a_reconnect_only_a_full_report_decides():
    t = tracker()
    feed(t, ob(T0, "RUNNING", progress=10, remaining_s=600))
    t.observe(ob(T0 + 1, "RUNNING", link="offline"))
    # Connected again. The first delta merges into stale state: it shows what was, not what is.
    assert t.observe(ob(T0 + 500, "RUNNING", full=False, progress=10)) == []
    assert t.observe(ob(T0 + 501, "RUNNING", report=False)) == []  # a link-only change
    assert not t.watching  # so the history service observes every report until the full one
    # The pushall answer: it finished meanwhile.
    rec = closed(t.observe(ob(T0 + 5002, "FINISH", progress=100)))
    assert rec.outcome == "success" and t.watching
    assert rec.ended_at == T0 + 600  # due at our last sight (remaining 600 s), before now
    t2 = tracker()
    feed(t2, ob(T0, "RUNNING", progress=10, remaining_s=600), ob(T0 + 1, "RUNNING", link="offline"))
    assert closed(t2.observe(ob(T0 + 302, "FINISH"))).ended_at == T0 + 302  # early: never after now


def test_a_printer_that_never_sends_a_full_report_is_decided_after_a_while():
    t = tracker()
    feed(t, ob(T0, "RUNNING", progress=10))
    t.observe(ob(T0 + 1, "RUNNING", link="offline"))
    assert t.observe(ob(T0 + 100, "FINISH", full=False)) == []
    assert t.observe(ob(T0 + 100 + FRESH_FALLBACK_S - 1, "FINISH", full=False, report=False)) == []
    out = t.observe(ob(T0 + 100 + FRESH_FALLBACK_S, "FINISH", full=False, report=False))
    assert closed(out).outcome == "success"


def _restarted(**fields: Any) -> PrintTracker:
    """A tracker after a daemon restart: the open record comes from the database."""
    rec = PrintRecord(
        uid="f" * 32,
        printer_id="x1c",
        started_at=T0,
        job="cube",
        file=GCODE,
        plate=2,
        state="RUNNING",
        progress=50,
        layers=25,
        total_layers=50,
        key=JobKey(job="cube", file=GCODE),
        last_seen_at=T0 + 1000,
        remaining_s=1000,
        id=7,
    )
    return tracker(dataclasses.replace(rec, **fields))


def test_restart_mid_print_resumes_the_same_record():
    t = _restarted()
    assert t.observe(ob(T0 + 1100, "RUNNING", link="connecting", report=False)) == []
    out = t.observe(ob(T0 + 1200, "RUNNING", progress=62, layer=31))
    assert kinds(out) == ["update"] and out[0].urgent
    assert out[0].record.uid == "f" * 32 and out[0].record.id == 7 and out[0].record.progress == 62
    rec = closed(t.observe(ob(T0 + 2000, "FINISH", progress=100, layer=50)))
    assert rec.uid == "f" * 32 and rec.outcome == "success" and rec.ended_at == T0 + 2000


def test_restart_after_the_print_finished_closes_it_as_success():
    t = _restarted()
    rec = closed(t.observe(ob(T0 + 9000, "FINISH", progress=100, file=None, key=JobKey(job="cube"))))
    assert rec.uid == "f" * 32 and rec.outcome == "success"
    assert rec.ended_at == T0 + 2000  # last seen + remaining, not the time we came back


def test_restart_after_a_failure_or_cancel_closes_with_that_outcome():
    t = _restarted()
    rec = closed(t.observe(ob(T0 + 9000, "FAILED", print_error=PRINT_ERROR_CANCELLED)))
    assert rec.outcome == "cancelled" and rec.ended_at == T0 + 1000
    t = _restarted()
    assert closed(t.observe(ob(T0 + 9000, "FAILED", print_error=117473286))).outcome == "failed"


def test_restart_to_an_idle_printer_is_unknown_not_watching():
    t = _restarted()
    rec = closed(t.observe(ob(T0 + 9000, "IDLE", job=None, file=None, key=JobKey())))
    assert rec.outcome == "unknown" and rec.failure_reason == REASON_NOT_WATCHING
    assert rec.ended_at == T0 + 1000 and rec.duration_s == 1000


def test_restart_to_another_job_closes_the_old_one_and_opens_the_new_one():
    t = _restarted()
    out = t.observe(ob(T0 + 9000, "RUNNING", job="vase", file="/data/Metadata/plate_1.gcode", progress=5))
    assert kinds(out) == ["close", "open"]
    assert out[0].record.outcome == "unknown" and out[0].record.failure_reason == REASON_NOT_WATCHING
    assert out[1].record.job == "vase" and out[1].record.uid != "f" * 32
    # Another job's FINISH: the old record ended unseen; nothing new is invented.
    t = _restarted()
    out = t.observe(ob(T0 + 9000, "FINISH", job="vase", file=None))
    assert kinds(out) == ["close"] and out[0].record.outcome == "unknown"


def test_restart_to_the_same_file_printed_again_is_a_new_record():
    t = _restarted()
    out = t.observe(ob(T0 + 9000, "RUNNING", progress=20, layer=10))
    assert kinds(out) == ["close", "open"]
    assert out[0].record.outcome == "unknown" and out[1].record.progress == 20


def test_identity_compares_only_what_both_sides_know():
    a = JobKey(job="cube", file=GCODE, task_id="1")
    assert not a.conflicts(JobKey(job="cube"))  # a P1S clears gcode_file at FINISH
    assert not a.conflicts(JobKey())
    assert a.conflicts(JobKey(job="cube", task_id="2"))
    assert JobKey(job="cube").merged(a) == a
    assert JobKey.from_json(orjson.loads(orjson.dumps(a.to_json()))) == a
    assert (
        JobKey.from_json("junk") == JobKey()
        and JobKey.from_json({"task_id": "0", "start_time": 5}) == JobKey()
    )


# --- what the dispatcher announces -----------------------------------------------------------------

PLAN = (
    FilamentSlot(slot=2, type="PETG", color="#FFFFFFFF", grams=40.0, meters=13.2),
    FilamentSlot(slot=5, type="PLA", color=None, grams=10.0, meters=3.3),
)


def test_an_expected_print_gives_its_record_the_queue_metadata():
    t = tracker()
    exp = ExpectedPrint(job="cube", file="cube.3mf", plate=2, filament=PLAN, thumbnail="ab12", queue_job_id=9)
    assert t.expect(exp, T0) == []
    rec = t.observe(ob(T0 + 5, "PREPARE"))[0].record
    assert (rec.file, rec.plate, rec.thumbnail, rec.queue_job_id) == ("cube.3mf", 2, "ab12", 9)
    assert rec.filament == PLAN
    trays = (FilamentSlot(5, "PLA", "#000000FF"), FilamentSlot(254, "TPU", "#FF0000FF"))
    upd = t.observe(ob(T0 + 60, "RUNNING", progress=50, trays=trays))[0].record
    # Planned slots keep their numbers and gain the colour the AMS shows; an extra tray is added.
    assert upd.filament == (
        PLAN[0],
        FilamentSlot(5, "PLA", "#000000FF", 10.0, 3.3),
        FilamentSlot(254, "TPU", "#FF0000FF"),
    )
    # It failed half-way: the plan's grams are scaled to the progress reached.
    rec = closed(t.observe(ob(T0 + 90, "FAILED", print_error=117473286, progress=50)))
    assert [s.grams for s in rec.filament] == [20.0, 5.0, None]
    assert rec.file == "cube.3mf" and rec.queue_job_id == 9


def test_an_announcement_after_the_print_showed_up_still_applies():
    t = tracker()
    t.observe(ob(T0, "PREPARE"))
    (upd,) = t.expect(ExpectedPrint(job="cube", queue_job_id=3), T0 + 2)
    assert upd.kind == "update" and upd.urgent and upd.record.queue_job_id == 3
    # A second announcement does not re-label the running print.
    assert t.expect(ExpectedPrint(job="cube", queue_job_id=4), T0 + 3) == []


def test_an_expected_print_that_does_not_match_or_expired_is_not_used():
    t = tracker()
    t.expect(ExpectedPrint(job="other", queue_job_id=1), T0)
    assert t.observe(ob(T0 + 1, "RUNNING"))[0].record.queue_job_id is None
    t = tracker()
    t.expect(ExpectedPrint(job="cube", queue_job_id=1, ttl_s=60), T0)
    assert t.observe(ob(T0 + 61, "RUNNING"))[0].record.queue_job_id is None
    # Consumed once: the next print is not labelled with the same queue job.
    t = tracker()
    t.expect(ExpectedPrint(job="cube", queue_job_id=1), T0)
    feed(t, ob(T0 + 1, "RUNNING"), ob(T0 + 2, "FINISH"))
    assert t.observe(ob(T0 + 3, "PREPARE"))[0].record.queue_job_id is None


def test_trays_seen_during_the_print_become_the_filament_list():
    t = tracker()
    t.observe(ob(T0, "PREPARE", trays=(FilamentSlot(0, "PLA", "#111111FF"),)))  # last print's tray
    t.observe(ob(T0 + 1, "RUNNING", trays=(FilamentSlot(1, "PLA", "#FFFFFFFF"),)))
    t.observe(ob(T0 + 2, "RUNNING", trays=(FilamentSlot(129, "PETG", "#000000FF"),)))
    rec = closed(t.observe(ob(T0 + 3, "FINISH")))
    assert rec.filament == (FilamentSlot(1, "PLA", "#FFFFFFFF"), FilamentSlot(129, "PETG", "#000000FF"))


# --- observations from real reports ----------------------------------------------------------------


def _state_from(fixture: str) -> BambuState:
    s = BambuState("x1", "X1 left", serial="00M09A000000001")
    s.set_link("connected")
    s.apply_message(load_fixture(fixture), now=T0)
    return s


def test_observe_reads_a_real_running_report():
    s = _state_from("x1_pushall_running_hms")
    o = observe(s.view(), s.identity, T0, report=True, full=s.raw.get("msg") == 0)
    assert o.link == "connected" and o.state == "RUNNING" and o.full
    assert o.job == "CyberBrick Gridfinity Organizer Box" and o.file == "/data/Metadata/plate_2.gcode"
    assert o.progress == 22 and o.layer == 2 and o.total_layers == 37
    assert o.key.task_id == "724977923" and o.key.subtask_id == "724977924" and o.key.job_id == "378996136"
    assert o.hms and o.hms[0][0] == "0C00_0300_0003_0007"
    assert plate_of(o.file) == 2
    rec = tracker().observe(o)[0].record
    assert rec.plate == 2 and rec.hms == ("0C00_0300_0003_0007",)


def test_observe_reads_trays_and_the_finish_of_a_real_x1c():
    s = _state_from("x1c_pushall_finish_multi_ams")
    o = observe(s.view(), s.identity, T0, report=True)
    assert o.state == "FINISH" and o.progress == 100
    active = [t for u in s.view()["ams"] for t in u["trays"] if t["active"]]
    assert len(o.trays) == len(active) + (1 if s.view()["external_spool"]["active"] else 0)
    for tray in o.trays:
        assert tray.slot is not None and 0 <= tray.slot <= 254


def test_observe_never_raises_on_junk():
    views: list[Any] = [
        None,
        1,
        "x",
        [],
        {"print": 5},
        {"print": {"state": ["RUNNING"], "progress": "lots", "job": 7}},
        {
            "link": {"state": 7},
            "ams": [1, {"unit": "a", "trays": "no"}],
            "hms": [{"code": 1}],
            "external_spool": 3,
        },
    ]
    # Junk where the identity comes from: the state folding parses it to nothing.
    junk = BambuState("x1", "X1 left")
    junk.apply_message(
        {
            "print": {
                "command": "push_status",
                "msg": 0,
                "print_error": "bad",
                "task_id": {"x": 1},
                "gcode_start_time": "soon",
            }
        }
    )
    for view in views:
        for identity in (NO_IDENTITY, None, junk.identity):
            o = observe(view, identity, T0)  # type: ignore[arg-type]
            assert o.link == "offline" and o.state is None and o.job is None
            assert o.progress is None and o.print_error is None and o.key == JobKey() and o.trays == ()


# --- invariants over any sequence ------------------------------------------------------------------

_states = st.sampled_from(
    ["IDLE", "PREPARE", "RUNNING", "PAUSE", "FINISH", "FAILED", "SLICING", "INIT", "?", None]
)
_inputs = st.lists(
    st.tuples(
        st.sampled_from(["obs", "obs", "obs", "obs", "stop", "expect", "offline"]),
        _states,
        st.sampled_from(["a", "b", None]),
        st.integers(0, 100),
        st.booleans(),
        st.sampled_from([0, PRINT_ERROR_CANCELLED, 117473286]),
        st.floats(0, 4000),
    ),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(_inputs)
def test_any_sequence_keeps_one_record_per_print(inputs):
    t = tracker()
    now = T0
    open_uid: str | None = None
    seen_closed: set[str] = set()
    for kind, state, job, progress, full, err, dt in inputs:
        now += dt
        if kind == "stop":
            actions = t.command("stop", "success", now)
        elif kind == "expect":
            actions = t.expect(ExpectedPrint(job=job or "a", queue_job_id=1), now)
        elif kind == "offline":
            actions = t.observe(ob(now, state, link="offline", job=job))
        else:
            actions = t.observe(ob(now, state, job=job, progress=progress, full=full, print_error=err))
        for a in actions:
            rec = a.record
            assert rec.outcome in ("running", "success", "failed", "cancelled", "unknown")
            if a.kind == "open":
                assert open_uid is None, "a second record opened while one was open"
                assert rec.uid not in seen_closed
                open_uid = rec.uid
            elif a.kind == "update":
                assert rec.uid == open_uid and rec.outcome == "running"
            elif a.kind == "close":
                assert rec.uid == open_uid and rec.outcome != "running"
                assert rec.ended_at is not None and rec.ended_at >= rec.started_at
                assert rec.duration_s == pytest.approx(rec.ended_at - rec.started_at, abs=1e-3)
                seen_closed.add(rec.uid)
                open_uid = None
            else:
                assert a.kind == "amend" and rec.uid in seen_closed and rec.outcome == "cancelled"
        assert (t.record.uid if t.record else None) == open_uid


def test_the_file_of_a_print_from_elsewhere_fills_grams_and_matches_ams_slots():
    t = tracker()
    rec = t.observe(ob(T0, "PREPARE"))[0].record
    t.observe(ob(T0 + 1, "RUNNING", trays=(FilamentSlot(6, "PETG", "#FFFFFFFF"),)))
    info = PrintFileInfo(
        file="/cache/cube.3mf",
        plate=2,
        filament=(
            FilamentSlot(None, "PETG", "#FFFFFFFF", 30.0, 10.0),
            FilamentSlot(None, "PLA", "#000000FF", 2.0, 0.7),
        ),
        thumbnail="a" * 64 + "-p2",
        total_layers=80,
    )
    assert t.enrich("other uid", info) == []
    (upd,) = t.enrich(rec.uid, info)
    assert upd.urgent and upd.record.file == "/cache/cube.3mf" and upd.record.thumbnail == "a" * 64 + "-p2"
    # The PETG already seen in slot 6 takes the slicer's grams; the PLA waits for its tray.
    assert upd.record.filament[0] == FilamentSlot(6, "PETG", "#FFFFFFFF", 30.0, 10.0)
    later = t.observe(ob(T0 + 2, "RUNNING", trays=(FilamentSlot(1, "pla", "#000000FF"),)))[0].record
    assert later.filament == (
        FilamentSlot(6, "PETG", "#FFFFFFFF", 30.0, 10.0),
        FilamentSlot(1, "PLA", "#000000FF", 2.0, 0.7),
    )
    # A tray of another colour is another slot, not the planned one.
    other = t.observe(ob(T0 + 3, "RUNNING", trays=(FilamentSlot(2, "PETG", "#FF0000FF"),)))[0].record
    assert other.filament[-1] == FilamentSlot(2, "PETG", "#FF0000FF")
    # The queue's own prints are labelled by its announcement, not by the file.
    q = tracker()
    q.expect(ExpectedPrint(job="cube", queue_job_id=5), T0)
    qrec = q.observe(ob(T0, "PREPARE"))[0].record
    assert q.enrich(qrec.uid, info) == []


# --- reports that only move progress ---------------------------------------------------------------


def test_a_report_that_only_moves_progress_changes_the_record_as_a_full_observation_would():
    full, quick = tracker(), tracker()
    for t in (full, quick):
        t.observe(ob(T0, "PREPARE", total_layers=50))
        t.observe(ob(T0 + 10, "RUNNING", progress=1, layer=1, total_layers=50, remaining_s=3000))
    for i in range(2, 40):
        now, fields = (
            T0 + 10 * i,
            {"progress": i, "layer": i, "total_layers": 50, "remaining_s": 3000 - 60 * i},
        )
        (upd,) = full.observe(ob(now, "RUNNING", **fields))
        assert upd.kind == "update" and not upd.urgent  # progress: a paced write
        rec = quick.progressed({"state": "RUNNING", "job": "cube", "file": GCODE, **fields}, now)
        assert rec is quick.record  # the tracker's own record, changed in place: no copy per report
        assert rec == full.record
    assert quick.record is not None and quick.record.progress == 39 and quick.record.layers == 39
    assert quick.record.last_seen_at == T0 + 390
    # The print's end is an observation again, and both trackers close the same record.
    end = ob(T0 + 400, "FINISH", progress=100, layer=50, total_layers=50, remaining_s=0)
    assert closed(quick.observe(end)) == closed(full.observe(end))


def test_progress_alone_is_not_folded_in_when_the_tracker_must_decide():
    assert tracker().progressed({"progress": 5}, T0) is None  # no record open
    t = tracker()
    t.observe(ob(T0, "RUNNING", progress=5))
    t.observe(ob(T0 + 1, "RUNNING", link="offline"))
    assert t.progressed({"progress": 6}, T0 + 2) is None  # not watching: a reconnect reconciles first
    t2 = tracker()
    t2.observe(ob(T0, "RUNNING", progress=5))
    t2.observe(ob(T0 + 1, "INIT"))
    assert t2.progressed({"progress": 6}, T0 + 2) is None  # an odd state has its own clock
    # In PREPARE progress and layers may still be the last print's: only last_seen_at moves.
    t3 = tracker()
    t3.observe(ob(T0, "PREPARE"))
    rec = t3.progressed({"progress": 100, "layer": 480}, T0 + 5)
    assert rec is not None and rec.progress is None and rec.layers is None and rec.last_seen_at == T0 + 5


def test_a_print_announced_by_print_now_needs_no_file_but_one_from_elsewhere_does():
    info = PrintFileInfo(file="/cache/cube.3mf", filament=(FilamentSlot(None, "PLA", None, 3.0, 1.0),))
    elsewhere = tracker()
    rec = elsewhere.observe(ob(T0, "PREPARE"))[0].record
    assert elsewhere.needs_file(rec.uid) and not elsewhere.needs_file("other uid")
    # Print-now: no queue job, but an announcement carrying what the file says.
    t = tracker()
    t.expect(ExpectedPrint(job="cube", file="/cache/cube.3mf", filament=(FilamentSlot(1, "PLA"),)), T0)
    rec = t.observe(ob(T0, "PREPARE"))[0].record
    assert rec.queue_job_id is None and rec.file == "/cache/cube.3mf"
    assert not t.needs_file(rec.uid) and t.enrich(rec.uid, info) == []
    # An announcement that comes just after the print showed up labels it too.
    late = tracker()
    rec = late.observe(ob(T0, "PREPARE"))[0].record
    late.expect(ExpectedPrint(job="cube", file="/cache/cube.3mf"), T0 + 1)
    assert not late.needs_file(rec.uid)
    # The next print, nobody announced: its file is read again.
    closed(late.observe(ob(T0 + 2, "FINISH")))
    nxt = late.observe(ob(T0 + 3, "PREPARE", job="vase"))[0].record
    assert late.needs_file(nxt.uid)
