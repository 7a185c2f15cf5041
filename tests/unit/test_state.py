"""BambuState against the real captured reports in shared/fixtures/bambu (values from the files)."""

from __future__ import annotations

import copy
import json

import orjson
import pytest

from bambu_edge.printers.bambu.fixtures import fixture_names, load_fixture
from bambu_edge.printers.bambu.merge import MAX_RAW_BYTES
from bambu_edge.printers.bambu.report import BambuState
from bambu_edge.printers.state import apply_changes

VIEW_KEYS = [
    "id",
    "name",
    "model",
    "serial",
    "link",
    "print",
    "temps",
    "ams",
    "external_spool",
    "hms",
    "lights",
    "wifi_signal",
    "firmware",
    "nozzle",
    "updated_at",
]
X1C_SERIAL = "00M09C452703629"  # the X1C serial in x1c_ssdp_notify.txt
P1S_SERIAL = "01P00A000000000"


def status(fragment: dict, msg: int = 1) -> dict:
    """A fragment of the print object as the push_status delta it arrives in."""
    return {"print": {**fragment, "command": "push_status", "msg": msg, "sequence_id": "1"}}


def fixture_print(name: str) -> dict:
    return copy.deepcopy(load_fixture(name)["print"])


def state_with(name: str, serial: str = "", now: float = 100.0) -> BambuState:
    s = BambuState("p1", "Printer", serial)
    s.apply_message(load_fixture(name), now=now)
    return s


def strict_json(view: dict) -> str:
    orjson.dumps(view)  # the web layer's serialiser: no NaN surprises, ints within 64 bits
    return json.dumps(view, allow_nan=False)


# --- X1C full report with four AMS units ----------------------------------------------------------


def test_x1c_full_report_view():
    s = state_with("x1c_pushall_finish_multi_ams.json", X1C_SERIAL)
    v = s.view()
    assert list(v) == VIEW_KEYS
    assert v["model"] == "X1C"  # serial prefix 00M
    assert v["print"] == {
        "state": "FINISH",
        "file": "/data/Metadata/plate_1.gcode",
        "job": "Garden Hose Healer: Male fitting",
        "progress": 100,
        "remaining_s": 0,
        "layer": 480,
        "total_layers": 480,
        "speed_level": 2,
        "stage": None,  # stg_cur -1 = idle
        "error": None,
    }
    assert v["temps"]["nozzle"] == {"current": 26.0, "target": 0.0}
    assert v["temps"]["bed"] == {"current": 23.0, "target": 0.0}
    # no chamber_temper in this report: device.ctc.info.temp 25 (packed: target in the high 16 bits)
    assert v["temps"]["chamber"] == {"current": 25.0, "target": 0.0}
    assert v["lights"] == {"chamber": True, "work": "flashing"}
    assert v["wifi_signal"] == "-66dBm"
    assert v["nozzle"] == {"diameter": 0.4, "type": "hardened_steel"}  # diameter sent as "0.4"
    assert v["hms"] == []
    assert v["updated_at"] == 100.0
    strict_json(v)


def test_x1c_ams_units_trays_and_colours():
    v = state_with("x1c_pushall_finish_multi_ams.json").view()
    assert [u["unit"] for u in v["ams"]] == [0, 1, 2, 128]
    unit0 = v["ams"][0]
    assert unit0["humidity"] == 5 and unit0["temp"] == 26.2  # temp is the string "26.2" on the wire
    assert [t["color"] for t in unit0["trays"]] == ["#000000FF", "#7D6556FF", "#4D3324FF", "#AE835BFF"]
    assert [t["remain"] for t in unit0["trays"]] == [93, 100, 100, 83]
    assert unit0["trays"][0] == {
        "slot": 0,
        "type": "PLA",
        "sub_brand": "PLA Matte",
        "color": "#000000FF",
        "remain": 93,
        "active": False,
    }
    # unit 2 slot 0 is given as just {"id": "0", "state": 0}: an empty slot
    assert v["ams"][2]["trays"][0] == {
        "slot": 0,
        "type": None,
        "sub_brand": None,
        "color": None,
        "remain": None,
        "active": False,
    }
    assert v["ams"][3]["trays"][0]["type"] == "PA-CF" and v["ams"][3]["temp"] == 45.2
    assert not any(t["active"] for u in v["ams"] for t in u["trays"])  # tray_now "255"


