"""The Moonraker protocol library against every real payload in shared/fixtures/moonraker (the
Moonraker documentation's examples), and its pure rules: state words, commands, history, webcams,
and the queue's decisions for Klipper printers."""

from __future__ import annotations

import json
import os
import random
import re
from pathlib import Path
from typing import Any

import pytest

from bambu_edge.files.meta import FilamentUse, PlateMeta, PrintFileMeta
from bambu_edge.jobs.dispatch import PrinterSnapshot, WaitingJob, decide
from bambu_edge.printers.base import CommandError
from bambu_edge.printers.moonraker import commands, records, rpc
from bambu_edge.printers.moonraker.files import parse_directory
from bambu_edge.printers.moonraker.link import subscription
from bambu_edge.printers.moonraker.settings import MoonrakerSettings
from bambu_edge.printers.moonraker.status import (
    FileInfo,
    KlippyStatus,
    Materials,
    MoonrakerState,
    StatusUpdate,
)
from bambu_edge.store.materials import check_materials
from tests.conftest import SHARED_FIXTURES

# A worktree beside the main checkout finds shared/ through BAMBU_EDGE_SHARED_FIXTURES.
FIXTURES = Path(os.environ.get("BAMBU_EDGE_SHARED_FIXTURES", SHARED_FIXTURES)) / "moonraker"


def test_the_fixtures_are_there() -> None:
    assert len(list(FIXTURES.glob("*.json*"))) >= 30, f"no Moonraker fixtures in {FIXTURES}"


def load(name: str) -> Any:
    """A fixture; ``.jsonc`` ones are the docs' text with comments and trailing commas removed."""
    text = (FIXTURES / name).read_text()
    if name.endswith(".jsonc"):
        text = re.sub(r"//[^\n]*", "", text)
        text = re.sub(r",(\s*[}\]])", r"\1", text)
    return json.loads(text)


def wire(result_fixture: str, req_id: int = 7) -> bytes:
    """The docs show only ``result``; on the wire it comes wrapped."""
    return json.dumps({"jsonrpc": "2.0", "result": load(result_fixture), "id": req_id}).encode()


def ready_state(**kw: Any) -> MoonrakerState:
    s = MoonrakerState("voron", "Voron", **kw)
    s.apply_message(KlippyStatus("ready"))
    return s


# --- every fixture parses ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(p.name for p in FIXTURES.glob("notify_*")))
def test_every_notification_decodes(name: str) -> None:
    msg = rpc.decode((FIXTURES / name).read_bytes() if name.endswith(".json") else json.dumps(load(name)))
    assert isinstance(msg, rpc.Notification)
    assert msg.method == name.split(".")[0]
    assert isinstance(msg.params, list)


@pytest.mark.parametrize("name", sorted(p.name for p in FIXTURES.glob("*.response.json*")))
def test_every_response_decodes_and_folds_without_error(name: str) -> None:
    reply = rpc.decode(wire(name))
    assert isinstance(reply, rpc.Reply) and reply.id == 7 and reply.error is None
    assert reply.result == load(name)
    state = ready_state()
    state.apply_message(
        StatusUpdate(reply.result.get("status", {}) if isinstance(reply.result, dict) else {}, full=True)
    )
    assert state.view()["print"]["state"] in (None, "IDLE")


@pytest.mark.parametrize("name", sorted(p.name for p in FIXTURES.glob("*.request.json")))
def test_every_request_fixture_is_what_we_would_send(name: str) -> None:
    req = load(name)
    ours = json.loads(rpc.request(req["method"], req.get("params"), req["id"]))
    assert ours == req


def test_error_reply_keeps_moonrakers_message() -> None:
    reply = rpc.decode(b'{"jsonrpc":"2.0","error":{"code":400,"message":"Unknown command:\\"FOO\\""},"id":3}')
    assert isinstance(reply, rpc.Reply) and reply.error is not None
    assert (reply.error.code, reply.error.message) == (400, 'Unknown command:"FOO"')


@pytest.mark.parametrize("junk", [b"", b"[]", b"null", b"{", b'{"id":"x"}', b'{"method":5}', "\x00"])
def test_junk_frames_decode_to_nothing(junk: bytes | str) -> None:
    assert rpc.decode(junk) is None


# --- folding ------------------------------------------------------------------------------------------


def test_subscribe_result_then_delta_fixture() -> None:
    state = ready_state()
    state.apply_message(StatusUpdate(load("printer_objects_subscribe.response.jsonc")["status"], full=True))
    assert state.view()["print"]["speed_level"] == 2  # speed_factor 1 = Bambu's "standard"
    note = rpc.decode(json.dumps(load("notify_status_update.notification.jsonc")))
    assert isinstance(note, rpc.Notification)
    changes = state.apply_message(StatusUpdate(note.params[0]))
    assert state.objects["gcode_move"]["speed"] == 1500 and state.objects["toolhead"]["status"] == "Ready"
    assert state.objects["gcode_move"]["speed_factor"] == 1  # kept from the subscription: a delta merges
    assert "print" not in changes  # nothing the card shows changed


