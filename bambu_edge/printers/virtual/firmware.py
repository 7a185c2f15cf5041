"""The firmware's behaviour behind the report: commands and what they change, the print state
machine, and what a report shows of heaters and job as simulated time passes. No I/O: the printer
(printer.py) feeds it requests and time and publishes what it shows.

Commands are answered on the report topic with the same type, ``command`` and ``sequence_id``,
``result`` and the request's own parameters (BAMBU.md section 3).
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import Any

from bambu_edge.printers import values
from bambu_edge.printers.bambu import commands
from bambu_edge.printers.bambu.protocol import (
    ACTIVE_PRINT_STATES,
    FAILED,
    FINISH,
    PAUSE,
    PREPARE,
    PRINT_ERROR_CANCELLED,
    RUNNING,
)
from bambu_edge.printers.virtual.physics import Heater, PrintJob
from bambu_edge.printers.virtual.profiles import Profile, captured_report, initial_report, profile_for
from bambu_edge.printers.virtual.states import STAGE_PAUSED_BY_USER, STAGE_PREHEATING, STAGE_PRINTING

# Without Developer Mode, 2025 firmware answers unsigned control commands like this (seen in public
# client code quoting real replies). Reading status stays allowed (BAMBU.md section 11).
VERIFY_FAILED_REASON = "mqtt message verify failed"
VERIFY_FAILED_ERR_CODE = 84033543
# Allowed without Developer Mode: status reading, and get_access_code, which reports show exempt.
UNSIGNED_ALLOWED = {("system", "get_access_code")}
UNSIGNED_ALLOWED_TYPES = {"pushing", "info"}

# print_speed level -> spd_mag (%), the values Bambu Studio shows for silent/standard/sport/ludicrous.
SPEED_MAGNITUDES = {1: 50, 2: 100, 3: 124, 4: 166}


@dataclass(frozen=True)
class StartPrint:
    """A print command the firmware accepts: what to print. Where the file is read from is the
    printer's business (its storage); it then starts the job with ``Firmware.start_print``."""

    command: str  # project_file or gcode_file
    name: str
    stored_name: str  # the name when the file is printed from storage (a gcode file's stem)
    gcode_file: str
    tray: int | None