def test_get_version_gives_firmware_and_model():
    s = BambuState("p1", "Printer")
    assert s.view()["model"] is None
    changes = s.apply_message(load_fixture("x1c_get_version.json"), now=5.0)
    assert changes["firmware"] == "01.09.00.01" and changes["model"] == "X1C"
    assert s.view()["firmware"] == "01.09.00.01"


@pytest.mark.parametrize(
    ("name", "model", "firmware"),
    [
        ("x1c_get_version.json", "X1C", "01.09.00.01"),
        ("x1_get_version.json", "X1C", "99.00.00.00"),  # legacy: AP05 without project_name
        ("x1c_get_version_openbambuapi.json", "X1C", "01.01.01.00"),
        ("p1p_get_version_contents.json", "P1P", "01.07.00.00"),
        ("a1_get_version.json", "A1", "01.05.00.00"),
        ("h2d_get_version.json", "H2D", "01.01.01.00"),
        ("p2s_get_version.json", "P2S", "01.01.00.00"),
    ],
)
def test_model_detection_from_each_get_version(name, model, firmware):
    s = BambuState("p1", "Printer")
    s.apply_message(load_fixture(name))
    assert (s.view()["model"], s.view()["firmware"]) == (model, firmware)


def test_configured_model_wins_over_detection():
    s = BambuState("p1", "Printer", X1C_SERIAL, model="X1E")
    s.apply_message(load_fixture("x1c_get_version.json"))
    assert s.view()["model"] == "X1E"
    assert s.view()["firmware"] == "01.09.00.01"


def test_failed_get_version_is_ignored():
    msg = load_fixture("a1_get_version.json")
    msg["info"]["result"] = "failed"
    s = BambuState("p1", "Printer")
    assert s.apply_message(msg) == {}
    assert s.view()["firmware"] is None


# --- X1 running with an HMS alarm -----------------------------------------------------------------


def test_x1_running_report_with_hms():
    v = state_with("x1_pushall_running_hms.json").view()
    assert v["hms"] == [
        {
            "code": "0C00_0300_0003_0007",
            "severity": "common",
            "module": "xcam",
            "text": "Camera (AI detection): problem",
            "url": "https://wiki.bambulab.com/en/x1/troubleshooting/hmscode/0C00_0300_0003_0007",
        }
    ]
    p = v["print"]
    assert (p["state"], p["progress"], p["layer"], p["total_layers"]) == ("RUNNING", 22, 2, 37)
    assert p["remaining_s"] == 163 * 60
    assert p["stage"] == "printing"  # stg_cur 0
    assert p["job"] == "CyberBrick Gridfinity Organizer Box"
    assert v["temps"]["nozzle"] == {"current": 219.0, "target": 220.0}
    assert v["temps"]["bed"] == {"current": 60.0, "target": 60.0}
    assert v["temps"]["chamber"] == {"current": 36.0, "target": None}
    # tray_now "128": the one slot of AMS HT unit 128 is feeding
    assert v["ams"][0]["unit"] == 128 and v["ams"][0]["trays"][0]["active"] is True
    assert v["ams"][0]["trays"][0]["color"] == "#F7D959FF"
    assert v["external_spool"] == {
        "slot": 254,
        "type": "PLA",
        "sub_brand": None,
        "color": "#FFFFFFFF",
        "remain": 0,
        "active": False,
    }


def test_print_error_formatted():
    s = state_with("p1s_pushall_finish_redacted.jsonish.txt")
    assert s.view()["print"]["error"] is None
    s.apply_message(status({"print_error": 117473286}))
    assert s.view()["print"]["error"] == "0700_8006"


# --- P1S: full report, then deltas ---------------------------------------------------------------


def test_p1s_full_report():
    v = state_with("p1s_pushall_finish_redacted.jsonish.txt", P1S_SERIAL).view()
    assert v["model"] == "P1S"
    assert v["print"]["state"] == "FINISH" and v["print"]["stage"] is None  # stg_cur 255
    assert v["print"]["file"] is None  # gcode_file ""
    assert v["temps"]["nozzle"] == {"current": 15.0625, "target": 0.0}
    assert v["temps"]["bed"] == {"current": 12.0, "target": 0.0}
    assert v["temps"]["chamber"] == {"current": 5.0, "target": None}  # no sensor: constant 5, as sent
    assert [t["color"] for t in v["ams"][0]["trays"]] == ["#5E43B7FF", "#0A2989FF", "#C12E1FFF", "#000000FF"]
    assert [t["sub_brand"] for t in v["ams"][0]["trays"]] == ["PLA Basic"] * 4
    assert v["lights"] == {"chamber": False, "work": None}
    assert v["wifi_signal"] == "-68dBm"