@pytest.mark.parametrize(
    ("klipper", "bambu", "error"),
    [
        ("standby", "IDLE", None),
        ("printing", "RUNNING", None),
        ("paused", "PAUSE", None),
        ("complete", "FINISH", None),
        ("cancelled", "FAILED", "cancelled"),
        ("error", "FAILED", "Move out of range: 300.000 0.000 0.200 [0.000]"),
    ],
)
def test_print_state_words_are_bambus(klipper: str, bambu: str, error: str | None) -> None:
    state = ready_state()
    state.apply_message(
        StatusUpdate(
            {"print_stats": {"state": klipper, "filename": "cube.gcode", "message": error or ""}}, full=True
        )
    )
    p = state.view()["print"]
    assert (p["state"], p["error"], p["file"], p["job"]) == (bambu, error, "cube.gcode", "cube")


def test_progress_remaining_layers_and_temperatures() -> None:
    state = ready_state()
    state.apply_message(
        StatusUpdate(
            {
                "print_stats": {
                    "state": "printing",
                    "filename": "parts/bracket.gcode",
                    "print_duration": 300.0,
                    "info": {"total_layer": 120, "current_layer": 30},
                },
                "virtual_sdcard": {"progress": 0.25},
                "extruder": {"temperature": 215.2, "target": 215.0},
                "heater_bed": {"temperature": 59.9, "target": 60.0},
                "heater_generic chamber": {"temperature": 40.1, "target": 45.0},
                "gcode_move": {"speed_factor": 1.66},
            },
            full=True,
        )
    )
    p = state.view()["print"]
    assert (p["progress"], p["layer"], p["total_layers"], p["speed_level"]) == (25, 30, 120, 4)
    assert p["remaining_s"] == 900  # no estimate yet: 300 s for a quarter
    state.apply_message(FileInfo("parts/bracket.gcode", estimated_time=2000.0, layer_count=120))
    assert state.view()["print"]["remaining_s"] == 1500  # the slicer's estimate, three quarters left
    t = state.view()["temps"]
    assert t == {
        "nozzle": {"current": 215.2, "target": 215.0},
        "bed": {"current": 59.9, "target": 60.0},
        "chamber": {"current": 40.1, "target": 45.0},
    }
    assert state.view()["model"] == "Klipper" and state.view()["ams"] == []


def test_klippy_shutdown_in_plain_words_and_back() -> None:
    state = ready_state()
    state.apply_message(
        StatusUpdate({"print_stats": {"state": "printing", "filename": "a.gcode"}}, full=True)
    )
    changes = state.apply_message(KlippyStatus("shutdown", "Heater extruder not heating at expected rate"))
    assert changes["print"]["state"] == "OFFLINE"
    assert state.view()["hms"] == [
        {
            "code": "klippy_shutdown",
            "severity": "error",
            "text": "Klipper has shut down: Heater extruder not heating at expected rate",
        }
    ]
    state.apply_message(KlippyStatus("disconnected"))
    assert "klipper service" in state.view()["hms"][0]["text"]
    state.apply_message(KlippyStatus("ready"))
    assert state.view()["hms"] == [] and state.view()["print"]["state"] == "RUNNING"


def test_materials_become_nozzle_and_spool() -> None:
    state = ready_state(materials=Materials(0.6, "PETG", "#FF8800FF"))
    v = state.view()
    assert v["nozzle"] == {"diameter": 0.6, "type": None}
    assert v["external_spool"]["type"] == "PETG" and v["external_spool"]["color"] == "#FF8800FF"
    state.apply_message(Materials())
    assert state.view()["external_spool"] is None


def test_folding_never_raises_on_junk() -> None:
    rng = random.Random(14)
    junk: list[Any] = [None, 1, -1.5, "x", [], {}, [1, {}], {"a": None}, float("nan"), True, "9" * 40]
    names = ["print_stats", "virtual_sdcard", "extruder", "heater_bed", "toolhead", "webhooks", "gcode_move"]
    fields = ["state", "filename", "progress", "temperature", "target", "info", "extruder", "speed_factor"]
    state = ready_state()
    for _ in range(2000):
        status = {rng.choice(names): {rng.choice(fields): rng.choice(junk)} for _ in range(rng.randint(0, 4))}
        if rng.random() < 0.1:
            status = rng.choice(junk)  # not even a mapping
        state.apply_message(StatusUpdate(status, full=rng.random() < 0.2))
        json.dumps(state.view())  # always serialisable


