"""Live printer state: a pure merge of Bambu full/delta reports and the API view derived from it.

``PrinterState`` keeps ``raw`` (the merged contents of the printer's ``print`` object) and a cached
view in the shape of DESIGN.md section 4. ``apply_message`` takes one decoded MQTT report and returns
only what changed in the view, so the web socket hub can forward it as is.

Merge rules (protocol/BAMBU.md section 4): a ``push_status`` with ``msg == 0`` is a full report and
replaces ``raw`` (so an AMS tray given as just ``{"id": "0"}`` is an empty slot); anything else is a
delta: dicts merge key by key, lists whose items are all dicts with an ``id`` merge by id, other
lists replace; keys a delta does not mention are kept. ``info.get_version`` replies feed model
detection and the firmware version. Every other message (command replies, ``mc_print`` log lines)
leaves the state alone: the link matches replies itself.

Nothing here raises on input. Values that do not parse become ``null`` in the view. ``raw`` never
grows past ``MAX_RAW_BYTES`` (serialised): larger reports are pruned, keeping what came first.

Cost: merges are copy-on-write (``raw`` and view snapshots are never mutated, so old snapshots stay
valid and a report may be shared with its sender), and only the view sections whose inputs changed
are rebuilt: for a delta, those its keys touch; for a full report, those whose inputs serialise
differently from last time (orjson, in C).
"""

from __future__ import annotations

import logging
import math
import re
import time
from collections.abc import Callable, Mapping
from typing import Any

import orjson

from bambu_edge.printers import values
from bambu_edge.printers.bambu import models
from bambu_edge.printers.bambu.hms import hms_entry, print_error_code
from bambu_edge.printers.base import NO_IDENTITY, JobIdentity

log = logging.getLogger(__name__)

# Limits for untrusted input. A real full report is 5-20 KB serialised (X1C with four AMS ~11 KB).
MAX_RAW_BYTES = 128 * 1024  # serialised size of `raw`, and of any one report that is kept
MAX_DEPTH = 32  # nesting kept when a report has to be pruned, and when merging
MAX_KEYS = 1024  # per dict, when pruning
MAX_ITEMS = 1024  # per list, when pruning or growing a list by id
MAX_STR = 4096  # per string, when pruning
MAX_TEXT = 1024  # longest string shown in the view (job and file names)
MAX_AMS_UNITS = 16  # 4 AMS + 8 AMS HT is the most documented
MAX_TRAYS = 8
MAX_HMS = 64
WARN_INTERVAL_S = 60.0

STATUS_COMMAND = "push_status"
VERSION_COMMAND = "get_version"
EXTERNAL_TRAY = 254  # tray_now value when printing from the external spool (vt_tray)
AMS_HT_FIRST_ID = 128  # AMS HT units (ids 128-135) have one slot; their tray index is the unit id

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
# A1 and P1P report stg_cur 0 ("printing") while idle or failed: no job, no stage.
NO_JOB_STATES = frozenset({"IDLE", "FINISH", "FAILED"})
LIGHT_MODES: dict[str, bool] = {"on": True, "flashing": True, "off": False}
LINK_KEYS = ("state", "since", "error")

_SAFE_INT = 2**53  # the largest integers a browser reads exactly
_BIG = 1e12
_HEX8 = re.compile(r"[0-9A-Fa-f]{8}")
_DUMPS_STRICT = (
    orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_SUBCLASS
)
_MISSING = object()
_MISSING_SIG = "\x00missing"  # tells an absent key from null in full-report input signatures


# --- tolerant value parsing (view side) ---------------------------------------------------------


def _num(v: Any) -> float | None:
    """A finite float from a number or a numeric string ("26.2"); anything else None.

    -0.0 becomes 0.0: view values that compare equal must serialise the same (see _dict_diff).
    """
    t = type(v)
    if t is float:
        return v + 0.0 if -_BIG < v < _BIG else None  # NaN fails both comparisons
    if t is int:
        return float(v) + 0.0 if -_BIG < v < _BIG else None
    if t is str and 0 < len(v) <= 32:
        try:
            f = float(v)
        except ValueError:
            return None
        return f + 0.0 if -_BIG < f < _BIG else None
    return None


