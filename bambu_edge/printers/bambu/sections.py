"""The view sections of a Bambu printer (DESIGN.md section 4), each a pure function of the merged
``print`` object of its reports (protocol/BAMBU.md sections 4-6), and the job's identity.

``SECTIONS`` names each section's builder and the top-level report keys it reads, so a delta
rebuilds only the sections its keys touch. Builders never raise on input: a value that does not
parse is ``null`` in the view (``printers.values``), and every field has one type.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from bambu_edge.printers.bambu import protocol
from bambu_edge.printers.bambu.hms import hms_entry, print_error_code
from bambu_edge.printers.base import NO_IDENTITY, JobIdentity
from bambu_edge.printers.values import dig, integer, num, text

MAX_AMS_UNITS = 16  # 4 AMS + 8 AMS HT is the most documented
MAX_TRAYS = 8
MAX_HMS = 64

# stg_cur -> words, for the ids BAMBU.md lists (HAB const.py CURRENT_STAGE_IDS); others stay numbers.
STAGE_WORDS: dict[int, str] = {
    0: "printing",
    1: "auto bed leveling",
    2: "heatbed preheating",
    4: "changing filament",
    6: "paused filament runout",
    7: "heating hotend",
    16: "paused by user",
}
IDLE_STAGES = frozenset({-1, 255})  # -1 on X1, 255 on P1
LIGHT_MODES: dict[str, bool] = {"on": True, "flashing": True, "off": False}

_HEX8 = re.compile(r"[0-9A-Fa-f]{8}")


def _packed(v: Any) -> tuple[float | None, float | None]:
    """Newer firmware packs temperatures: low 16 bits current, high 16 bits target."""
    n = integer(v, 0, 0xFFFFFFFF)
    if n is None:
        return None, None
    return float(n & 0xFFFF), float(n >> 16)


def _color(v: Any) -> str | None:
    return "#" + v.upper() if type(v) is str and _HEX8.fullmatch(v) else None


# --- sections ------------------------------------------------------------------------------------


def build_print(r: dict[str, Any]) -> dict[str, Any]:
    state = text(r.get("gcode_state"), 64)
    progress = integer(r.get("mc_percent"))
    remaining = integer(r.get("mc_remaining_time"))
    stage = integer(r.get("stg_cur"))
    # A1 and P1P report stg_cur 0 ("printing") while idle or failed: no job, no stage.
    if stage is not None and (stage in IDLE_STAGES or (stage == 0 and state in protocol.NO_JOB_STATES)):
        stage = None
    return {
        "state": state,
        "file": text(r.get("gcode_file")),  # values.MAX_TEXT: longest name shown
        "job": text(r.get("subtask_name")),
        "progress": progress if progress is not None and 0 <= progress <= 100 else None,
        "remaining_s": remaining * 60 if remaining is not None and remaining >= 0 else None,
        "layer": integer(r.get("layer_num")),
        "total_layers": integer(r.get("total_layer_num")),
        "speed_level": integer(r.get("spd_lvl")),
        "stage": STAGE_WORDS.get(stage, stage) if stage is not None else None,
        "error": print_error_code(r.get("print_error")),
    }


def _active_extruder(device: dict[str, Any]) -> dict[str, Any] | None:
    """The ``device.extruder.info[]`` entry of the active extruder (state bits 4-7)."""
    ext = device.get("extruder")
    if type(ext) is not dict or type(ext.get("info")) is not list:
        return None
    state = integer(ext.get("state"))
    active = (state >> 4) & 0xF if state is not None and state >= 0 else 0
    for entry in ext["info"][:16]:
        if type(entry) is dict and integer(entry.get("id")) == active:
            return entry
    return None


def _fill_packed(r: dict[str, Any], pair: dict[str, Any], keys: tuple[str, str], packed: Any) -> None:
    """Packed device temps (low 16 bits current, high 16 target) where top-level fields are absent."""
    current, target = _packed(packed)
    if keys[0] not in r:
        pair["current"] = current
    if keys[1] not in r:
        pair["target"] = target


_NOZZLE_KEYS = ("nozzle_temper", "nozzle_target_temper")
_BED_KEYS = ("bed_temper", "bed_target_temper")


def build_temps(r: dict[str, Any]) -> dict[str, Any]:
    get = r.get
    nozzle = {"current": num(get("nozzle_temper")), "target": num(get("nozzle_target_temper"))}
    bed = {"current": num(get("bed_temper")), "target": num(get("bed_target_temper"))}
    # No top-level chamber target exists; P1/A1 send a constant chamber_temper (5) and no ctc block.
    chamber = {"current": num(get("chamber_temper")), "target": None}
    device = get("device")
    if type(device) is dict and device:  # newer firmware (H2D, P2S, ...)
        if _NOZZLE_KEYS[0] not in r or _NOZZLE_KEYS[1] not in r:
            entry = _active_extruder(device)
            _fill_packed(r, nozzle, _NOZZLE_KEYS, entry.get("temp") if entry else None)
        if _BED_KEYS[0] not in r or _BED_KEYS[1] not in r:
            _fill_packed(r, bed, _BED_KEYS, dig(device, "bed", "info", "temp"))
        _fill_packed(
            r, chamber, ("chamber_temper", "chamber_target_temper"), dig(device, "ctc", "info", "temp")
        )
    return {"nozzle": nozzle, "bed": bed, "chamber": chamber}


def _tray(t: dict[str, Any], active: bool) -> dict[str, Any]:
    remain = integer(t.get("remain"))
    return {
        "slot": integer(t.get("id")),
        "type": text(t.get("tray_type"), 64),
        "sub_brand": text(t.get("tray_sub_brands"), 64),
        "color": _color(t.get("tray_color")),
        "remain": remain if remain is not None and 0 <= remain <= 100 else None,  # -1 = unknown
        "active": active,
    }


def _tray_now(r: dict[str, Any]) -> int | None:
    return integer(dig(r, "ams", "tray_now"))


def build_ams(r: dict[str, Any]) -> list[dict[str, Any]]:
    units = dig(r, "ams", "ams")
    if type(units) is not list:
        return []
    now = _tray_now(r)
    out = []
    for u in units[:MAX_AMS_UNITS]:
        if type(u) is not dict:
            continue
        unit = integer(u.get("id"))
        trays = u.get("tray")
        tray_views = []
        for t in trays[:MAX_TRAYS] if type(trays) is list else ():
            if type(t) is not dict:
                continue
            slot = integer(t.get("id"))
            active = unit is not None and slot is not None and now == protocol.tray_index(unit, slot)
            tray_views.append(_tray(t, active))
        out.append(
            {
                "unit": unit,
                "humidity": integer(u.get("humidity")),
                "temp": num(u.get("temp")),
                "trays": tray_views,
            }
        )
    return out


def build_external_spool(r: dict[str, Any]) -> dict[str, Any] | None:
    vt = r.get("vt_tray")
    return _tray(vt, _tray_now(r) == protocol.EXTERNAL_TRAY) if type(vt) is dict else None


def build_hms(r: dict[str, Any]) -> list[dict[str, Any]]:
    items = r.get("hms")
    if type(items) is not list:
        return []
    return [e for e in map(hms_entry, items[:MAX_HMS]) if e is not None]


def build_lights(r: dict[str, Any]) -> dict[str, Any]:
    chamber = work = None
    report = r.get("lights_report")
    for entry in report[:16] if type(report) is list else ():
        if type(entry) is not dict:
            continue
        mode = text(entry.get("mode"), 32)
        if entry.get("node") == "chamber_light":
            chamber = LIGHT_MODES.get(mode) if mode else None
        elif entry.get("node") == "work_light":
            work = mode
    return {"chamber": chamber, "work": work}


def build_wifi(r: dict[str, Any]) -> str | None:
    return text(r.get("wifi_signal"), 32)


def build_nozzle(r: dict[str, Any]) -> dict[str, Any]:
    return {"diameter": num(r.get("nozzle_diameter")), "type": text(r.get("nozzle_type"), 64)}


# section -> (builder, top-level report keys it reads)
SECTIONS: dict[str, tuple[Callable[[dict[str, Any]], Any], tuple[str, ...]]] = {
    "print": (
        build_print,
        (
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
        ),
    ),
    "temps": (
        build_temps,
        (
            "nozzle_temper",
            "nozzle_target_temper",
            "bed_temper",
            "bed_target_temper",
            "chamber_temper",
            "device",
        ),
    ),
    "ams": (build_ams, ("ams",)),
    "external_spool": (build_external_spool, ("vt_tray", "ams")),
    "hms": (build_hms, ("hms",)),
    "lights": (build_lights, ("lights_report",)),
    "wifi_signal": (build_wifi, ("wifi_signal",)),
    "nozzle": (build_nozzle, ("nozzle_diameter", "nozzle_type")),
}
BUILDERS = {name: builder for name, (builder, _keys) in SECTIONS.items()}
SECTIONS_BY_KEY: dict[str, tuple[str, ...]] = {}  # report key -> the sections that read it
for _name, (_builder, _keys) in SECTIONS.items():
    for _key in _keys:
        SECTIONS_BY_KEY[_key] = (*SECTIONS_BY_KEY.get(_key, ()), _name)


def empty_sections() -> dict[str, Any]:
    """Every Bambu view section before any report, in the DESIGN order (firmware, from
    get_version rather than reports, sits between wifi_signal and nozzle)."""
    out: dict[str, Any] = {}
    for section, builder in BUILDERS.items():
        out[section] = builder({})
        if section == "wifi_signal":
            out["firmware"] = None
    return out


# --- the job's identity --------------------------------------------------------------------------

IDENTITY_KEYS = frozenset({"task_id", "subtask_id", "job_id", "gcode_start_time", "print_error"})
_VALID_START = (1_000_000_000, 10_000_000_000)  # Unix seconds a printer can mean


def _ident(v: Any) -> str | None:
    """A task/subtask/job id; "0" and "" mean none (LAN prints)."""
    if type(v) is int:
        v = str(v)
    t = text(v, 64)
    return None if t is None or t == "0" else t


def build_identity(r: dict[str, Any]) -> JobIdentity:
    identity = JobIdentity(
        task_id=_ident(r.get("task_id")),
        subtask_id=_ident(r.get("subtask_id")),
        job_id=_ident(r.get("job_id")),
        start_time=integer(r.get("gcode_start_time"), *_VALID_START),
        print_error=integer(r.get("print_error"), 0, 0xFFFFFFFF),
    )
    return NO_IDENTITY if identity == NO_IDENTITY else identity
