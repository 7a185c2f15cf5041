"""Dispatch decisions (jobs/dispatch.py): every rule, the reasons a user reads, balancing, order,
targets, pause, and the ams_mapping sent with project_file."""

from __future__ import annotations

from dataclasses import replace

import pytest

from bambu_edge.files.meta import FilamentUse, PlateMeta, PrintFileMeta
from bambu_edge.jobs import dispatch
from bambu_edge.jobs.dispatch import PrinterSnapshot, Tray, WaitingJob, decide
from bambu_edge.printers.bambu.protocol import tray_index
from bambu_edge.printers.bambu.report import BambuState
from bambu_edge.printers.virtual import initial_report

WHITE_PETG = FilamentUse(1, "PETG", "#FFFFFFFF")
BLACK_PLA = FilamentUse(1, "PLA", "#000000FF")


def meta(model: str | None = "P1S", filaments=(BLACK_PLA,), nozzle: float | None = 0.4, plates: int = 1):
    return PrintFileMeta(
        kind="3mf",
        title="cube",
        printer_model=model,
        nozzle_diameter=nozzle,
        plates=tuple(
            PlateMeta(
                i, f"Metadata/plate_{i}.gcode", prediction_s=3600, layers=100, filaments=tuple(filaments)
            )
            for i in range(1, plates + 1)
        ),
    )


def printer(pid: str = "p1s", name: str | None = None, **kw) -> PrinterSnapshot:
    base = dict(
        id=pid,
        name=name or pid.upper(),
        model="P1S",
        nozzle_diameter=0.4,
        link_state="connected",
        gcode_state="IDLE",
        bed_clear=True,
        trays=(Tray(0, "PLA", "#000000FF", 100), Tray(1, "PETG", "#F5F5F5FF", 80)),
    )
    base.update(kw)
    return PrinterSnapshot(**base)


def job(jid: int = 1, **kw) -> WaitingJob:
    base = dict(id=jid, meta=meta(), plate=1)
    base.update(kw)
    return WaitingJob(**base)


def started(decision) -> list[tuple[int, str]]:
    return [(s.job_id, s.printer_id) for s in decision.starts]


# --- printer rules ----------------------------------------------------------------------------------


def test_a_free_compatible_printer_takes_the_job():
    d = decide([job()], [printer()])
    assert started(d) == [(1, "p1s")]
    assert d.reasons == {}
    assert d.printers["p1s"].ready and d.printers["p1s"].reason is None


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"link_state": "offline"}, "offline"),
        ({"link_state": "auth_failed"}, "access code rejected"),
        ({"gcode_state": None}, "no status report yet"),
        ({"gcode_state": "RUNNING"}, "printing"),
        ({"gcode_state": "PREPARE"}, "preparing a print"),
        ({"gcode_state": "PAUSE"}, "paused mid-print"),
        ({"gcode_state": "SLICING"}, "busy (SLICING)"),
        ({"run_in_flight": True}, "starting a queued print"),
        ({"bed_clear": False}, "bed not marked clear"),
    ],
)
def test_a_printer_that_is_not_ready_says_why(changes, reason):
    d = decide([job()], [printer(name="X1C left", **changes)])
    assert d.starts == ()
    assert d.reasons[1] == (f"X1C left: {reason}",)
    assert d.printers["p1s"].ready is False and d.printers["p1s"].reason == reason


@pytest.mark.parametrize("state", ["IDLE", "FINISH", "FAILED"])
def test_idle_finished_and_failed_printers_are_free(state):
    assert started(decide([job()], [printer(gcode_state=state)])) == [(1, "p1s")]


def test_model_must_match_the_slice():
    d = decide([job()], [printer("a1", "A1", model="A1")])
    assert d.starts == ()
    assert d.reasons[1] == ("A1: sliced for P1S, this is an A1",)


def test_model_not_known_yet():
    d = decide([job()], [printer(model=None)])
    assert d.reasons[1] == ("P1S: model not known yet",)


def test_nozzle_must_match():
    d = decide([job(meta=meta(nozzle=0.6))], [printer()])
    assert d.reasons[1] == ("P1S: sliced for a 0.6 mm nozzle, this has 0.4 mm",)
    d = decide([job()], [printer(nozzle_diameter=None)])
    assert d.reasons[1] == ("P1S: has not reported its nozzle size",)