def _int(v: Any) -> int | None:
    """An integer from an int, an integral float or a decimal string ("255"); anything else None."""
    t = type(v)
    if t is int:
        return v if -_SAFE_INT < v < _SAFE_INT else None
    if t is float:
        return int(v) if v.is_integer() and -_SAFE_INT < v < _SAFE_INT else None
    if t is str and 0 < len(v) <= 24:
        try:
            n = int(v, 10)
        except ValueError:
            f = _num(v)
            return int(f) if f is not None and f.is_integer() else None
        return n if -_SAFE_INT < n < _SAFE_INT else None
    return None


def _text(v: Any, limit: int = MAX_TEXT) -> str | None:
    """A non-empty string as sent; empty, over-long or non-string values are None."""
    return v if type(v) is str and 0 < len(v) <= limit else None


def _dig(d: Any, *path: str) -> Any:
    for key in path:
        if type(d) is not dict:
            return None
        d = d.get(key)
    return d


def _packed(v: Any) -> tuple[float | None, float | None]:
    """Newer firmware packs temperatures: low 16 bits current, high 16 bits target."""
    n = _int(v)
    if n is None or not 0 <= n <= 0xFFFFFFFF:
        return None, None
    return float(n & 0xFFFF), float(n >> 16)


def _color(v: Any) -> str | None:
    return "#" + v.upper() if type(v) is str and _HEX8.fullmatch(v) else None


# --- view sections: each a pure function of `raw` ------------------------------------------------


def _build_print(r: dict[str, Any]) -> dict[str, Any]:
    state = _text(r.get("gcode_state"), 64)
    progress = _int(r.get("mc_percent"))
    remaining = _int(r.get("mc_remaining_time"))
    stage = _int(r.get("stg_cur"))
    if stage is not None and (stage in IDLE_STAGES or (stage == 0 and state in NO_JOB_STATES)):
        stage = None
    return {
        "state": state,
        "file": _text(r.get("gcode_file")),
        "job": _text(r.get("subtask_name")),
        "progress": progress if progress is not None and 0 <= progress <= 100 else None,
        "remaining_s": remaining * 60 if remaining is not None and remaining >= 0 else None,
        "layer": _int(r.get("layer_num")),
        "total_layers": _int(r.get("total_layer_num")),
        "speed_level": _int(r.get("spd_lvl")),
        "stage": STAGE_WORDS.get(stage, stage) if stage is not None else None,
        "error": print_error_code(r.get("print_error")),
    }


def _active_extruder(device: dict[str, Any]) -> dict[str, Any] | None:
    """The ``device.extruder.info[]`` entry of the active extruder (state bits 4-7)."""
    ext = device.get("extruder")
    if type(ext) is not dict or type(ext.get("info")) is not list:
        return None
    state = _int(ext.get("state"))
    active = (state >> 4) & 0xF if state is not None and state >= 0 else 0
    for entry in ext["info"][:16]:
        if type(entry) is dict and _int(entry.get("id")) == active:
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


def _build_temps(r: dict[str, Any]) -> dict[str, Any]:
    get = r.get
    nozzle = {"current": _num(get("nozzle_temper")), "target": _num(get("nozzle_target_temper"))}
    bed = {"current": _num(get("bed_temper")), "target": _num(get("bed_target_temper"))}
    # No top-level chamber target exists; P1/A1 send a constant chamber_temper (5) and no ctc block.
    chamber = {"current": _num(get("chamber_temper")), "target": None}
    device = get("device")
    if type(device) is dict and device:  # newer firmware (H2D, P2S, ...)
        if _NOZZLE_KEYS[0] not in r or _NOZZLE_KEYS[1] not in r:
            entry = _active_extruder(device)
            _fill_packed(r, nozzle, _NOZZLE_KEYS, entry.get("temp") if entry else None)
        if _BED_KEYS[0] not in r or _BED_KEYS[1] not in r:
            _fill_packed(r, bed, _BED_KEYS, _dig(device, "bed", "info", "temp"))
        _fill_packed(
            r, chamber, ("chamber_temper", "chamber_target_temper"), _dig(device, "ctc", "info", "temp")
        )
    return {"nozzle": nozzle, "bed": bed, "chamber": chamber}


def _tray(t: dict[str, Any], active: bool) -> dict[str, Any]:
    remain = _int(t.get("remain"))
    return {
        "slot": _int(t.get("id")),
        "type": _text(t.get("tray_type"), 64),
        "sub_brand": _text(t.get("tray_sub_brands"), 64),
        "color": _color(t.get("tray_color")),
        "remain": remain if remain is not None and 0 <= remain <= 100 else None,  # -1 = unknown
        "active": active,
    }