def test_subscription_asks_for_what_the_printer_has() -> None:
    objects = load("printer_objects_list.response.json")["objects"]
    sub = subscription([*objects, "extruder1", "temperature_sensor chamber", 5])
    assert "webhooks" in sub and "gcode_move" in sub
    assert sub.get("extruder1") == ["temperature", "target"]
    assert sub.get("temperature_sensor chamber") == ["temperature", "target"]
    assert all(isinstance(k, str) for k in sub)


# --- commands -----------------------------------------------------------------------------------------

SETTINGS = MoonrakerSettings("voron", "Voron", "127.0.0.1", light_power_device="chamber_light")


@pytest.mark.parametrize(("level", "pct"), [(1, 50), (2, 100), (3, 124), (4, 166)])
def test_speed_levels_are_m220(level: int, pct: int) -> None:
    assert commands.build("speed", {"level": level}, SETTINGS) == commands.Call(
        "printer.gcode.script", {"script": f"M220 S{pct}"}
    )


def test_job_control_and_print_use_moonrakers_methods() -> None:
    for action, method in (("pause", "pause"), ("resume", "resume"), ("stop", "cancel")):
        assert commands.build(action, {}, SETTINGS).method == f"printer.print.{method}"
    assert commands.build("print", {"path": "/cache/cube.gcode"}, SETTINGS) == commands.Call(
        "printer.print.start", {"filename": "cache/cube.gcode"}
    )
    start = load("printer_print_start.request.json")
    assert (
        commands.build("print", {"path": "/" + start["params"]["filename"]}, SETTINGS).params
        == start["params"]
    )


def test_light_is_a_power_device_or_macros() -> None:
    assert commands.build("light", {"on": False}, SETTINGS) == commands.Call(
        "machine.device_power.post", {"device": "chamber_light", "action": "off"}
    )
    macros = MoonrakerSettings("v", "V", "h", light_macro_on="LIGHTS_ON", light_macro_off="LIGHTS_OFF")
    assert commands.build("light", {"on": True}, macros).params == {"script": "LIGHTS_ON"}
    with pytest.raises(CommandError, match="no light configured"):
        commands.build("light", {"on": True}, MoonrakerSettings("v", "V", "h"))


@pytest.mark.parametrize(
    ("action", "params"),
    [
        ("speed", {"level": 5}),
        ("speed", {"level": True}),
        ("light", {"on": "yes"}),
        ("gcode", {"line": " "}),
        ("gcode", {"line": 5}),
        ("print", {}),
        ("launch", {}),
    ],
)
def test_bad_commands_are_refused_in_words(action: str, params: dict[str, Any]) -> None:
    with pytest.raises(CommandError) as e:
        commands.build(action, params, SETTINGS)
    assert e.value.code == "bad_request" and e.value.message


def test_gcode_lines_go_as_one_script() -> None:
    assert commands.build("gcode", {"line": "G28\r\nM104 S200\n"}, SETTINGS).params == {
        "script": "G28\nM104 S200"
    }


# --- history, webcams, files --------------------------------------------------------------------------


def test_history_list_fixture() -> None:
    jobs = records.history_jobs(load("server_history_list.response.jsonc"))
    assert len(jobs) == 1
    j = jobs[0]
    assert (j.job_id, j.filename, j.status) == ("000001", "test/history_test.gcode", "success")
    assert j.start_time == 1615764496.622146 and j.end_time == 1615764265.6493807
    assert j.filament_used_mm == 7.83 and j.print_duration_s == 18.37201827496756


def test_history_job_in_progress_is_left_to_the_tracker() -> None:
    note = load("notify_history_changed.notification.json")
    assert records.history_job(note["params"][0]["job"]) is None
    done = dict(note["params"][0]["job"], status="completed", end_time=1738673893.0)
    j = records.history_job(done)
    assert j is not None and j.filament_type == "PLA" and j.filament_weight_g == 5.23
    assert j.thumbnail == ".thumbs/calicat_0.3mm_PLA_MK3S_33m-400x300.png"  # the largest
    assert records.history_job(load("server_history_get_job.response.jsonc")["job"]) is not None


def test_webcams_fixture_resolves_relative_urls() -> None:
    cams = records.webcams(load("server_webcams_list.response.json"), "192.0.2.10")
    assert [c.name for c in cams] == ["testcam3", "tc2", "TestCam"]
    assert cams[0].stream_url == "http://camera.lan/webcam?action=stream"
    assert cams[2].stream_url == "http://192.0.2.10/webcam/?action=stream"
    assert not any(c.webrtc_only for c in cams)
    assert records.resolve_url("javascript:alert(1)", "h") is None
    assert records.resolve_url("webcam", "h") is None


