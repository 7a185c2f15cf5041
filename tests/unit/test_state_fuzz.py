"""Property tests: no report, however malformed, breaks BambuState or its change sets."""

from __future__ import annotations

import json
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bambu_edge.printers.bambu.fixtures import fixture_names, load_fixture
from bambu_edge.printers.bambu.report import BambuState
from bambu_edge.printers.bambu.sections import SECTIONS
from bambu_edge.printers.state import apply_changes

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FUZZ_SLOW = settings(FUZZ, max_examples=120)  # long generated sequences: fewer, to keep unit tests fast

# Real field names (BAMBU.md / fixtures), so generated junk lands where the view reads.
KEYS = [
    "gcode_state",
    "gcode_file",
    "subtask_name",
    "mc_percent",
    "mc_remaining_time",
    "layer_num",
    "total_layer_num",
    "spd_lvl",
    "stg_cur",
    "print_error",
    "nozzle_temper",
    "nozzle_target_temper",
    "bed_temper",
    "bed_target_temper",
    "chamber_temper",
    "device",
    "ams",
    "tray_now",
    "tray",
    "id",
    "vt_tray",
    "hms",
    "lights_report",
    "wifi_signal",
    "nozzle_diameter",
    "nozzle_type",
    "info",
    "temp",
    "remain",
    "tray_color",
]
SAMPLES = [
    "26.2",
    "0.4",
    "255",
    "-1",
    "254",
    "128",
    "3",
    "5E43B7FF",
    "on",
    "off",
    "flashing",
    "RUNNING",
    "",
    "NaN",
]

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()
    | st.text(max_size=10)
    | st.sampled_from(SAMPLES)
)
values = st.recursive(
    scalars,
    lambda c: (
        st.lists(c, max_size=4) | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=6), c, max_size=4)
    ),
    max_leaves=16,
)


def field(plausible: st.SearchStrategy) -> st.SearchStrategy:
    return plausible | values


tray = st.fixed_dictionaries(
    {"id": field(st.sampled_from(["0", "1", "2", "3", "254", "255"]))},
    optional={
        "tray_type": field(st.sampled_from(["PLA", "ABS", "PETG", ""])),
        "tray_sub_brands": field(st.sampled_from(["PLA Basic", ""])),
        "tray_color": field(st.sampled_from(["5E43B7FF", "00000000", "FFFFFF", "GGGGGGGG"])),
        "remain": field(st.integers(-2, 101)),
    },
)
unit = st.fixed_dictionaries(
    {"id": field(st.sampled_from(["0", "1", "2", "128"]))},
    optional={
        "humidity": field(st.sampled_from(["1", "5"])),
        "temp": field(st.sampled_from(["26.2", "0.0"])),
        "tray": field(st.lists(tray, max_size=4)),
    },
)
ams = st.fixed_dictionaries(
    {},
    optional={
        "ams": field(st.lists(unit, max_size=3)),
        "tray_now": field(st.sampled_from(["255", "254", "0", "3", "5", "128"])),
    },
)
packed = st.integers(min_value=0, max_value=2**32 - 1)
device = st.fixed_dictionaries(
    {},
    optional={
        "bed": field(st.fixed_dictionaries({"info": st.fixed_dictionaries({"temp": field(packed)})})),
        "ctc": field(st.fixed_dictionaries({"info": st.fixed_dictionaries({"temp": field(packed)})})),
        "extruder": field(
            st.fixed_dictionaries(
                {},
                optional={
                    "state": field(st.sampled_from([1, 2, 18, 274])),
                    "info": field(
                        st.lists(
                            st.fixed_dictionaries({"id": field(st.integers(0, 2)), "temp": field(packed)})
                        )
                    ),
                },
            )
        ),
    },
)
hms_item = st.fixed_dictionaries({"attr": field(packed), "code": field(packed)})
light = st.fixed_dictionaries(
    {
        "node": field(st.sampled_from(["chamber_light", "work_light", "chamber_light2"])),
        "mode": field(st.sampled_from(["on", "off", "flashing"])),
    }
)
temperature = field(st.floats(min_value=-50, max_value=400) | st.integers(0, 300))
report_fields = {
    "gcode_state": field(
        st.sampled_from(["IDLE", "PREPARE", "RUNNING", "PAUSE", "FINISH", "FAILED", "SLICING"])
    ),
    "gcode_file": field(st.sampled_from(["/data/Metadata/plate_1.gcode", ""])),
    "subtask_name": field(st.text(max_size=12)),
    "mc_percent": field(st.integers(-1, 101)),
    "mc_remaining_time": field(st.integers(-1, 10_000)),
    "layer_num": field(st.integers(0, 500)),
    "total_layer_num": field(st.integers(0, 500)),
    "spd_lvl": field(st.integers(1, 4)),
    "stg_cur": field(st.sampled_from([-1, 0, 1, 2, 4, 6, 7, 16, 29, 255])),
    "print_error": field(st.sampled_from([0, 117473286, 50348044])),
    "nozzle_temper": temperature,
    "nozzle_target_temper": temperature,
    "bed_temper": temperature,
    "bed_target_temper": temperature,
    "chamber_temper": temperature,
    "device": field(device),
    "ams": field(ams),
    "vt_tray": field(tray),
    "hms": field(st.lists(hms_item, max_size=3)),
    "lights_report": field(st.lists(light, max_size=3)),
    "wifi_signal": field(st.sampled_from(["-48dBm", "-67dBm"])),
    "nozzle_diameter": field(st.sampled_from(["0.4", "0.2", 0.6])),
    "nozzle_type": field(st.sampled_from(["hardened_steel", "HS01"])),
}
status_report = st.fixed_dictionaries(
    {"command": st.just("push_status")},
    optional={**report_fields, "msg": field(st.sampled_from([0, 1])), "sequence_id": st.just("1")},
)
version_reply = st.fixed_dictionaries(
    {"command": st.just("get_version")},
    optional={
        "module": field(
            st.lists(
                st.fixed_dictionaries(
                    {},
                    optional={
                        "name": field(st.sampled_from(["ota", "esp32", "ap", "rv1126"])),
                        "product_name": field(
                            st.sampled_from(["Bambu Lab P1S", "Bambu Lab X1-Carbon", "AMS (1)"])
                        ),
                        "hw_ver": field(st.sampled_from(["AP02", "AP04", "AP05"])),
                        "project_name": field(st.sampled_from(["C11", "C12", "N1", "N2S"])),
                        "sw_ver": field(st.sampled_from(["01.07.00.00"])),
                    },
                ),
                max_size=4,
            )
        ),
        "result": field(st.sampled_from(["success", "failed"])),
    },
)
fixture_messages = st.sampled_from(fixture_names()).map(load_fixture)
messages = st.one_of(
    status_report.map(lambda p: {"print": p}),
    version_reply.map(lambda i: {"info": i}),
    fixture_messages,
    st.fixed_dictionaries({"print": values}),
    values,
)
odd_objects = st.recursive(
    scalars | st.builds(object) | st.binary(max_size=4) | st.sets(st.integers(), max_size=2),
    lambda c: (
        st.tuples(c, c)
        | st.lists(c, max_size=3)
        | st.dictionaries(scalars | st.sampled_from(KEYS), c, max_size=3)
    ),
    max_leaves=12,
)