def test_p1s_delta_changes_bed_temp_and_keeps_everything_else():
    s = state_with("p1s_pushall_finish_redacted.jsonish.txt", P1S_SERIAL, now=100.0)
    before = s.view()
    changes = s.apply_message(load_fixture("p1s_delta_bed_temper_wifi_1.json"), now=101.0)
    assert changes == {"temps": {"bed": {"current": 11.96875}}, "wifi_signal": "-67dBm", "updated_at": 101.0}
    after = s.view()
    assert after["temps"]["bed"] == {"current": 11.96875, "target": 0.0}
    assert apply_changes(before, changes) == after
    unchanged = [k for k in VIEW_KEYS if k not in ("temps", "wifi_signal", "updated_at")]
    assert all(after[k] == before[k] for k in unchanged)
    assert after["temps"]["nozzle"] == before["temps"]["nozzle"]
    assert s.raw["ams"] == load_fixture("p1s_pushall_finish_redacted.jsonish.txt")["print"]["ams"]

    changes = s.apply_message(load_fixture("p1s_delta_bed_temper_wifi_2.json"), now=102.0)
    assert changes == {"temps": {"bed": {"current": 12.0}}, "wifi_signal": "-68dBm", "updated_at": 102.0}


def test_delta_tray_by_id_keeps_the_tray_but_full_report_empties_it():
    s = state_with("p1s_pushall_finish_redacted.jsonish.txt")
    # In a delta, {"id": "0"} changes nothing: missing keys are never reset.
    changes = s.apply_message(status({"ams": {"ams": [{"id": "0", "tray": [{"id": "0"}]}]}}), now=200.0)
    assert changes == {"updated_at": 200.0}
    assert s.view()["ams"][0]["trays"][0]["color"] == "#5E43B7FF"
    # A delta for one tray by id changes that tray only.
    s.apply_message(status({"ams": {"ams": [{"id": "0", "tray": [{"id": "2", "remain": 40}]}]}}))
    assert [t["remain"] for t in s.view()["ams"][0]["trays"]] == [83, 100, 40, 100]
    assert s.view()["ams"][0]["trays"][2]["color"] == "#C12E1FFF"
    # In a full report, a tray given as just {"id": "0"} is an empty slot.
    full = fixture_print("p1s_pushall_finish_redacted.jsonish.txt")
    full["ams"]["ams"][0]["tray"][0] = {"id": "0"}
    s.apply_message({"print": full})
    tray0 = s.view()["ams"][0]["trays"][0]
    assert (tray0["type"], tray0["color"], tray0["remain"]) == (None, None, None)
    assert [t["remain"] for t in s.view()["ams"][0]["trays"]][1:] == [100, 100, 100]


def test_full_report_after_deltas_replaces_raw():
    s = state_with("p1s_pushall_finish_redacted.jsonish.txt")
    s.apply_message(status({"gcode_state": "RUNNING", "mc_percent": 42, "print_error": 117473286}))
    s.apply_message(status(load_fixture("h2d_delta_left_extruder.json")["print"]))
    assert s.view()["print"]["state"] == "RUNNING" and "device" in s.raw
    changes = s.apply_message(load_fixture("p1s_pushall_finish_redacted.jsonish.txt"))
    assert changes["print"] == {"state": "FINISH", "progress": 100, "error": None}
    assert "device" not in s.raw  # not in the full report, so gone


def test_deltas_merge_nested_dicts_and_lists_by_id():
    s = state_with("h2d_pushall_running.json")
    before_nozzles = s.raw["device"]["nozzle"]["info"]
    s.apply_message(status(load_fixture("h2d_delta_alt_nozzle_info.json")["print"]))
    info = s.raw["device"]["nozzle"]["info"]
    assert [(n["id"], n["diameter"], n["type"]) for n in info] == [(0, 0.2, "HS00"), (1, 0.6, "HX05")]
    assert before_nozzles[0]["diameter"] == 0.4  # the old snapshot was not modified
    assert s.raw["device"]["extruder"]["state"] == 2  # sibling keys kept
    s.apply_message(status(load_fixture("h2d_delta_left_extruder.json")["print"]))
    assert s.raw["device"]["extruder"]["state"] == 274
    assert len(s.raw["device"]["extruder"]["info"]) == 2  # not replaced by the delta's dict