def test_plate_nozzle_wins_over_file_nozzle():
    m = meta(nozzle=0.4)
    m = replace(m, plates=(replace(m.plates[0], nozzle_diameter=0.2),))
    assert decide([job(meta=m)], [printer()]).reasons[1] == (
        "P1S: sliced for a 0.2 mm nozzle, this has 0.4 mm",
    )


def test_filament_must_be_loaded():
    d = decide([job(meta=meta(filaments=[FilamentUse(1, "PETG", "#000000FF")]))], [printer()])
    assert d.reasons[1] == ("P1S: no black PETG loaded",)


def test_not_ready_and_missing_filament_are_both_said():
    m = meta(filaments=[FilamentUse(1, "PETG", "#FF0000FF")])
    d = decide([job(meta=m)], [printer(bed_clear=False)])
    assert d.reasons[1] == ("P1S: bed not marked clear, no red PETG loaded",)


def test_reasons_name_every_printer_in_plain_words():
    fleet = [
        printer("x1c-left", "X1C left", bed_clear=False),
        printer("p1s", "P1S", trays=(Tray(0, "PLA", "#000000FF"),)),
        printer("a1", "A1", model="A1"),
    ]
    d = decide([job(meta=meta(filaments=[WHITE_PETG]))], fleet)
    assert d.starts == ()
    assert d.reasons[1] == (
        "A1: sliced for P1S, this is an A1",
        "P1S: no white PETG loaded",
        "X1C left: bed not marked clear",
    )


def test_type_is_case_insensitive_and_colour_has_a_tolerance():
    m = meta(filaments=[FilamentUse(1, "petg", "#FFFFFF")])
    d = decide([job(meta=m)], [printer()])  # tray 1 holds PETG #F5F5F5
    assert started(d) == [(1, "p1s")]
    assert d.starts[0].ams_mapping == (1,)
    grey = meta(filaments=[FilamentUse(1, "PETG", "#A0A0A0")])
    assert decide([job(meta=grey)], [printer()]).reasons[1] == ("P1S: no grey PETG loaded",)


def test_filament_without_colour_matches_on_type():
    m = meta(filaments=[FilamentUse(1, "PETG", None)])
    assert decide([job(meta=m)], [printer()]).starts[0].ams_mapping == (1,)


# --- ams_mapping ------------------------------------------------------------------------------------


def test_ams_mapping_is_per_filament_global_tray_indices():
    trays = (
        Tray(tray_index(0, 2), "PLA", "#000000FF"),
        Tray(tray_index(1, 3), "PETG", "#FFFFFFFF"),
        Tray(tray_index(128, 0), "PA-CF", "#000000FF"),
    )
    m = meta(
        filaments=[
            FilamentUse(1, "PETG", "#FFFFFF"),
            FilamentUse(2, "PLA", "#000000"),
            FilamentUse(4, "PA-CF", "#000000"),
        ]
    )
    d = decide([job(meta=m)], [printer(trays=trays)])
    start = d.starts[0]
    # index = filament id - 1; AMS 1 slot 3 = 7; AMS HT 128 = 128; filament 3 unused = -1
    assert start.ams_mapping == (7, 2, -1, 128)
    assert start.use_ams is True
    assert [(s.filament.id, s.tray.index) for s in start.sources] == [(1, 7), (2, 2), (4, 128)]


def test_distinct_trays_preferred_and_the_closest_colour_wins():
    trays = (Tray(0, "PLA", "#FFFFFFFF"), Tray(1, "PLA", "#F8F8F8FF"), Tray(2, "PLA", "#F0F0F0FF"))
    m = meta(filaments=[FilamentUse(1, "PLA", "#F0F0F0"), FilamentUse(2, "PLA", "#F0F0F0")])
    assert decide([job(meta=m)], [printer(trays=trays)]).starts[0].ams_mapping == (2, 1)


def test_two_filaments_may_share_one_tray_when_nothing_else_matches():
    m = meta(filaments=[FilamentUse(1, "PLA", "#000000"), FilamentUse(2, "PLA", "#000000")])
    assert decide([job(meta=m)], [printer()]).starts[0].ams_mapping == (0, 0)


def test_external_spool_without_ams():
    p = printer(trays=(), external=Tray(254, "PLA", "#000000FF"))
    start = decide([job()], [p]).starts[0]
    assert start.ams_mapping == (254,) and start.use_ams is False