def strict_dump(view: dict[str, Any]) -> bytes:
    json.dumps(view, allow_nan=False)
    return orjson.dumps(view, option=orjson.OPT_SORT_KEYS)


def check_step(state: BambuState, msg: object, now: float) -> None:
    old = state.view()
    old_bytes = strict_dump(old)
    changes = state.apply_message(msg, now=now)
    new = state.view()
    assert isinstance(changes, dict)
    assert strict_dump(old) == old_bytes  # the previous snapshot is untouched
    # the change set carries the whole difference, type for type (True is not 1)
    assert strict_dump(apply_changes(old, changes)) == strict_dump(new)
    if not changes:
        assert new is old


def check_consistent(state: BambuState) -> None:
    """The incrementally maintained view equals one built from scratch out of ``raw``."""
    fresh = BambuState(state.id, state.name, state.serial)
    fresh.apply_message({"print": {**state.raw, "command": "push_status", "msg": 0}})
    for section in SECTIONS:
        assert strict_dump({section: fresh.view()[section]}) == strict_dump({section: state.view()[section]})


@FUZZ
@given(start=fixture_messages, msgs=st.lists(messages, max_size=8))
def test_merging_generated_reports_never_raises_and_changes_add_up(start, msgs):
    s = BambuState("p1", "Printer", "01P00A000000000")
    check_step(s, start, 1.0)
    for i, msg in enumerate(msgs):
        check_step(s, msg, 2.0 + i)
    check_consistent(s)


@FUZZ_SLOW
@given(msgs=st.lists(status_report.map(lambda p: {"print": p}), min_size=1, max_size=10))
def test_status_sequences_keep_the_view_consistent_with_raw(msgs):
    s = BambuState("p1", "Printer")
    for i, msg in enumerate(msgs):
        check_step(s, msg, float(i))
    check_consistent(s)


@FUZZ
@given(msg=odd_objects, wrapped=odd_objects)
def test_arbitrary_objects_never_raise(msg, wrapped):
    s = BambuState("p1", "Printer")
    check_step(s, msg, 1.0)
    check_step(s, {"print": {"command": "push_status", "msg": 1, "ams": wrapped}}, 2.0)
    check_step(s, {"print": {"command": "push_status", "msg": 0, "device": wrapped}}, 3.0)
    check_step(s, {"info": {"command": "get_version", "module": [wrapped]}}, 4.0)


@FUZZ
@given(
    steps=st.lists(
        st.tuples(
            st.sampled_from(["connecting", "connected", "offline", "auth_failed", "tls_mismatch"]),
            st.none() | st.text(max_size=8),
            st.dictionaries(
                st.sampled_from(["fingerprint", "since", "host", "port"]), scalars | odd_objects, max_size=2
            ),
        ),
        max_size=6,
    )
)
def test_link_changes_add_up(steps):
    s = BambuState("p1", "Printer")
    for i, (state, error, details) in enumerate(steps):
        old = s.view()
        changes = s.set_link(state, error, now=float(i), **details)
        assert strict_dump(apply_changes(old, changes)) == strict_dump(s.view())
        assert s.view()["link"]["state"] == state