def _tray_now(r: dict[str, Any]) -> int | None:
    return _int(_dig(r, "ams", "tray_now"))


def _build_ams(r: dict[str, Any]) -> list[dict[str, Any]]:
    units = _dig(r, "ams", "ams")
    if type(units) is not list:
        return []
    now = _tray_now(r)
    out = []
    for u in units[:MAX_AMS_UNITS]:
        if type(u) is not dict:
            continue
        unit = _int(u.get("id"))
        trays = u.get("tray")
        tray_views = []
        for t in trays[:MAX_TRAYS] if type(trays) is list else ():
            if type(t) is not dict:
                continue
            slot = _int(t.get("id"))
            if unit is None or slot is None or now is None:
                active = False
            elif unit >= AMS_HT_FIRST_ID:
                active = now == unit + slot
            else:
                active = now == unit * 4 + slot  # tray_now is the global tray index
            tray_views.append(_tray(t, active))
        out.append(
            {
                "unit": unit,
                "humidity": _int(u.get("humidity")),
                "temp": _num(u.get("temp")),
                "trays": tray_views,
            }
        )
    return out


def _build_external_spool(r: dict[str, Any]) -> dict[str, Any] | None:
    vt = r.get("vt_tray")
    return _tray(vt, _tray_now(r) == EXTERNAL_TRAY) if type(vt) is dict else None


def _build_hms(r: dict[str, Any]) -> list[dict[str, Any]]:
    items = r.get("hms")
    if type(items) is not list:
        return []
    return [e for e in map(hms_entry, items[:MAX_HMS]) if e is not None]


def _build_lights(r: dict[str, Any]) -> dict[str, Any]:
    chamber = work = None
    report = r.get("lights_report")
    for entry in report[:16] if type(report) is list else ():
        if type(entry) is not dict:
            continue
        mode = _text(entry.get("mode"), 32)
        if entry.get("node") == "chamber_light":
            chamber = LIGHT_MODES.get(mode) if mode else None
        elif entry.get("node") == "work_light":
            work = mode
    return {"chamber": chamber, "work": work}


def _build_wifi(r: dict[str, Any]) -> str | None:
    return _text(r.get("wifi_signal"), 32)


def _build_nozzle(r: dict[str, Any]) -> dict[str, Any]:
    return {"diameter": _num(r.get("nozzle_diameter")), "type": _text(r.get("nozzle_type"), 64)}


# section -> (builder, top-level raw keys it reads)
SECTIONS: dict[str, tuple[Callable[[dict[str, Any]], Any], tuple[str, ...]]] = {
    "print": (
        _build_print,
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
        _build_temps,
        (
            "nozzle_temper",
            "nozzle_target_temper",
            "bed_temper",
            "bed_target_temper",
            "chamber_temper",
            "device",
        ),
    ),
    "ams": (_build_ams, ("ams",)),
    "external_spool": (_build_external_spool, ("vt_tray", "ams")),
    "hms": (_build_hms, ("hms",)),
    "lights": (_build_lights, ("lights_report",)),
    "wifi_signal": (_build_wifi, ("wifi_signal",)),
    "nozzle": (_build_nozzle, ("nozzle_diameter", "nozzle_type")),
}
_BUILDERS = {name: builder for name, (builder, _keys) in SECTIONS.items()}
_SECTIONS_BY_KEY: dict[str, tuple[str, ...]] = {}
for _name, (_builder, _keys) in SECTIONS.items():
    for _key in _keys:
        _SECTIONS_BY_KEY[_key] = (*_SECTIONS_BY_KEY.get(_key, ()), _name)


IDENTITY_KEYS = frozenset({"task_id", "subtask_id", "job_id", "gcode_start_time", "print_error"})
_VALID_START = (1_000_000_000, 10_000_000_000)  # Unix seconds a printer can mean


def _ident(v: Any) -> str | None:
    """A task/subtask/job id; "0" and "" mean none (LAN prints)."""
    if type(v) is int:
        v = str(v)
    t = values.text(v, 64)
    return None if t is None or t == "0" else t