def test_single_filament_falls_back_to_the_external_spool():
    p = printer(trays=(Tray(0, "PLA", "#FF0000FF"),), external=Tray(254, "PLA", "#000000FF"))
    start = decide([job()], [p]).starts[0]
    assert start.ams_mapping == (254,) and start.use_ams is False


def test_use_ams_off_needs_the_external_spool():
    p = printer(external=None)
    d = decide([job(use_ams=False)], [p])
    assert d.reasons[1] == ("P1S: no black PLA loaded",)
    p = printer(external=Tray(254, "PLA", "#000000FF"))
    assert decide([job(use_ams=False)], [p]).starts[0].ams_mapping == (254,)


def test_several_filaments_without_ams():
    m = meta(filaments=[FilamentUse(1, "PLA", "#000000"), FilamentUse(2, "PLA", "#FFFFFF")])
    p = printer(trays=(), external=Tray(254, "PLA", "#000000FF"))
    assert decide([job(meta=m)], [p]).reasons[1] == ("P1S: needs an AMS for 2 filaments",)


def test_right_aligned_shape_is_one_constant_away():
    assert dispatch.shape_ams_mapping((7, 2)) == [7, 2]
    assert dispatch.shape_ams_mapping((7, 2), dispatch.AMS_MAPPING_RIGHT_ALIGNED) == [-1, -1, -1, 7, 2]


def test_snapshot_from_a_real_report_with_ams_ht_and_external_spool():
    state = BambuState("x1c", "X1C", "00M00A000000001")
    state.apply_message({"print": {**initial_report("X1C"), "command": "push_status", "msg": 0}})
    state.set_link("connected")
    snap = PrinterSnapshot.from_view(state.view(), bed_clear=True)
    assert snap.model == "X1C" and snap.nozzle_diameter == 0.4 and snap.gcode_state == "IDLE"
    by_index = {t.index: t for t in snap.trays}
    assert by_index[5].type == "ABS" and by_index[5].color == "#489FDFFF"  # AMS 1, slot 1
    assert by_index[128].type == "PA-CF"  # AMS HT unit 128
    assert 8 not in by_index or not by_index[8].loaded  # AMS 2 slot 0 is empty
    m = PrintFileMeta(
        kind="3mf",
        printer_model="X1C",
        nozzle_diameter=0.4,
        plates=(
            PlateMeta(
                1,
                "Metadata/plate_1.gcode",
                filaments=(FilamentUse(1, "PA-CF", "#000000"), FilamentUse(2, "ABS", "#4A9FDF")),
            ),
        ),
    )
    assert decide([job(meta=m)], [snap]).starts[0].ams_mapping == (128, 5)


# --- jobs: order, balance, target, pause ----------------------------------------------------------


def test_priority_then_position():
    jobs = [job(1, position=1), job(2, position=2, priority=5), job(3, position=0)]
    d = decide(jobs, [printer()])
    assert started(d) == [(2, "p1s")]
    assert d.reasons[3] == ("P1S: taken by job #2, ahead in the queue",)
    assert d.reasons[1] == ("P1S: taken by job #2, ahead in the queue",)
    d = decide([job(1, position=1), job(3, position=0)], [printer()])
    assert started(d) == [(3, "p1s")]


def test_load_is_balanced_across_eligible_printers():
    fleet = [printer("a", load=3), printer("b", load=1), printer("c", load=2)]
    assert started(decide([job()], fleet)) == [(1, "b")]
    d = decide([job(1), job(2), job(3)], fleet)
    assert started(d) == [(1, "b"), (2, "c"), (3, "a")]


def test_copies_run_in_parallel_on_several_printers():
    fleet = [printer("a"), printer("b"), printer("c", bed_clear=False)]
    d = decide([job(copies_left=3)], fleet)
    assert sorted(started(d)) == [(1, "a"), (1, "b")]
    assert d.reasons[1] == ("C: bed not marked clear",)


def test_target_is_honoured():
    fleet = [printer("a"), printer("b")]
    assert started(decide([job(target="b")], fleet)) == [(1, "b")]
    d = decide([job(target="b")], [printer("a"), printer("b", bed_clear=False)])
    assert d.starts == () and d.reasons[1] == ("B: bed not marked clear",)
    assert decide([job(target="zz")], fleet).reasons[1] == ("the target printer 'zz' is not configured",)