def test_other_lists_replace():
    s = state_with("x1_pushall_running_hms.json")
    assert len(s.view()["hms"]) == 1
    changes = s.apply_message(status({"hms": []}))
    assert changes["hms"] == [] and s.view()["hms"] == []


# --- newer models: device block with packed temperatures ---------------------------------------


def test_h2d_running():
    v = state_with("h2d_pushall_running.json").view()
    assert v["print"]["state"] == "RUNNING" and v["print"]["job"] == "T-pose - slim H2D dual AMS riser"
    assert v["temps"]["nozzle"] == {"current": 245.0, "target": 245.0}
    assert v["temps"]["bed"] == {"current": 70.0, "target": 70.0}
    assert v["temps"]["chamber"] == {"current": 36.0, "target": 0.0}
    assert [u["unit"] for u in v["ams"]] == [0, 1]
    assert [t["active"] for t in v["ams"][0]["trays"]] == [False, False, False, True]  # tray_now "3"
    assert v["lights"] == {"chamber": True, "work": "flashing"}


def test_p2s_chamber_from_device_and_unknown_remain():
    v = state_with("p2s_pushall_running.json").view()
    assert v["temps"]["chamber"] == {"current": 47.0, "target": 0.0}  # ctc 47; no chamber_temper
    trays = v["ams"][0]["trays"]
    assert [t["remain"] for t in trays] == [41, 39, None, None]  # -1 = unknown
    assert trays[3]["active"] is True
    assert v["nozzle"] == {"diameter": 0.4, "type": "HS01"}
    assert v["external_spool"] is None  # P2S reports vir_slot, no vt_tray


def test_packed_temps_used_where_top_level_fields_are_absent():
    report = fixture_print("p2s_pushall_running.json")
    for key in ("nozzle_temper", "nozzle_target_temper", "bed_temper", "bed_target_temper"):
        del report[key]
    s = BambuState("p2s", "P2S")
    s.apply_message({"print": report})
    t = s.view()["temps"]
    # device.extruder.info[0].temp 16711934 = 0x00FF_00FE, device.bed.info.temp 4587590 = 0x0046_0046
    assert t["nozzle"] == {"current": 254.0, "target": 255.0}
    assert t["bed"] == {"current": 70.0, "target": 70.0}


def test_active_extruder_selects_the_packed_nozzle_temp():
    report = fixture_print("h2d_pushall_running.json")
    del report["nozzle_temper"], report["nozzle_target_temper"]
    s = BambuState("h2d", "H2D")
    s.apply_message({"print": report})
    assert s.view()["temps"]["nozzle"] == {"current": 245.0, "target": 245.0}  # extruder 0: 0x00F5_00F5
    changes = s.apply_message(status(load_fixture("h2d_delta_left_extruder.json")["print"]))
    # state 274 = 0x112: 2 extruders, active 1, whose packed temp is 47
    assert changes["temps"] == {"nozzle": {"current": 47.0, "target": 0.0}}


# --- A1 and P1P ---------------------------------------------------------------------------------


def test_a1_idle():
    v = state_with("a1_pushall_idle.json").view()
    assert v["print"]["state"] == "IDLE"
    assert v["print"]["stage"] is None  # stg_cur 0 while idle is not "printing"
    assert v["temps"]["chamber"] == {"current": 5.0, "target": None}
    assert [t["color"] for t in v["ams"][0]["trays"]] == ["#76D9F4FF", "#FFF144FF", "#FF80FFFF", "#0ACC38FF"]
    assert v["wifi_signal"] == "-48dBm"


def test_p1p_failed_job_from_contents_fixture():
    v = state_with("p1p_pushall_idle_contents.json").view()
    assert (v["print"]["state"], v["print"]["job"]) == ("FAILED", "Fidget Collection")
    assert (v["print"]["layer"], v["print"]["total_layers"]) == (1, 70)
    assert v["print"]["remaining_s"] == 759 * 60
    trays = v["ams"][0]["trays"]
    assert [t["remain"] for t in trays] == [None] * 4
    assert [t["active"] for t in trays] == [True, False, False, False]  # tray_now "0"
    assert v["external_spool"]["color"] == "#161616FF"


def test_x1c_idle_openbambuapi_sample():
    v = state_with("x1c_pushall_idle_openbambuapi.jsonc").view()
    assert v["print"]["state"] == "IDLE"
    assert v["temps"]["chamber"] == {"current": 24.0, "target": None}
    assert v["ams"][0]["trays"][0]["type"] is None  # "// an empty tray"
    assert v["ams"][0]["trays"][1]["color"] == "#000000FF"