def _build_identity(r: dict[str, Any]) -> JobIdentity:
    start = values.integer(r.get("gcode_start_time"), *_VALID_START)
    identity = JobIdentity(
        task_id=_ident(r.get("task_id")),
        subtask_id=_ident(r.get("subtask_id")),
        job_id=_ident(r.get("job_id")),
        start_time=start,
        print_error=values.integer(r.get("print_error"), 0, 0xFFFFFFFF),
    )
    return NO_IDENTITY if identity == NO_IDENTITY else identity


# --- raw side: bounding, merging ------------------------------------------------------------------


def _prune(v: Any, depth: int, budget: list[int]) -> Any:
    """A plain-JSON copy of ``v`` within the limits, spending ``budget`` (about serialised bytes).

    Containers are filled in order until the budget runs out, so junk appended to a real report is
    what gets dropped. Values JSON cannot carry exactly (NaN, 2**70, objects) become None.
    """
    if v is None or v is True or v is False:
        budget[0] -= 5
        return v
    if isinstance(v, str):
        budget[0] -= len(v) + 2
        return str(v) if len(v) <= MAX_STR else None
    if isinstance(v, int):
        budget[0] -= 8
        return int(v) if -(2**63) <= v < 2**64 else None
    if isinstance(v, float):
        budget[0] -= 8
        return float(v) if math.isfinite(v) else None
    if isinstance(v, Mapping):
        budget[0] -= 2
        if depth >= MAX_DEPTH:
            return None
        out: dict[str, Any] = {}
        for k, x in v.items():
            if budget[0] <= 0 or len(out) >= MAX_KEYS:
                break
            if isinstance(k, str) and len(k) <= 256:
                budget[0] -= len(k) + 4
                out[str(k)] = _prune(x, depth + 1, budget)
        return out
    if isinstance(v, list | tuple):
        budget[0] -= 2
        if depth >= MAX_DEPTH:
            return None
        items: list[Any] = []
        for x in v:
            if budget[0] <= 0 or len(items) >= MAX_ITEMS:
                break
            items.append(_prune(x, depth + 1, budget))
        return items
    budget[0] -= 5
    return None


def _bounded(obj: Any, limit: int = MAX_RAW_BYTES) -> tuple[Any, int]:
    """(obj, serialised size) if obj is plain JSON within ``limit`` (checked in C), else a pruned copy."""
    try:
        size = len(orjson.dumps(obj, option=_DUMPS_STRICT))
        if size <= limit:
            return obj, size
    except (orjson.JSONEncodeError, TypeError, ValueError, RecursionError):
        pass
    budget = [limit]
    pruned = _prune(obj, 0, budget)
    return pruned, max(0, limit - budget[0])


def _id_of(item: Any) -> Any:
    """The merge key of a list item, or _MISSING if the item cannot be merged by id."""
    if type(item) is dict:
        i = item.get("id", _MISSING)
        if type(i) is str or type(i) is int:
            return i
    return _MISSING


def _merge(old: Any, new: Any, depth: int = 0) -> Any:
    """``old`` with delta ``new`` applied; neither is mutated (unchanged subtrees are shared)."""
    if type(new) is dict:
        if type(old) is not dict or depth >= MAX_DEPTH:
            return new
        out = old.copy()
        for k, v in new.items():
            if type(v) is dict or type(v) is list:  # scalars simply replace
                prev = old.get(k)
                if prev is not None:
                    v = _merge(prev, v, depth + 1)
            out[k] = v
        return out
    if type(new) is list and type(old) is list and new and old and depth < MAX_DEPTH:
        new_ids = [_id_of(x) for x in new]
        old_ids = [_id_of(x) for x in old]
        if _MISSING in new_ids or _MISSING in old_ids:
            return new
        merged = list(old)
        index = {}
        for pos, i in enumerate(old_ids):
            index.setdefault(i, pos)
        for i, item in zip(new_ids, new, strict=True):
            pos = index.get(i)
            if pos is not None:
                merged[pos] = _merge(merged[pos], item, depth + 1)
            elif len(merged) < MAX_ITEMS:
                index[i] = len(merged)
                merged.append(item)
        return merged
    return new


# --- view changes ---------------------------------------------------------------------------------