def test_a_file_that_names_no_printer_needs_a_target():
    m = meta(model=None)
    assert decide([job(meta=m)], [printer()]).reasons[1] == (
        "the file does not say which printer it was sliced for; choose a target printer",
    )
    assert started(decide([job(meta=m, target="p1s")], [printer()])) == [(1, "p1s")]


def test_paused_queue_starts_nothing():
    d = decide([job()], [printer()], paused=True)
    assert d.starts == ()
    assert d.reasons[1] == ("the queue is paused",)
    assert d.printers["p1s"].ready  # the printer itself is ready


def test_backoff_after_a_failed_attempt():
    j = job(retry_at=130.0, last_error="upload failed")
    assert decide([j], [printer()], now=100.0).reasons[1] == ("trying again in 30 s after: upload failed",)
    assert started(decide([j], [printer()], now=131.0)) == [(1, "p1s")]


def test_plate_problems():
    assert decide([job(plate=2)], [printer()]).reasons[1] == ("the file has no plate 2",)
    m = meta()
    m = replace(m, plates=(replace(m.plates[0], gcode_path=None),))
    assert decide([job(meta=m)], [printer()]).reasons[1] == ("plate 1 is not sliced",)


def test_jobs_with_nothing_left_to_place_are_ignored():
    assert decide([job(copies_left=0)], [printer()]) == dispatch.Decision(
        (), {}, {"p1s": dispatch.readiness(printer())}
    )


def test_no_printers():
    assert decide([job()], []).reasons[1] == ("no printers are configured",)


def test_colour_names():
    assert dispatch.color_name("#FFFFFFFF") == "white"
    assert dispatch.color_name("#000000") == "black"
    assert dispatch.color_name("#C12E1FFF") == "red"
    assert dispatch.color_name("#FFFFFF00") == "clear"
    assert dispatch.color_name("nonsense") is None
    assert dispatch.filament_words(FilamentUse(1, None, None)) == "filament"


# --- power: switched-off printers are switched on for a job (issue 11) ------------------------------


def off(pid: str = "p1s", **kw) -> PrinterSnapshot:
    return printer(pid, link_state="offline", gcode_state=None, power_off=True, **kw)


def test_a_switched_off_printer_is_woken_for_a_job_no_ready_printer_takes():
    d = decide([job()], [off()])
    assert started(d) == [] and d.wake == {"p1s": 1}
    assert d.printers["p1s"].reason == dispatch.SWITCHED_OFF
    assert d.reasons[1] == (f"P1S: {dispatch.SWITCHED_OFF}",)


def test_no_printer_is_woken_while_a_ready_one_takes_the_job():
    d = decide([job()], [off("a"), printer("b")])
    assert started(d) == [(1, "b")] and d.wake == {}


def test_one_printer_woken_per_missing_copy():
    d = decide([job(copies_left=2)], [off("a"), off("b"), off("c"), printer("d")])
    assert started(d) == [(1, "d")] and d.wake == {"a": 1}


def test_a_woken_printer_that_came_online_gets_the_job():
    woken = printer(power_off=False)
    assert started(decide([job()], [woken])) == [(1, "p1s")]


@pytest.mark.parametrize(
    "kw",
    [
        {"model": "A1"},  # known to be another model
        {"nozzle_diameter": 0.6},
        {"trays": (Tray(0, "PETG", "#FF0000FF", 100),)},  # known not to hold black PLA
        {"bed_clear": False},  # nobody cleared its bed: a job could not start anyway
        {"run_in_flight": True},
    ],
)
def test_a_switched_off_printer_that_could_not_take_the_job_stays_off(kw):
    assert decide([job()], [off(**kw)]).wake == {}


def test_what_an_off_printer_never_reported_does_not_keep_it_off():
    d = decide([job()], [off(model=None, nozzle_diameter=None, trays=())])
    assert d.wake == {"p1s": 1}


def test_an_offline_printer_without_power_control_is_not_woken_and_a_paused_queue_wakes_nothing():
    assert decide([job()], [printer(link_state="offline", gcode_state=None)]).wake == {}
    assert decide([job()], [off()], paused=True).wake == {}
    assert decide([job(target="other")], [off(), off("other", model="A1")]).wake == {}