# --- messages that are not status ---------------------------------------------------------------


@pytest.mark.parametrize(
    "msg",
    [
        load_fixture("x1_mc_print_push_info_gcodeline.json"),
        load_fixture("ams_get_rfid_reply_openbambuapi.json"),
        {"print": {"command": "pause", "result": "success", "sequence_id": "7", "param": ""}},
        {"print": {"gcode_state": "RUNNING"}},  # no command: not a status report
        {"pushing": {"command": "pushall", "sequence_id": "0"}},
        {"info": {"command": "get_version", "sequence_id": "0"}},  # our own request echoed, no modules
    ],
)
def test_non_status_messages_leave_the_state_alone(msg):
    s = state_with("x1c_pushall_finish_multi_ams.json")
    raw, view = s.raw, s.view()
    assert s.apply_message(msg, now=999.0) == {}
    assert s.raw is raw and s.view() is view
    assert "result" not in s.raw


@pytest.mark.parametrize(
    "msg", [None, [], "print", 5, b'{"print": {}}', {"print": "x"}, {"print": None}, {1: 2}]
)
def test_non_dict_and_odd_messages(msg):
    s = BambuState("p1", "Printer")
    assert s.apply_message(msg) == {}
    strict_json(s.view())


# --- every fixture -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", fixture_names())
def test_every_fixture_yields_a_valid_view(name):
    msg = load_fixture(name)
    s = BambuState("p1", "Printer", X1C_SERIAL)
    before = s.view()
    changes = s.apply_message(msg, now=10.0)
    if "print" in msg and "command" not in msg["print"]:  # fragments: apply as the delta they were
        changes = s.apply_message(status(msg["print"]), now=10.0)
    v = s.view()
    assert list(v) == VIEW_KEYS
    assert apply_changes(before, changes) == v
    strict_json(v)
    assert isinstance(changes, dict)


def test_full_reports_of_every_model_on_one_state():
    s = BambuState("p1", "Printer")
    for name in fixture_names():
        before = s.view()
        changes = s.apply_message(load_fixture(name))
        assert apply_changes(before, changes) == s.view()
        strict_json(s.view())


# --- robustness ----------------------------------------------------------------------------------


def test_wrong_types_become_null_not_exceptions():
    s = state_with("x1c_pushall_finish_multi_ams.json")
    junk = {
        "nozzle_temper": "hot",
        "bed_temper": float("nan"),
        "bed_target_temper": float("inf"),
        "chamber_temper": 10**400,
        "mc_percent": 10**30,
        "layer_num": True,
        "total_layer_num": "37",
        "mc_remaining_time": -5,
        "spd_lvl": [],
        "gcode_state": 7,
        "stg_cur": "x",
        "print_error": "bad",
        "hms": "x",
        "ams": [1, 2],
        "vt_tray": "254",
        "lights_report": {"node": "chamber_light"},
        "wifi_signal": {"dBm": -40},
        "nozzle_diameter": "0,4",
        "device": {"extruder": {"info": "x", "state": "y"}, "bed": [], "ctc": {"info": {"temp": -1}}},
    }
    s.apply_message(status(junk, msg=0))
    v = s.view()
    strict_json(v)
    assert v["temps"] == {
        "nozzle": {"current": None, "target": None},
        "bed": {"current": None, "target": None},
        "chamber": {"current": None, "target": None},
    }
    assert v["print"] == {
        "state": None,
        "file": None,
        "job": None,
        "progress": None,
        "remaining_s": None,
        "layer": None,
        "total_layers": 37,
        "speed_level": None,
        "stage": None,
        "error": None,
    }
    assert v["ams"] == [] and v["hms"] == [] and v["external_spool"] is None
    assert v["lights"] == {"chamber": None, "work": None} and v["wifi_signal"] is None
    assert v["nozzle"] == {"diameter": None, "type": None}


def test_a_one_megabyte_junk_payload_is_not_kept_whole():
    s = state_with("x1c_pushall_finish_multi_ams.json")
    s.apply_message(status({"junk": "x" * 1_000_000}))
    assert len(orjson.dumps(s.raw)) <= MAX_RAW_BYTES
    s.apply_message(status({f"k{i}": i for i in range(200_000)}))
    assert len(orjson.dumps(s.raw)) <= MAX_RAW_BYTES
    s.apply_message(status({"junk": "x" * 1_000_000}, msg=0))
    assert len(orjson.dumps(s.raw)) <= MAX_RAW_BYTES
    strict_json(s.view())