def _dict_diff(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """What to apply to ``old`` to get ``new``, two dicts known to differ: nested dicts recurse,
    everything else (lists included) is sent whole.

    Plain ``==`` decides (in C, cheap). It cannot tell 1 from 1.0 or True, but the section builders
    give every field one type, and for the link (caller-supplied values) ``_commit`` installs
    ``old + changes``, so the view is always exactly what a client gets by applying change sets.
    """
    changes = {}
    added = 0
    for k, v in new.items():
        o = old.get(k, _MISSING)
        if o is _MISSING:
            added += 1
            changes[k] = v
        elif o is v or o == v:
            continue
        elif type(o) is dict and type(v) is dict:
            changes[k] = _dict_diff(o, v)
        else:
            changes[k] = v
    if len(old) + added > len(new):  # a key was dropped (views never do; kept for completeness)
        for k in old.keys() - new.keys():
            changes[k] = None
    return changes


def apply_changes(view: dict[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """A new view: ``view`` with a change set from ``apply_message``/``set_link`` applied (dicts
    merge, everything else replaces). For clients that keep a copy of the view, and for tests."""
    out = dict(view)
    for k, v in changes.items():
        old = out.get(k)
        out[k] = apply_changes(old, v) if type(old) is dict and type(v) is dict else v
    return out


def _detail(v: Any) -> Any:
    """A link detail value the API can serialise."""
    if v is None or type(v) in (bool, str) or (type(v) is int and -_SAFE_INT < v < _SAFE_INT):
        return v
    if type(v) is float:
        return v if math.isfinite(v) else None
    return str(v)[:256]


class PrinterState:
    """Live state of one printer. Pure logic: feed it decoded messages, read ``view()``.

    ``raw`` and the dict returned by ``view()`` are snapshots: they are replaced, never modified, so
    callers may keep them, but must not modify them.
    """

    def __init__(self, id: str, name: str, serial: str = "", model: str | None = None):
        self.id = id
        self.name = name
        self.serial = serial
        self.raw: dict[str, Any] = {}
        self.identity: JobIdentity = NO_IDENTITY  # rebuilt when its keys change
        self.updated_at: float | None = None
        self._model_override = model
        self._detected_model: str | None = None  # from get_version
        self._raw_size = 2
        self._input_sigs: dict[str, bytes | None] = {}
        self._last_warning = -math.inf
        view: dict[str, Any] = {
            "id": id,
            "name": name,
            "model": self._model_now(),
            "serial": serial,
            "link": {"state": "offline", "since": None, "error": None},
        }
        for section, (builder, _keys) in SECTIONS.items():
            view[section] = builder({})
            if section == "wifi_signal":
                view["firmware"] = None  # the DESIGN order: ..., wifi_signal, firmware, nozzle
        view["updated_at"] = None
        self._view = view

    # --- public -------------------------------------------------------------------------------

    @property
    def model(self) -> str | None:
        return self._view["model"]

    @model.setter
    def model(self, value: str | None) -> None:
        """A configured model; None returns to detection (get_version, else serial prefix)."""
        self._model_override = value
        self._view = {**self._view, "model": self._model_now()}

    def view(self) -> dict[str, Any]:
        """The printer object of DESIGN.md section 4 (cached; rebuilt only when something changed)."""
        return self._view

    def apply_message(self, msg: object, now: float | None = None) -> dict[str, Any]:
        """Apply one decoded MQTT report message; return the view changes ({} if none)."""
        try:
            return self._apply(msg, time.time() if now is None else now)
        except Exception:  # input must never take the daemon down; state stays as it was
            self._warn("ignored a message that could not be applied", exc_info=True)
            return {}

    def set_link(
        self, state: str, error: str | None = None, now: float | None = None, **details: Any
    ) -> dict:
        """Link state change (LinkState values); returns view changes.

        ``since`` keeps its time while the state stays the same. Detail keys, once given, stay in
        the view (null when a later call leaves them out), so change sets never need to delete keys.
        """
        try:
            now = time.time() if now is None else now
            old = self._view["link"]
            state = str(state)
            since = old["since"] if state == old["state"] and old["since"] is not None else now
            link: dict[str, Any] = {
                "state": state,
                "since": since,
                "error": None if error is None else str(error),
            }
            for k in old:
                if k not in link:
                    link[k] = None
            for k, v in details.items():
                if k not in LINK_KEYS:
                    link[k] = _detail(v)
            return self._commit({"link": link}, updated=False, now=now)
        except Exception:
            self._warn("link state change failed", exc_info=True)
            return {}

    # --- internals ----------------------------------------------------------------------------

    def _model_now(self) -> str | None:
        return self._model_override or self._detected_model or models.model_from_serial(self.serial)

    def _warn(self, message: str, **kwargs: Any) -> None:
        t = time.monotonic()
        if t - self._last_warning >= WARN_INTERVAL_S:  # a junk stream must not flood the journal
            self._last_warning = t
            log.warning("printer %s: %s", self.id, message, **kwargs)

    def _apply(self, msg: object, now: float) -> dict[str, Any]:
        if type(msg) is not dict and not isinstance(msg, Mapping):
            return {}
        new_sections: dict[str, Any] = {}
        applied = False
        report = msg.get("print")
        if (type(report) is dict or isinstance(report, Mapping)) and report.get("command") == STATUS_COMMAND:
            new_sections = self._apply_status(report)
            applied = True
        info = msg.get("info")
        if info is not None and isinstance(info, Mapping) and info.get("command") == VERSION_COMMAND:
            version = self._apply_version(info)
            if version is not None:
                new_sections.update(version)
                applied = True
        return self._commit(new_sections, updated=applied, now=now) if applied else {}

    def _apply_status(self, report: Mapping[str, Any]) -> dict[str, Any]:
        """Fold one push_status into ``raw``; return the rebuilt view sections."""
        msg_kind = report.get("msg")
        full = type(msg_kind) is int and msg_kind == 0
        clean, size = _bounded(report)
        if type(clean) is not dict:
            clean = {}
        if full:
            raw = clean
            self._raw_size = size
            dirty = self._changed_sections(raw)
        else:
            raw = _merge(self.raw, clean)
            self._raw_size += size  # an upper bound of the growth
            dirty = {}  # a dict: ordered like the delta's keys, so change sets are deterministic
            for k in clean:
                hit = _SECTIONS_BY_KEY.get(k)
                if hit:
                    for section in hit:
                        dirty[section] = None
            sigs = self._input_sigs
            for section in dirty:
                sigs[section] = None
            if self._raw_size > MAX_RAW_BYTES:
                raw, self._raw_size = _bounded(raw)
                dirty = dict.fromkeys(SECTIONS)
                sigs.clear()
        self.raw = raw
        if full or len(dirty) == len(SECTIONS) or not IDENTITY_KEYS.isdisjoint(clean):
            self.identity = _build_identity(raw)
        out = {}
        for section in dirty:
            builder = _BUILDERS[section]
            try:
                out[section] = builder(raw)
            except Exception:  # builders are defensive; this is the last line
                self._warn(f"could not build the {section} view", exc_info=True)
                out[section] = builder({})
        return out

    def _changed_sections(self, raw: dict[str, Any]) -> list[str]:
        """Sections whose inputs differ from the last full report's (type-exact, via orjson)."""
        dirty = []
        for section, (_builder, keys) in SECTIONS.items():
            try:
                sig = orjson.dumps([raw.get(k, _MISSING_SIG) for k in keys])
            except (orjson.JSONEncodeError, TypeError):
                sig = None
            if sig is None or sig != self._input_sigs.get(section):
                dirty.append(section)
            self._input_sigs[section] = sig
        return dirty

    def _apply_version(self, info: Mapping[str, Any]) -> dict[str, Any] | None:
        """Model and firmware from a get_version reply; None if the reply carries no module list."""
        result = info.get("result")
        if result is not None and not (isinstance(result, str) and result.lower() == "success"):
            return None
        modules = info.get("module")
        if not isinstance(modules, list):
            return None
        modules = modules[:64]
        detected = models.model_from_version(modules)
        if detected:
            self._detected_model = detected
        return {"model": self._model_now(), "firmware": models.firmware_from_version(modules)}

    def _commit(self, sections: dict[str, Any], updated: bool, now: float) -> dict[str, Any]:
        """Install new section values; return the change set against the previous view."""
        old = self._view
        changes: dict[str, Any] = {}
        replaced: dict[str, Any] = {}
        if updated:
            self.updated_at = now
            sections["updated_at"] = now
        for key, value in sections.items():
            before = old[key]
            if before is value or before == value:
                continue
            if type(before) is dict and type(value) is dict:
                changes[key] = change = _dict_diff(before, value)
                # Section builders give each field one type, so `value` is exactly old + changes.
                # Link details come from callers (True vs 1): install what clients will compute.
                replaced[key] = apply_changes(before, change) if key == "link" else value
            else:
                changes[key] = replaced[key] = value
        if replaced:
            self._view = {**old, **replaced}
        return changes