class Firmware:
    """The printer's state (``report``, heaters, the current job) and the rules that change it."""

    def __init__(self, model: str, serial: str, *, sensor_noise: bool = True, seed: Any = None):
        self.profile: Profile = profile_for(model)
        self.model = self.profile.model
        self.sensor_noise = sensor_noise
        self._rng = random.Random(seed if seed is not None else serial)
        self.report: dict[str, Any] = initial_report(self.model)
        self._idle_stage = self.report.get("stg_cur", self.profile.idle_stage)
        if captured_report(self.model).get("gcode_state") in ACTIVE_PRINT_STATES:
            self._idle_stage = self.profile.idle_stage
        self.nozzle = self._heater("nozzle_temper", "nozzle_target_temper", tau_cool=30.0)
        self.bed = self._heater("bed_temper", "bed_target_temper", tau_cool=90.0)
        self.job: PrintJob | None = None

    def _heater(self, current_key: str, target_key: str, tau_cool: float) -> Heater:
        current = _float(self.report.get(current_key), 25.0)
        target = _float(self.report.get(target_key), 0.0)
        # A cold capture's temperatures are its room; a hot one cools towards 25 degC.
        ambient = current if target <= 0 and current < 45 else 25.0
        return Heater(current, target, ambient, tau_heat_s=15.0, tau_cool_s=tau_cool)

    @property
    def gcode_state(self) -> str:
        return str(self.report.get("gcode_state"))

    @property
    def speed(self) -> float:
        return _float(self.report.get("spd_mag"), 100.0) or 100.0

    @property
    def printing(self) -> bool:
        """A job that simulated time moves on (preparing or printing; not paused, not ended)."""
        return self.job is not None and self.job.state in (PREPARE, RUNNING)

    # --- commands ----------------------------------------------------------------------------------

    @staticmethod
    def refuses_unsigned(kind: str, command: str) -> bool:
        """Whether firmware without Developer Mode refuses this command unsigned."""
        return kind not in UNSIGNED_ALLOWED_TYPES and (kind, command) not in UNSIGNED_ALLOWED

    def apply(self, kind: str, command: str, body: dict[str, Any]) -> str | StartPrint | None:
        """Apply a control command: None when done, a reason string if refused, or the print to
        start. Unknown commands are acknowledged."""
        job = self.job
        if kind == "print":
            if command == "pause":
                if job is not None and job.state in (PREPARE, RUNNING):
                    job.state = PAUSE
                    self.show_job(job)
            elif command == "resume":
                if job is not None and job.state == PAUSE:
                    job.state = RUNNING if job.work_s >= job.prepare_s else PREPARE
                    self.show_job(job)
            elif command == "stop":
                if job is not None and job.state in ACTIVE_PRINT_STATES:
                    self.end_job(FAILED)
            elif command == "print_speed":
                level = values.integer(body.get("param"))
                if level not in SPEED_MAGNITUDES:
                    return f"invalid speed level {body.get('param')!r}"  # our choice; no capture
                self.report.update(spd_lvl=level, spd_mag=SPEED_MAGNITUDES[level])
                if job is not None and job.state in ACTIVE_PRINT_STATES:  # the estimate follows at once
                    self.show_job(job)
            elif command == "gcode_line":
                self._gcode(str(body.get("param", "")))
            elif command in ("project_file", "gcode_file"):
                if job is not None and job.state in ACTIVE_PRINT_STATES:
                    return "printer is busy"  # our choice; no capture of a real refusal
                return _start_print(command, body)
            elif command == "skip_objects" and isinstance(body.get("obj_list"), list):
                self.report["s_obj"] = body["obj_list"]
        elif kind == "system":
            if command == "ledctrl":
                node, mode = body.get("led_node"), body.get("led_mode")
                if not isinstance(node, str) or mode not in ("on", "off", "flashing"):
                    return "invalid led_node or led_mode"
                self._set_light(node, mode)
        return None

    def _set_light(self, node: str, mode: str) -> None:
        lights = self.report.get("lights_report")
        if not isinstance(lights, list):
            lights = self.report["lights_report"] = []
        for entry in lights:
            if isinstance(entry, dict) and entry.get("node") == node:
                entry["mode"] = mode
                return
        lights.append({"node": node, "mode": mode})

    def _gcode(self, text: str) -> None:
        # Only heater targets have a visible effect in a report: M104/M109 nozzle, M140/M190 bed.
        for line in text.splitlines():
            m = re.match(r"\s*M(104|109|140|190)\b.*?\bS(-?\d+(?:\.\d+)?)", line, re.IGNORECASE)
            if m:
                heater = self.nozzle if m.group(1) in ("104", "109") else self.bed
                heater.target = max(float(m.group(2)), 0.0)
                heater.tau_heat_s = 15.0

    # --- prints ------------------------------------------------------------------------------------

    def start_print(
        self,
        name: str,
        duration_s: float,
        layers: int,
        *,
        gcode_file: str,
        nozzle_target: float,
        bed_target: float,
        start_fraction: float = 0.0,
        tray: int | None = None,
    ) -> PrintJob:
        """PREPARE (heating) -> RUNNING -> FINISH over ``duration_s`` of simulated time at 100 %
        speed. ``start_fraction`` starts part-way (0..1); ``tray``: the global tray index
        (``ams.tray_now``) loaded for the print, None leaves it."""
        job = PrintJob.new(name, duration_s, layers, gcode_file, nozzle_target, bed_target)
        prepare_s = job.prepare_s
        # Heat up within the preparing phase, however short the simulated print is.
        self.nozzle.tau_heat_s = min(max(prepare_s / 4, 0.05), 15.0)
        self.bed.tau_heat_s = min(max(prepare_s / 4, 0.05), 25.0)
        self.nozzle.target, self.bed.target = nozzle_target, bed_target
        if start_fraction > 0:
            job.advance(prepare_s, 100.0)
            job.work_s = prepare_s + (job.duration_s - prepare_s) * min(start_fraction, 0.99)
            self.nozzle.current, self.bed.current = nozzle_target, bed_target
        self.job = job
        r = self.report
        r["subtask_name"] = name
        r["gcode_file"] = gcode_file
        r["print_type"] = "local"
        if "print_error" in r:
            r["print_error"] = 0
        if tray is not None and isinstance(r.get("ams"), dict):
            r["ams"]["tray_now"] = str(int(tray))  # a string, as in the captures
        self.show_job(job)
        self.show_temps()
        return job

    def fail(self, print_error: int, hms: list[dict[str, int]] | None = None) -> None:
        if hms is not None:
            self.report["hms"] = hms
        if self.job is not None and self.job.state in ACTIVE_PRINT_STATES:
            self.end_job(FAILED, print_error)

    def end_job(self, state: str, print_error: int = PRINT_ERROR_CANCELLED) -> None:
        r = self.report
        job = self.job
        if job is not None:
            job.state = state
            if state == FINISH:
                r["mc_percent"], r["layer_num"], r["mc_remaining_time"] = 100, job.layers, 0
        r["gcode_state"] = state
        r["stg_cur"] = self._idle_stage
        r["mc_print_stage"] = "1"
        if state == FAILED:
            r["print_error"] = print_error
        self.nozzle.target = self.bed.target = 0.0
        self._mirror()

    # --- simulated time ----------------------------------------------------------------------------

    def pass_time(self, dt: float) -> bool:
        """Let ``dt`` simulated seconds pass; True if the job ended in them."""
        r = self.report
        speed = self.speed
        job = self.job
        ended = False
        if job is not None and job.state in (PREPARE, RUNNING):
            job.advance(dt, speed)
            if job.state == FINISH:
                self.end_job(FINISH)
                ended = True
            else:
                self.show_job(job)
        self.nozzle.step(dt)
        self.bed.step(dt)
        self.show_temps()
        if self.sensor_noise and self._rng.random() < 0.02:
            dbm = _dbm(r.get("wifi_signal"))
            if dbm is not None:
                r["wifi_signal"] = f"{dbm + self._rng.choice((-1, 1))}dBm"
        return ended

    # --- what the report shows ---------------------------------------------------------------------

    def show_job(self, job: PrintJob) -> None:
        r = self.report
        r["gcode_state"] = job.state
        r["mc_percent"] = job.percent()
        r["mc_remaining_time"] = job.remaining_min(self.speed)
        r["layer_num"] = job.layer()
        r["total_layer_num"] = job.layers
        r["stg_cur"] = {PREPARE: STAGE_PREHEATING, PAUSE: STAGE_PAUSED_BY_USER}.get(job.state, STAGE_PRINTING)
        r["mc_print_stage"] = "2"
        self._mirror()

    def _mirror(self) -> None:
        """Newer firmware repeats some fields elsewhere; keep the copies the capture has in step."""
        r = self.report
        for copy_key, key in (
            ("percent", "mc_percent"),
            ("remain_time", "mc_remaining_time"),
            ("file", "gcode_file"),
        ):
            if copy_key in r and key in r:
                r[copy_key] = r[key]
        three_d = r.get("3D")
        if isinstance(three_d, dict):
            three_d["layer_num"] = r.get("layer_num")
            three_d["total_layer_num"] = r.get("total_layer_num")

    def show_temps(self) -> None:
        r = self.report
        noise = 0.08 if self.sensor_noise else 0.0
        for heater, cur_key, tgt_key in (
            (self.nozzle, "nozzle_temper", "nozzle_target_temper"),
            (self.bed, "bed_temper", "bed_target_temper"),
        ):
            shown = heater.current + (self._rng.gauss(0.0, noise) if noise else 0.0)
            if cur_key in r:
                r[cur_key] = self._temp_value(shown, r[cur_key])
            if tgt_key in r:
                r[tgt_key] = self._temp_value(heater.target, r[tgt_key])
        device = r.get("device")
        if isinstance(device, dict):  # newer firmware packs target << 16 | current (BAMBU.md section 5)
            bed_packed = _pack(self.bed)
            bed_info = values.dig(device, "bed", "info")
            if isinstance(bed_info, dict) and "temp" in bed_info:
                bed_info["temp"] = bed_packed
            if "bed_temp" in device:
                device["bed_temp"] = bed_packed
            extruder = device.get("extruder")
            if isinstance(extruder, dict) and isinstance(extruder.get("info"), list):
                state = values.integer(extruder.get("state"), 0)
                active = (state >> 4) & 0xF if state is not None else None
                for entry in extruder["info"]:
                    if isinstance(entry, dict) and entry.get("id") == active and "temp" in entry:
                        entry["temp"] = _pack(self.nozzle)

    def _temp_value(self, value: float, before: Any) -> float | int:
        if self.profile.cjson_numbers:
            value = round(value * 32) / 32  # the ESP32 boards report 1/32 degC steps
            return int(value) if value.is_integer() else value
        value = float(round(value))  # X1/H2/P2 report whole degrees as floats
        return value if isinstance(before, float) or before is None else int(value)