def test_a_stream_of_growing_deltas_stays_bounded():
    s = state_with("x1c_pushall_finish_multi_ams.json")
    for n in range(200):
        s.apply_message(status({f"extra_{n}": "y" * 2000}))
    assert len(orjson.dumps(s.raw)) <= MAX_RAW_BYTES
    # the real report came first, so it is what pruning keeps
    assert s.view()["print"]["state"] == "FINISH" and len(s.view()["ams"]) == 4


def test_deep_nesting_and_odd_objects_do_not_raise():
    deep: object = 1
    for _ in range(5000):
        deep = {"ams": deep}
    s = BambuState("p1", "Printer")
    s.apply_message(status({"ams": deep}))
    s.apply_message(status({"ams": deep}, msg=0))
    cyclic: dict = {"id": "0"}
    cyclic["tray"] = [cyclic]
    s.apply_message(status({"ams": {"ams": [cyclic]}}))
    s.apply_message(status({"weird": {1, 2}, "obj": object(), 3: "int key", "t": (1, 2)}))
    strict_json(s.view())


def test_the_senders_message_is_not_modified():
    msg = load_fixture("p1s_pushall_finish_redacted.jsonish.txt")
    pristine = copy.deepcopy(msg)
    s = BambuState("p1", "Printer")
    s.apply_message(msg)
    s.apply_message(status({"ams": {"ams": [{"id": "0", "tray": [{"id": "0", "remain": 1}]}]}}))
    s.apply_message(status({"bed_temper": 99}))
    assert msg == pristine
    assert s.view()["ams"][0]["trays"][0]["remain"] == 1


def test_view_snapshots_are_not_modified_by_later_messages():
    s = state_with("p1s_pushall_finish_redacted.jsonish.txt")
    old = s.view()
    frozen = copy.deepcopy(old)
    s.apply_message(load_fixture("p1s_delta_bed_temper_wifi_1.json"))
    assert old == frozen and s.view() is not old


def test_repeated_full_report_changes_only_updated_at():
    s = state_with("x1c_pushall_finish_multi_ams.json", now=1.0)
    assert s.apply_message(load_fixture("x1c_pushall_finish_multi_ams.json"), now=2.0) == {"updated_at": 2.0}


# --- link ----------------------------------------------------------------------------------------


def test_link_state_since_error_and_details():
    s = BambuState("p1", "Printer")
    assert s.view()["link"] == {"state": "offline", "since": None, "error": None}
    changes = s.set_link("connecting", now=10.0)
    assert changes == {"link": {"state": "connecting", "since": 10.0}}
    changes = s.set_link("connected", now=12.0, fingerprint="AB:CD")
    assert changes == {"link": {"state": "connected", "since": 12.0, "fingerprint": "AB:CD"}}
    assert s.set_link("connected", now=20.0, fingerprint="AB:CD") == {}  # same state: since kept
    changes = s.set_link("tls_mismatch", "certificate changed", now=30.0, fingerprint="EF:01")
    assert changes == {
        "link": {
            "state": "tls_mismatch",
            "since": 30.0,
            "error": "certificate changed",
            "fingerprint": "EF:01",
        }
    }
    before = s.view()
    changes = s.set_link("offline", now=40.0)
    assert s.view()["link"] == {"state": "offline", "since": 40.0, "error": None, "fingerprint": None}
    assert apply_changes(before, changes) == s.view()
    assert s.view()["updated_at"] is None  # link changes are not reports


def test_job_identity_from_a_running_report_and_deltas():
    s = state_with("x1_pushall_running_hms.json")
    assert (s.identity.task_id, s.identity.subtask_id, s.identity.job_id) == (
        "724977923",
        "724977924",
        "378996136",
    )
    assert s.identity.print_error == 0
    # A delta that moves only progress leaves the identity object as it was (nothing re-parsed).
    before = s.identity
    s.apply_message(status({"mc_percent": 50}))
    assert s.identity is before
    # A user's stop: the numeric print error the view only shows formatted.
    s.apply_message(status({"gcode_state": "FAILED", "print_error": 50348044}))
    assert s.identity.print_error == 0x0300400C and s.identity.task_id == "724977923"


def test_lan_prints_have_no_ids():
    s = state_with("h2d_pushall_running.json")
    assert s.identity.job_id is None and s.identity.subtask_id is None
    s.apply_message(status({"task_id": "0", "subtask_id": 0, "job_id": ""}))
    assert (s.identity.task_id, s.identity.subtask_id, s.identity.job_id) == (None, None, None)
