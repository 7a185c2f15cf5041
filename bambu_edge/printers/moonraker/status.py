"""Moonraker status folding: ``MoonrakerState`` is the generic ``PrinterState`` (printers/state.py)
fed with Klipper's printer objects as Moonraker reports them (the result of
``printer.objects.subscribe`` and the ``notify_status_update`` deltas after it), Klippy's own state
(``server.info`` / ``printer.info`` and the klippy notifications) and the current file's metadata.

The view has the Bambu printer's shape (DESIGN.md section 4), so the card, the queue and the
history read it the same way. ``print.state`` uses the Bambu vocabulary (docs/klipper.md):

==================  ============  ===========================================================
print_stats.state   print.state   note
==================  ============  ===========================================================
standby             IDLE
printing            RUNNING
paused              PAUSE
complete            FINISH
cancelled           FAILED        ``print.error`` says "cancelled"
error               FAILED        ``print.error`` is print_stats.message
(Klippy not ready)  OFFLINE       Klippy shutdown/error/startup/disconnected: no job can start;
                                  ``klippy`` and ``hms`` say why in plain words
==================  ============  ===========================================================

Sections: ``print``, ``temps``, ``ams`` (always empty: Klipper has no AMS), ``external_spool`` and
``nozzle`` (what the user set for this printer: Klipper reports neither), ``hms`` (Klippy's
shutdown or error message as one entry), ``lights``, ``klippy``. Builders never raise on input.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bambu_edge.printers.state import PrinterState
from bambu_edge.printers.values import integer, num, text

MODEL = "Klipper"
STATE_WORDS = {
    "standby": "IDLE",
    "printing": "RUNNING",
    "paused": "PAUSE",
    "complete": "FINISH",
    "cancelled": "FAILED",
    "error": "FAILED",
}
NOT_READY = "OFFLINE"  # Klippy is not ready: nothing can print (not an idle printer)
# Bambu's four speed levels as M220 percentages (silent, standard, sport, ludicrous).
SPEED_PERCENT = {1: 50, 2: 100, 3: 124, 4: 166}
KLIPPY_WORDS = {
    "ready": "Klipper is ready",
    "startup": "Klipper is starting up",
    "shutdown": "Klipper has shut down",
    "error": "Klipper reported an error",
    "disconnected": "Klipper is not connected to Moonraker (is the klipper service running?)",
}
MAX_OBJECTS = 64  # a printer has a few dozen objects; more is not a printer
MAX_FIELDS = 64
# Printer objects whose temperature may be the chamber's, in order of preference.
CHAMBER_OBJECTS = ("heater_generic chamber", "temperature_fan chamber", "temperature_sensor chamber")


@dataclass(frozen=True, slots=True)
class StatusUpdate:
    """Printer objects from ``printer.objects.subscribe`` (``full``: replaces what was known) or a
    ``notify_status_update`` delta (merged field by field)."""

    status: Mapping[str, Any]
    full: bool = False


@dataclass(frozen=True, slots=True)
class KlippyStatus:
    """Klippy's state (``ready``, ``startup``, ``shutdown``, ``error``, ``disconnected``) and its
    own message, if it gave one."""

    state: str
    message: str | None = None


@dataclass(frozen=True, slots=True)
class FileInfo:
    """What Moonraker's metadata says about the file being printed."""

    filename: str | None
    estimated_time: float | None = None
    layer_count: int | None = None


@dataclass(frozen=True, slots=True)
class Materials:
    """The nozzle and filament the user set for this printer (the queue matches jobs to them)."""

    nozzle_diameter: float | None = None
    filament_type: str | None = None
    filament_color: str | None = None


def _merge(objects: dict[str, dict[str, Any]], status: Mapping[str, Any], full: bool) -> dict[str, Any]:
    out: dict[str, dict[str, Any]] = {} if full else dict(objects)
    for name, fields in list(status.items())[:MAX_OBJECTS]:
        if type(name) is not str or not isinstance(fields, Mapping):
            continue
        if name not in out and len(out) >= MAX_OBJECTS:
            continue
        merged = dict(out.get(name, {}))
        for k, v in list(fields.items())[:MAX_FIELDS]:
            if type(k) is str:
                merged[k] = v
        out[name] = merged
    return out