def _start_print(command: str, body: dict[str, Any]) -> StartPrint:
    path = str(body.get("param") or "")
    name = str(body.get("subtask_name") or path.rsplit("/", 1)[-1] or "print")
    gcode = path if command == "gcode_file" else "/data/Metadata/" + path.rsplit("/", 1)[-1]
    stored_name = name
    if command == "gcode_file" and not body.get("subtask_name"):
        stored_name = commands.file_stem(path) or path.rsplit("/", 1)[-1] or "print"
    mapping = body.get("ams_mapping") if command == "project_file" else None
    # The AMS loads the first filament's tray (global index, 254 the external spool).
    tray = (
        next((t for t in mapping if isinstance(t, int) and not isinstance(t, bool) and t >= 0), None)
        if isinstance(mapping, list)
        else None
    )
    return StartPrint(command, name, stored_name, gcode, tray)


def _float(v: Any, default: float) -> float:
    f = values.num(v)
    return default if f is None else f


def _pack(heater: Heater) -> int:
    return (round(heater.target) & 0xFFFF) << 16 | (round(heater.current) & 0xFFFF)


def _dbm(v: Any) -> int | None:
    m = re.fullmatch(r"(-?\d+)dBm", v) if isinstance(v, str) else None
    return int(m.group(1)) if m else None