def test_directory_listing_and_upload_reply() -> None:
    entries = parse_directory(
        {
            "dirs": [{"dirname": "parts", "modified": 1.0, "size": 4096}, {"dirname": ".thumbs"}],
            "files": [{"filename": "a.gcode", "size": 10, "modified": 2.0}, {"filename": "../x"}],
        },
        "/",
    )
    assert [(e.path, e.is_dir, e.size) for e in entries] == [("/parts", True, None), ("/a.gcode", False, 10)]
    reply = load("server_files_upload.response.json")
    assert reply["item"]["root"] == "gcodes"  # where uploads go: the root we list


# --- materials and the queue --------------------------------------------------------------------------


def test_materials_validation() -> None:
    assert check_materials(
        {"nozzle_diameter": 0.4, "filament_type": " pla ", "filament_color": "ff8800"}
    ) == Materials(0.4, "PLA", "#FF8800FF")
    for bad in ({"nozzle_diameter": 9}, {"filament_color": "red"}, {"filament_type": ""}, {"x": 1}, []):
        with pytest.raises(ValueError):
            check_materials(bad)


def gcode_meta(model: str | None = None, nozzle: float | None = 0.4, kind: str = "gcode") -> PrintFileMeta:
    return PrintFileMeta(
        kind=kind,  # type: ignore[arg-type]
        title="bracket",
        printer_model=model,
        nozzle_diameter=nozzle,
        plates=(
            PlateMeta(
                1,
                "plate_1.gcode" if kind == "3mf" else None,
                prediction_s=600,
                layers=50,
                filaments=(FilamentUse(1, "PLA", "#000000FF"),),
            ),
        ),
    )


def klipper_printer(pid: str = "voron", **materials: Any) -> PrinterSnapshot:
    state = ready_state(
        materials=Materials(
            **{"nozzle_diameter": 0.4, "filament_type": "PLA", "filament_color": "#101010FF", **materials}
        )
    )
    state.apply_message(StatusUpdate({"print_stats": {"state": "standby"}}, full=True))
    state.set_link("connected")
    view = {**state.view(), "id": pid, "name": pid.title()}
    return PrinterSnapshot.from_view(view, bed_clear=True)


def test_gcode_for_no_bambu_model_goes_to_a_matching_klipper_printer() -> None:
    job = WaitingJob(1, gcode_meta(), plate=1)
    d = decide([job], [klipper_printer("voron"), klipper_printer("ender", filament_type="PETG")])
    assert [(s.printer_id, s.use_ams) for s in d.starts] == [("voron", False)]


def test_klipper_refusals_say_why() -> None:
    voron = klipper_printer()
    d = decide([WaitingJob(1, gcode_meta(model="P1S"), plate=1, target="voron")], [voron])
    assert d.reasons[1] == ("Voron: sliced for P1S, this is a Klipper printer",)
    d = decide([WaitingJob(2, gcode_meta(kind="3mf"), plate=1, target="voron")], [voron])
    assert d.reasons[2] == ("Voron: Klipper printers print G-code files, not .3mf projects",)
    d = decide([WaitingJob(3, gcode_meta(nozzle=0.6), plate=1)], [voron])
    assert d.reasons[3] == ("Voron: sliced for a 0.6 mm nozzle, this has 0.4 mm",)
    d = decide([WaitingJob(4, gcode_meta(), plate=1)], [klipper_printer(nozzle_diameter=None)])
    assert d.reasons[4] == ("Voron: no nozzle size set for it (set it on its card)",)
    not_clear = PrinterSnapshot.from_view({**_view(voron)}, bed_clear=False)
    d = decide([WaitingJob(5, gcode_meta(), plate=1)], [not_clear])
    assert d.reasons[5] == ("Voron: bed not marked clear",)


def _view(p: PrinterSnapshot) -> dict[str, Any]:
    state = ready_state(materials=Materials(p.nozzle_diameter, "PLA", "#101010FF"))
    state.apply_message(StatusUpdate({"print_stats": {"state": "standby"}}, full=True))
    state.set_link("connected")
    return {**state.view(), "id": p.id, "name": p.name}


def test_klipper_not_ready_takes_no_job() -> None:
    state = ready_state(materials=Materials(0.4, "PLA", "#101010FF"))
    state.set_link("connected")
    state.apply_message(KlippyStatus("shutdown", "MCU error"))
    p = PrinterSnapshot.from_view(state.view(), bed_clear=True)
    d = decide([WaitingJob(1, gcode_meta(), plate=1)], [p])
    assert d.starts == () and d.reasons[1] == ("Voron: Klipper is not ready",)


def test_path_helper_never_reaches_outside(tmp_path: Path) -> None:
    from bambu_edge.printers.moonraker.files import MoonrakerFiles

    with pytest.raises(Exception, match=r"\.\."):
        MoonrakerFiles._relative("/../etc/passwd")