def _obj(objects: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    o = objects.get(name)
    return o if isinstance(o, Mapping) else {}


def file_stem(name: str | None) -> str | None:
    if not name:
        return None
    base = name.rsplit("/", 1)[-1]
    return base.rsplit(".", 1)[0] if "." in base else base


def speed_level(factor: float | None) -> int | None:
    """The Bambu level whose percentage the speed factor is; None for any other factor."""
    if factor is None:
        return None
    pct = round(factor * 100)
    for level, p in SPEED_PERCENT.items():
        if p == pct:
            return level
    return None


def build_print(objects: Mapping[str, Any], klippy: KlippyStatus, file: FileInfo | None) -> dict[str, Any]:
    stats = _obj(objects, "print_stats")
    sd = _obj(objects, "virtual_sdcard")
    display = _obj(objects, "display_status")
    raw_state = text(stats.get("state"), 32)
    filename = text(stats.get("filename"))
    if klippy.state != "ready":
        state: str | None = NOT_READY
    elif raw_state is None:
        state = None
    else:
        state = STATE_WORDS.get(raw_state, raw_state.upper())
    progress_f = num(sd.get("progress"), 0.0, 1.0)
    if progress_f is None:
        progress_f = num(display.get("progress"), 0.0, 1.0)
    active = raw_state in ("printing", "paused")
    progress = int(progress_f * 100) if progress_f is not None and filename else None
    if raw_state == "complete" and filename:
        progress = 100
    remaining: int | None = None
    if active and progress_f is not None:
        est = file.estimated_time if file and file.filename == filename else None
        if est is not None:
            remaining = max(0, round(est * (1.0 - progress_f)))
        else:
            done = num(stats.get("print_duration"), 0.0)
            if done and progress_f > 0:
                remaining = max(0, round(done / progress_f - done))
    elif filename and raw_state in ("complete", "cancelled", "error"):
        remaining = 0
    info = stats.get("info")
    info = info if isinstance(info, Mapping) else {}
    total_layers = integer(info.get("total_layer"), 0, 100_000)
    if total_layers is None and file and file.filename == filename:
        total_layers = file.layer_count
    error = None
    if raw_state == "cancelled":
        error = "cancelled"
    elif raw_state == "error":
        error = text(stats.get("message"), 500) or "error"
    gcode_move = _obj(objects, "gcode_move")
    return {
        "state": state,
        "file": filename,
        "job": file_stem(filename),
        "progress": progress,
        "remaining_s": remaining,
        "layer": integer(info.get("current_layer"), 0, 100_000) if filename else None,
        "total_layers": total_layers if filename else None,
        "speed_level": speed_level(num(gcode_move.get("speed_factor"), 0.0, 10.0)),
        "stage": text(display.get("message"), 200),
        "error": error,
    }


def _pair(o: Mapping[str, Any]) -> dict[str, Any]:
    return {"current": num(o.get("temperature"), -300.0, 2000.0), "target": num(o.get("target"), 0.0, 2000.0)}


def _active_extruder(objects: Mapping[str, Any]) -> str:
    name = _obj(objects, "toolhead").get("extruder")
    return name if type(name) is str and name in objects else "extruder"


def build_temps(objects: Mapping[str, Any]) -> dict[str, Any]:
    chamber = {"current": None, "target": None}
    for name in CHAMBER_OBJECTS:
        if name in objects:
            chamber = _pair(_obj(objects, name))
            if not name.startswith("heater_generic"):
                chamber["target"] = None if name.startswith("temperature_sensor") else chamber["target"]
            break
    return {
        "nozzle": _pair(_obj(objects, _active_extruder(objects))),
        "bed": _pair(_obj(objects, "heater_bed")),
        "chamber": chamber,
    }


def build_klippy(klippy: KlippyStatus, objects: Mapping[str, Any]) -> dict[str, Any]:
    hooks = _obj(objects, "webhooks")
    message = klippy.message or text(hooks.get("state_message"), 2000)
    return {
        "state": klippy.state,
        "message": message.strip() if message else None,
        "words": KLIPPY_WORDS.get(klippy.state, f"Klipper is {klippy.state}"),
    }


def build_hms(klippy_view: Mapping[str, Any]) -> list[dict[str, Any]]:
    if klippy_view["state"] == "ready":
        return []
    text_ = klippy_view["words"]
    if klippy_view["message"]:
        text_ = f"{text_}: {klippy_view['message']}"
    severity = "error" if klippy_view["state"] in ("shutdown", "error") else "warning"
    return [{"code": f"klippy_{klippy_view['state']}", "severity": severity, "text": text_[:1000]}]


def build_materials(m: Materials) -> tuple[dict[str, Any], dict[str, Any] | None]:
    nozzle = {"diameter": m.nozzle_diameter, "type": None}
    spool = None
    if m.filament_type:
        spool = {
            "slot": None,
            "type": m.filament_type,
            "sub_brand": None,
            "color": m.filament_color,
            "remain": None,
            "active": True,
        }
    return nozzle, spool


class MoonrakerState(PrinterState):
    """Live state of one Klipper printer. ``objects`` (Klipper's printer objects as last reported)
    is a snapshot like the view: replaced, never modified."""

    def __init__(self, id: str, name: str, materials: Materials | None = None, model: str | None = None):
        self.objects: dict[str, dict[str, Any]] = {}
        self.klippy = KlippyStatus("disconnected")
        self.file: FileInfo | None = None
        self.materials = materials or Materials()
        super().__init__(id, name, "", model)

    def empty_sections(self) -> dict[str, Any]:
        return self._sections()

    def detected_model(self) -> str | None:
        return MODEL

    def _sections(self) -> dict[str, Any]:
        klippy = build_klippy(self.klippy, self.objects)
        nozzle, spool = build_materials(self.materials)
        return {
            "type": "moonraker",
            "print": build_print(self.objects, self.klippy, self.file),
            "temps": build_temps(self.objects),
            "ams": [],
            "external_spool": spool,
            "hms": build_hms(klippy),
            "lights": {"chamber": None, "work": None},
            "nozzle": nozzle,
            "klippy": klippy,
        }

    def fold(self, msg: object) -> dict[str, Any] | None:
        if isinstance(msg, StatusUpdate):
            if not isinstance(msg.status, Mapping):
                return None
            self.objects = _merge(self.objects, msg.status, msg.full)
        elif isinstance(msg, KlippyStatus):
            state = text(msg.state, 32) or "disconnected"
            message = text(msg.message, 2000)
            self.klippy = KlippyStatus(state, message)
        elif isinstance(msg, FileInfo):
            self.file = msg
        elif isinstance(msg, Materials):
            self.materials = msg
        else:
            return None
        sections = self._sections()
        sections.pop("type")
        return sections

    @property
    def print_state(self) -> str | None:
        return self.view()["print"]["state"]
