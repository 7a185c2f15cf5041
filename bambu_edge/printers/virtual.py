"""A virtual Bambu printer: speaks the real LAN protocol (protocol/BAMBU.md sections 3-6) on an MQTT broker.

A real printer runs its own broker; here a local mosquitto plays that broker and this client plays
the printer's firmware behind it: it subscribes ``device/{serial}/request`` and publishes to
``device/{serial}/report``. Everything it says starts from a real captured report of its model
(``shared/fixtures/bambu``), so the daemon is tested against real payload shapes, not invented ones.

What differs from the capture, on purpose (``initial_report``):
  * ``gcode_state`` is ``IDLE`` at power-on (captures were taken mid-print or after one);
  * captures taken mid-print (RUNNING/PREPARE/PAUSE) get heater targets 0, as an idle printer has;
  * ``sequence_id`` is the printer's own push counter (it continues from the capture's value) and a
    full report always carries ``msg: 0`` (the H2D capture has no ``msg``).

Reports: P1/A1-style and newer models send ``msg: 1`` deltas with only the changed keys about
``report_hz`` times a second (the temperature sensors jitter, as the real P1S deltas show); X1-style
models send the full object every time (OBA). Commands are answered on the report topic with the same
type, ``command`` and ``sequence_id``, ``result`` and the request's own parameters (section 3).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import logging
import math
import random
import re
import signal
import ssl
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiomqtt
import orjson

from bambu_edge.files.gcode import read_gcode_header
from bambu_edge.files.meta import PrintFileMeta
from bambu_edge.files.threemf import read_3mf
from bambu_edge.printers.bambu import commands, models
from bambu_edge.printers.bambu.fixtures import load_fixture

log = logging.getLogger(__name__)

STATUS_COMMAND = "push_status"
ENVELOPE_KEYS = ("command", "msg", "sequence_id")
IDLE, PREPARE, RUNNING, PAUSE, FINISH, FAILED = "IDLE", "PREPARE", "RUNNING", "PAUSE", "FINISH", "FAILED"
ACTIVE_STATES = (PREPARE, RUNNING, PAUSE)

# Third-party captures (not in BAMBU.md): a user's stop leaves gcode_state FAILED with print_error
# 0x0300400C "printing was cancelled"; the next job clears it.
PRINT_ERROR_CANCELLED = 50348044
# Without Developer Mode, 2025 firmware answers unsigned control commands like this (seen in public
# client code quoting real replies). Reading status stays allowed (BAMBU.md section 11).
VERIFY_FAILED_REASON = "mqtt message verify failed"
VERIFY_FAILED_ERR_CODE = 84033543
# Allowed without Developer Mode: status reading, and get_access_code, which reports show exempt.
UNSIGNED_ALLOWED = {("system", "get_access_code")}
UNSIGNED_ALLOWED_TYPES = {"pushing", "info"}

# print_speed level -> spd_mag (%), the values Bambu Studio shows for silent/standard/sport/ludicrous.
SPEED_MAGNITUDES = {1: 50, 2: 100, 3: 124, 4: 166}
STAGE_PREHEATING, STAGE_PRINTING, STAGE_PAUSED_BY_USER = 2, 0, 16  # stg_cur (BAMBU.md section 5)

# Where project_file's url and gcode_file's param point on the printer's storage (BAMBU.md sections
# 6 and 13.4: file:///sdcard/... on legacy models, ftp:///... on newer ones; OBA also shows
# file:///mnt/sdcard and ftp:///name).
STORAGE_URL_PREFIXES = ("file:///sdcard/", "file:///mnt/sdcard/", "ftp:///", "ftp://")
STORAGE_PATH_PREFIXES = ("/sdcard/", "/mnt/sdcard/")
_PLATE_PARAM = re.compile(r"^Metadata/plate_(\d{1,4})\.gcode$")


# --- models ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Profile:
    model: str
    report_fixture: str
    version_fixture: str
    full_reports: bool  # X1 series: every push is the full object
    cjson_numbers: bool  # ESP32 firmware (P1/A1): whole numbers are printed as ints, temps in 1/32 degC
    idle_stage: int  # stg_cur when idle: -1 on X1, 255 on P1 (BAMBU.md section 5)
    version_project: str | None = None  # rewrite of the get_version project_name (see P1S)


PROFILES: dict[str, Profile] = {
    p.model: p
    for p in (
        Profile(models.X1C, "x1c_pushall_finish_multi_ams", "x1c_get_version", True, False, -1),
        Profile(models.X1, "x1_pushall_running_hms", "x1_get_version", True, False, -1),
        # No P1S get_version capture exists: the P1P one (same AP04/MC07/TH09 boards) with the P1S
        # project code C12 (BAMBU.md section 10) stands in.
        Profile(
            models.P1S, "p1s_pushall_finish_redacted", "p1p_get_version_contents", False, True, 255, "C12"
        ),
        Profile(models.P1P, "p1p_pushall_idle_contents", "p1p_get_version_contents", False, True, 255),
        Profile(models.A1, "a1_pushall_idle", "a1_get_version", False, True, 0),
        Profile(models.H2D, "h2d_pushall_running", "h2d_get_version", False, False, -1),
        Profile(models.P2S, "p2s_pushall_running", "p2s_get_version", False, False, -1),
    )
}
VIRTUAL_MODELS = tuple(PROFILES)


def profile_for(model: str) -> Profile:
    for name, profile in PROFILES.items():
        if name.lower() == model.strip().lower():
            return profile
    raise ValueError(f"unknown model {model!r}; choose one of {', '.join(VIRTUAL_MODELS)}")


def serial_prefix(model: str) -> str:
    if model == models.X1:
        return "00M"  # shared with the X1C (BAMBU.md section 10)
    return next(prefix for prefix, m in models.SERIAL_PREFIXES.items() if m == model)


def make_serial(model: str, rng: random.Random | None = None) -> str:
    """A 15-character serial with the model's prefix, e.g. ``01P09C123456789``."""
    rng = rng or random.Random()
    return serial_prefix(model) + "09C" + "".join(rng.choice("0123456789") for _ in range(9))


def _copy(obj: Any) -> Any:
    return orjson.loads(orjson.dumps(obj))


@functools.lru_cache(maxsize=16)
def _capture(name: str) -> bytes:
    # Parsed once per process: ten virtual printers of one model share it.
    return orjson.dumps(load_fixture(name))


def captured_report(model: str) -> dict[str, Any]:
    """The model's captured full report (the ``print`` object), as captured."""
    return orjson.loads(_capture(profile_for(model).report_fixture))["print"]


def initial_report(model: str) -> dict[str, Any]:
    """The ``print`` object the virtual printer powers on with (see the module docstring)."""
    report = captured_report(model)
    if report.get("gcode_state") in ACTIVE_STATES:
        for key in ("nozzle_target_temper", "bed_target_temper"):
            if key in report:
                report[key] = 0.0 if isinstance(report[key], float) else 0
    report["gcode_state"] = IDLE
    return report


def version_reply(model: str, serial: str, sequence_id: Any) -> dict[str, Any]:
    """The model's captured get_version reply, with this printer's serial and the request's id."""
    profile = profile_for(model)
    info = orjson.loads(_capture(profile.version_fixture))["info"]
    for module in info.get("module", []):
        if module.get("name") == "ota":
            module["sn"] = serial  # the capture's serial is redacted; a printer reports its own
        if profile.version_project and module.get("project_name") == "C11":
            module["project_name"] = profile.version_project
    info["sequence_id"] = sequence_id
    return {"info": info}


# --- report diffs ----------------------------------------------------------------------------------


def _id_list(items: Any) -> list[Any] | None:
    if not isinstance(items, list) or not all(isinstance(i, dict) and "id" in i for i in items):
        return None
    return [i["id"] for i in items]


def diff_report(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """Keys of ``new`` whose values differ from ``old``, recursively. Lists of objects with the same
    ``id`` sequence are diffed per item as ``{"id": ..., changed keys}`` (BAMBU.md section 4); other
    lists are sent whole."""
    out: dict[str, Any] = {}
    for key, value in new.items():
        if key not in old:
            out[key] = value
            continue
        before = old[key]
        if before == value and type(before) is type(value):
            continue
        if isinstance(before, dict) and isinstance(value, dict):
            sub = diff_report(before, value)
            if sub:
                out[key] = sub
        elif (ids := _id_list(value)) is not None and ids == _id_list(before):
            items = []
            for b, v in zip(before, value, strict=True):
                sub = diff_report(b, v)
                if sub:
                    items.append({"id": v["id"], **sub})
            out[key] = items
        else:
            out[key] = value
    return out


# --- simulation ------------------------------------------------------------------------------------


@dataclass
class Heater:
    current: float
    target: float
    ambient: float
    tau_heat_s: float
    tau_cool_s: float

    def step(self, dt: float) -> None:
        goal = max(self.target, self.ambient)
        tau = self.tau_heat_s if goal > self.current else self.tau_cool_s
        self.current += (goal - self.current) * (1.0 - math.exp(-dt / max(tau, 1e-3)))


@dataclass
class PrintJob:
    """One simulated print. ``work_s`` counts seconds at 100 % speed; ``duration_s`` includes preparing."""

    name: str
    duration_s: float
    layers: int
    gcode_file: str
    nozzle_target: float
    bed_target: float
    prepare_s: float
    work_s: float = 0.0
    state: str = PREPARE

    def advance(self, dt: float, speed_pct: float) -> None:
        if self.state == PREPARE:
            self.work_s += dt  # heating and levelling do not speed up with the speed profile
            if self.work_s >= self.prepare_s:
                self.state = RUNNING
        elif self.state == RUNNING:
            self.work_s += dt * speed_pct / 100.0
            if self.work_s >= self.duration_s:
                self.work_s = self.duration_s
                self.state = FINISH

    @property
    def fraction(self) -> float:
        printing = max(self.duration_s - self.prepare_s, 1e-6)
        return min(max((self.work_s - self.prepare_s) / printing, 0.0), 1.0)

    def percent(self) -> int:
        return 100 if self.state == FINISH else min(int(self.fraction * 100), 99)

    def layer(self) -> int:
        if self.state == FINISH:
            return self.layers
        if self.state == PREPARE or self.work_s < self.prepare_s:
            return 0
        return min(max(math.ceil(self.fraction * self.layers), 1), self.layers)

    def remaining_min(self, speed_pct: float) -> int:
        if self.state == FINISH:
            return 0
        left = max(self.duration_s - max(self.work_s, self.prepare_s), 0.0)
        return math.ceil(left / (speed_pct / 100.0) / 60.0)


DEMO_JOBS = (
    ("3DBenchy", 240),
    ("Cable clip x8", 36),
    ("Gridfinity bin 2x3", 180),
    ("Phone stand", 310),
    ("Planter self-watering", 420),
)


# --- the printer -----------------------------------------------------------------------------------


class VirtualPrinter:
    """One virtual printer on an MQTT broker. ``start()``/``stop()`` own its background tasks."""

    def __init__(
        self,
        host: str,
        port: int,
        serial: str,
        access_code: str,
        model: str,
        ca_file: str | None = None,
        *,
        report_hz: float = 1.0,
        developer_mode: bool = True,
        demo_prints: bool = False,
        demo_print_s: float = 600.0,
        demo_phase: float = 0.0,
        demo_pause_s: float = 30.0,
        sensor_noise: bool = True,
        seed: int | None = None,
        connect_timeout: float = 10.0,
        sdcard_dir: str | Path | None = None,
        time_scale: float = 1.0,
    ):
        """``sdcard_dir``: the folder that plays the printer's storage (what its FTPS server
        serves); with it, ``project_file``/``gcode_file`` print the named file with the timing in its
        metadata, times ``time_scale`` (0.001: a one-hour slice takes 3.6 s). Without it they print a
        stand-in job of ``demo_print_s``."""
        self.profile = profile_for(model)
        self.model = self.profile.model
        self.host, self.port = host, port
        self.serial, self.access_code = serial, access_code
        self.ca_file = ca_file
        self.report_hz = max(float(report_hz), 0.1)
        self.developer_mode = developer_mode
        self.demo_prints = demo_prints
        self.demo_print_s = demo_print_s
        self.demo_phase = min(max(demo_phase, 0.0), 0.99)
        self.demo_pause_s = demo_pause_s
        self.sensor_noise = sensor_noise
        self.connect_timeout = connect_timeout
        self.sdcard_dir = Path(sdcard_dir) if sdcard_dir is not None else None
        self.time_scale = max(float(time_scale), 1e-6)
        self.request_topic = f"device/{serial}/request"
        self.report_topic = f"device/{serial}/report"
        self.received: list[dict[str, Any]] = []  # every request payload, parsed, in arrival order

        self._rng = random.Random(seed if seed is not None else serial)
        self.report: dict[str, Any] = initial_report(self.model)
        self._published: dict[str, Any] = _copy(self.report)  # what subscribers have merged so far
        try:
            self._counter = int(self.report.get("sequence_id", 0))
        except (TypeError, ValueError):
            self._counter = 0
        self._idle_stage = self.report.get("stg_cur", self.profile.idle_stage)
        if captured_report(self.model).get("gcode_state") in ACTIVE_STATES:
            self._idle_stage = self.profile.idle_stage
        self.nozzle = self._heater("nozzle_temper", "nozzle_target_temper", tau_cool=30.0)
        self.bed = self._heater("bed_temper", "bed_target_temper", tau_cool=90.0)
        self.job: PrintJob | None = None
        self._job_ended = asyncio.Event()

        self._client: aiomqtt.Client | None = None
        self._connected = asyncio.Event()
        self._publish_lock = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []
        self._last_error: BaseException | None = None

    def _heater(self, current_key: str, target_key: str, tau_cool: float) -> Heater:
        current = _float(self.report.get(current_key), 25.0)
        target = _float(self.report.get(target_key), 0.0)
        # A cold capture's temperatures are its room; a hot one cools towards 25 degC.
        ambient = current if target <= 0 and current < 45 else 25.0
        return Heater(current, target, ambient, tau_heat_s=15.0, tau_cool_s=tau_cool)

    # --- lifecycle ---------------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    @property
    def gcode_state(self) -> str:
        return str(self.report.get("gcode_state"))

    async def start(self) -> None:
        """Start the tasks and wait (``connect_timeout``) until the broker accepts the first connection."""
        if self._tasks:
            return
        self._tasks = [
            asyncio.create_task(self._mqtt_loop(), name=f"virtual-{self.serial}-mqtt"),
            asyncio.create_task(self._tick_loop(), name=f"virtual-{self.serial}-tick"),
        ]
        if self.demo_prints:
            self._tasks.append(asyncio.create_task(self._demo_loop(), name=f"virtual-{self.serial}-demo"))
        try:
            await asyncio.wait_for(self._connected.wait(), self.connect_timeout)
        except TimeoutError:
            error = self._last_error
            await self.stop()
            raise ConnectionError(
                f"virtual printer {self.serial}: no connection to {self.host}:{self.port}: {error}"
            ) from None

    async def stop(self) -> None:
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            # On Python 3.11, asyncio.wait_for (inside aiomqtt's publish) can swallow a cancel that
            # lands as the publish completes; the loop then runs on. Cancel again until it ends.
            while not task.done():
                await asyncio.wait({task}, timeout=0.5)
                if not task.done():
                    task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def __aenter__(self) -> VirtualPrinter:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def _tls_context(self) -> ssl.SSLContext:
        if self.ca_file:
            ctx = ssl.create_default_context(cafile=self.ca_file)
            ctx.check_hostname = False  # the broker's certificate names a serial, we dial an address
        else:
            # A test/demo tool on loopback with no CA given: encrypt, but do not verify.
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        return ctx

    async def _mqtt_loop(self) -> None:
        backoff = 0.2
        while True:
            try:
                async with aiomqtt.Client(
                    self.host,
                    self.port,
                    username="bblp",
                    password=self.access_code,
                    identifier=f"virtual-{self.serial}-{self._rng.getrandbits(32):08x}",
                    tls_context=self._tls_context(),
                    keepalive=30,
                ) as client:
                    await client.subscribe(self.request_topic, qos=1)
                    self._client = client
                    self._connected.set()
                    backoff = 0.2
                    log.info(
                        "virtual %s %s connected to %s:%s", self.model, self.serial, self.host, self.port
                    )
                    async for message in client.messages:
                        await self._on_request(message.payload)
            except aiomqtt.MqttError as e:
                self._last_error = e
                log.debug("virtual %s: connection: %s", self.serial, e)
            finally:
                self._client = None
                self._connected.clear()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 5.0)

    # --- publishing --------------------------------------------------------------------------------

    async def _publish(self, message: Mapping[str, Any] | bytes) -> None:
        client = self._client
        if client is None:
            return  # like a printer whose broker has no subscribers: the message is simply gone
        payload = message if isinstance(message, bytes) else orjson.dumps(message)
        try:
            await client.publish(self.report_topic, payload, qos=0)
        except aiomqtt.MqttError as e:
            log.debug("virtual %s: publish failed: %s", self.serial, e)

    def _next_sequence(self) -> str:
        self._counter += 1
        return str(self._counter)

    async def publish_full(self) -> None:
        """A full report (``msg: 0``), as the answer to ``pushing.pushall``."""
        async with self._publish_lock:
            self.report["command"] = STATUS_COMMAND
            self.report["msg"] = 0
            self.report["sequence_id"] = self._next_sequence()
            self._published = _copy(self.report)
            await self._publish({"print": self.report})

    async def publish_changes(self) -> None:
        """What changed since the last report: a delta (``msg: 1``), or the full object on X1-style models."""
        if self.profile.full_reports:
            await self.publish_full()
            return
        async with self._publish_lock:
            changes = diff_report(self._published, self.report)
            for key in ENVELOPE_KEYS:
                changes.pop(key, None)
            if not changes:
                return
            await self._send_delta(changes)

    async def _send_delta(self, changes: dict[str, Any]) -> None:
        # Field order as in the real P1S deltas: changed fields first, then the envelope.
        delta = {**changes, "command": STATUS_COMMAND, "msg": 1, "sequence_id": self._next_sequence()}
        _deep_update(self._published, changes)
        await self._publish({"print": delta})

    async def publish_raw(self, payload: bytes) -> None:
        """Publish any bytes on the report topic (tests: junk, fragments, foreign captures)."""
        await self._publish(payload)

    async def set_fields(self, **fields: Any) -> dict[str, Any]:
        """Set ``print`` fields and push them at once as one delta (``msg: 1``, only what changed), on
        every model. Returns the delta's fields. Temperatures also move the simulated heaters."""
        for key, heater, attr in (
            ("nozzle_temper", self.nozzle, "current"),
            ("nozzle_target_temper", self.nozzle, "target"),
            ("bed_temper", self.bed, "current"),
            ("bed_target_temper", self.bed, "target"),
        ):
            if key in fields and isinstance(fields[key], int | float):
                setattr(heater, attr, float(fields[key]))
        _deep_update(self.report, _copy(fields))
        async with self._publish_lock:
            changes = diff_report(self._published, self.report)
            changes = {k: v for k, v in changes.items() if k in fields}
            if changes:
                await self._send_delta(changes)
        return changes

    # --- simulation --------------------------------------------------------------------------------

    async def _tick_loop(self) -> None:
        loop = asyncio.get_running_loop()
        period = 1.0 / self.report_hz
        last = loop.time()
        while True:
            await asyncio.sleep(period)
            now = loop.time()
            self._advance(now - last)
            last = now
            if self.connected:
                await self.publish_changes()

    def _advance(self, dt: float) -> None:
        r = self.report
        speed = _float(r.get("spd_mag"), 100.0) or 100.0
        job = self.job
        if job is not None and job.state in (PREPARE, RUNNING):
            job.advance(dt, speed)
            if job.state == FINISH:
                self._end_job(FINISH)
            else:
                self._show_job(job, speed)
        self.nozzle.step(dt)
        self.bed.step(dt)
        self._show_temps()
        if self.sensor_noise and self._rng.random() < 0.02:
            dbm = _dbm(r.get("wifi_signal"))
            if dbm is not None:
                r["wifi_signal"] = f"{dbm + self._rng.choice((-1, 1))}dBm"

    def _show_job(self, job: PrintJob, speed: float) -> None:
        r = self.report
        r["gcode_state"] = job.state
        r["mc_percent"] = job.percent()
        r["mc_remaining_time"] = job.remaining_min(speed)
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

    def _show_temps(self) -> None:
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
            bed_info = _dig(device, "bed", "info")
            if isinstance(bed_info, dict) and "temp" in bed_info:
                bed_info["temp"] = bed_packed
            if "bed_temp" in device:
                device["bed_temp"] = bed_packed
            extruder = device.get("extruder")
            if isinstance(extruder, dict) and isinstance(extruder.get("info"), list):
                active = (_int(extruder.get("state")) >> 4) & 0xF
                for entry in extruder["info"]:
                    if isinstance(entry, dict) and entry.get("id") == active and "temp" in entry:
                        entry["temp"] = _pack(self.nozzle)

    def _temp_value(self, value: float, before: Any) -> float | int:
        if self.profile.cjson_numbers:
            value = round(value * 32) / 32  # the ESP32 boards report 1/32 degC steps
            return int(value) if value.is_integer() else value
        value = float(round(value))  # X1/H2/P2 report whole degrees as floats
        return value if isinstance(before, float) or before is None else int(value)

    def _end_job(self, state: str, print_error: int = PRINT_ERROR_CANCELLED) -> None:
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
        self._job_ended.set()
        self.nozzle.target = self.bed.target = 0.0
        self._mirror()

    async def simulate_print(
        self,
        name: str,
        duration_s: float,
        layers: int,
        *,
        gcode_file: str = "/data/Metadata/plate_1.gcode",
        nozzle_target: float = 220.0,
        bed_target: float = 55.0,
        start_fraction: float = 0.0,
        publish: bool = True,
        tray: int | None = None,
    ) -> PrintJob:
        """Start a print now: PREPARE (heating) -> RUNNING -> FINISH over ``duration_s`` at 100 % speed.
        ``start_fraction`` starts part-way (0..1), e.g. so demo printers are at different phases.
        ``tray``: the global tray index (``ams.tray_now``) loaded for the print; None leaves it."""
        duration_s = max(float(duration_s), 0.1)
        prepare_s = min(max(duration_s * 0.1, 0.05), 60.0)
        job = PrintJob(
            name=name,
            duration_s=duration_s,
            layers=max(int(layers), 1),
            gcode_file=gcode_file,
            nozzle_target=nozzle_target,
            bed_target=bed_target,
            prepare_s=prepare_s,
        )
        # Heat up within the preparing phase, however short the simulated print is.
        self.nozzle.tau_heat_s = min(max(prepare_s / 4, 0.05), 15.0)
        self.bed.tau_heat_s = min(max(prepare_s / 4, 0.05), 25.0)
        self.nozzle.target, self.bed.target = nozzle_target, bed_target
        if start_fraction > 0:
            job.advance(prepare_s, 100.0)
            job.work_s = prepare_s + (duration_s - prepare_s) * min(start_fraction, 0.99)
            self.nozzle.current, self.bed.current = nozzle_target, bed_target
        self.job = job
        self._job_ended.clear()
        r = self.report
        r["subtask_name"] = name
        r["gcode_file"] = gcode_file
        r["print_type"] = "local"
        if "print_error" in r:
            r["print_error"] = 0
        if tray is not None and isinstance(r.get("ams"), dict):
            r["ams"]["tray_now"] = str(int(tray))  # a string, as in the captures
        self._show_job(job, _float(r.get("spd_mag"), 100.0) or 100.0)
        self._show_temps()
        if publish and self.connected:
            await self.publish_changes()
        return job

    async def fail_print(self, print_error: int, hms: list[dict[str, int]] | None = None) -> None:
        """The running print fails: FAILED with this ``print_error`` (e.g. 117473286, 0700_8006) and
        these HMS alarms (``[{"attr": ..., "code": ...}]``, BAMBU.md section 5.2), pushed at once."""
        if hms is not None:
            self.report["hms"] = hms
        if self.job is not None and self.job.state in ACTIVE_STATES:
            self._end_job(FAILED, print_error)
        if self.connected:
            await self.publish_changes()

    async def _demo_loop(self) -> None:
        """Print demo jobs forever: print, a pause showing FINISH, the next one. User commands win:
        a paused job waits; a stopped one is followed by the next after the pause."""
        index = self._rng.randrange(len(DEMO_JOBS))
        phase = self.demo_phase
        while True:
            name, layers = DEMO_JOBS[index % len(DEMO_JOBS)]
            index += 1
            if self.job is None or self.job.state not in ACTIVE_STATES:
                await self.simulate_print(name, self.demo_print_s, layers, start_fraction=phase)
            phase = 0.0
            if self.job is not None and self.job.state in ACTIVE_STATES:
                await self._job_ended.wait()
            await asyncio.sleep(self.demo_pause_s)

    # --- commands ----------------------------------------------------------------------------------

    async def _on_request(self, payload: bytes | bytearray | Any) -> None:
        try:
            message = orjson.loads(payload)
        except (orjson.JSONDecodeError, TypeError):
            log.warning("virtual %s: request is not JSON, ignored", self.serial)
            return
        if not isinstance(message, dict) or len(message) != 1:
            log.warning("virtual %s: request is not a one-key JSON object, ignored", self.serial)
            return
        self.received.append(message)
        kind, body = next(iter(message.items()))
        if not isinstance(body, dict) or not isinstance(body.get("command"), str):
            log.warning("virtual %s: request without a command, ignored", self.serial)
            return
        try:
            await self._dispatch(kind, body["command"], body)
        except Exception:  # a command must never take the printer down
            log.exception("virtual %s: command %s.%s failed", self.serial, kind, body["command"])

    async def _reply(self, kind: str, body: Mapping[str, Any], result: str, **extra: Any) -> None:
        await self._publish({kind: {**body, "result": result, **extra}})

    async def _dispatch(self, kind: str, command: str, body: dict[str, Any]) -> None:
        if kind == "pushing":
            # The answer to pushall (and to HAB's "start" keep-alive) is the full report itself.
            if command in ("pushall", "start"):
                await self.publish_full()
            return
        if kind == "info" and command == "get_version":
            await self._publish(version_reply(self.model, self.serial, body.get("sequence_id")))
            return
        if kind == "system" and command == "get_access_code":
            await self._reply(kind, body, "success", access_code=self.access_code)
            return
        allowed = kind in UNSIGNED_ALLOWED_TYPES or (kind, command) in UNSIGNED_ALLOWED
        if not self.developer_mode and not allowed:
            await self._reply(
                kind, body, "failed", reason=VERIFY_FAILED_REASON, err_code=VERIFY_FAILED_ERR_CODE
            )
            return
        failure = await self._apply_command(kind, command, body)
        if failure:
            await self._reply(kind, body, "failed", reason=failure)
        else:
            await self._reply(kind, body, "success")
        if self.connected:
            await self.publish_changes()  # state changes follow the reply as a push (BAMBU.md section 6)

    async def _apply_command(self, kind: str, command: str, body: dict[str, Any]) -> str | None:
        """Apply a command; a reason string if it is refused. Unknown commands are acknowledged."""
        job = self.job
        if kind == "print":
            if command == "pause":
                if job is not None and job.state in (PREPARE, RUNNING):
                    job.state = PAUSE
                    self._show_job(job, _float(self.report.get("spd_mag"), 100.0) or 100.0)
            elif command == "resume":
                if job is not None and job.state == PAUSE:
                    job.state = RUNNING if job.work_s >= job.prepare_s else PREPARE
                    self._show_job(job, _float(self.report.get("spd_mag"), 100.0) or 100.0)
            elif command == "stop":
                if job is not None and job.state in ACTIVE_STATES:
                    self._end_job(FAILED)
            elif command == "print_speed":
                level = _int(body.get("param"))
                if level not in SPEED_MAGNITUDES:
                    return f"invalid speed level {body.get('param')!r}"  # our choice; no capture
                self.report.update(spd_lvl=level, spd_mag=SPEED_MAGNITUDES[level])
                if job is not None and job.state in ACTIVE_STATES:  # the estimate follows at once
                    self._show_job(job, SPEED_MAGNITUDES[level])
            elif command == "gcode_line":
                self._gcode(str(body.get("param", "")))
            elif command in ("project_file", "gcode_file"):
                if job is not None and job.state in ACTIVE_STATES:
                    return "printer is busy"  # our choice; no capture of a real refusal
                path = str(body.get("param") or "")
                name = str(body.get("subtask_name") or path.rsplit("/", 1)[-1] or "print")
                gcode = path if command == "gcode_file" else "/data/Metadata/" + path.rsplit("/", 1)[-1]
                duration, layers = self.demo_print_s, 100
                mapping = body.get("ams_mapping") if command == "project_file" else None
                # The AMS loads the first filament's tray (global index, 254 the external spool).
                tray = (
                    next(
                        (t for t in mapping if isinstance(t, int) and not isinstance(t, bool) and t >= 0),
                        None,
                    )
                    if isinstance(mapping, list)
                    else None
                )
                if self.sdcard_dir is not None:
                    planned = await self._plan_from_storage(command, body)
                    if isinstance(planned, str):
                        return planned
                    duration, layers = planned
                    if command == "gcode_file" and not body.get("subtask_name"):
                        name = commands.file_stem(path) or path.rsplit("/", 1)[-1] or "print"
                # The reply goes first; the new state follows it as a push (BAMBU.md section 6).
                await self.simulate_print(name, duration, layers, gcode_file=gcode, publish=False, tray=tray)
            elif command == "skip_objects" and isinstance(body.get("obj_list"), list):
                self.report["s_obj"] = body["obj_list"]
        elif kind == "system":
            if command == "ledctrl":
                node, mode = body.get("led_node"), body.get("led_mode")
                if not isinstance(node, str) or mode not in ("on", "off", "flashing"):
                    return "invalid led_node or led_mode"
                self._set_light(node, mode)
        return None

    async def _plan_from_storage(self, command: str, body: Mapping[str, Any]) -> tuple[float, int] | str:
        """(duration_s, layers) of the file a print command names on ``sdcard_dir``, or why the
        printer refuses it. The refusal texts are our choice: no capture of a real one exists."""
        if command == "project_file":
            rel = storage_path_from_url(body.get("url"))
            plate = plate_from_param(body.get("param"))
            if plate is None:
                return f"invalid param {str(body.get('param'))[:80]!r}; expected Metadata/plate_<n>.gcode"
        else:
            rel = storage_path_from_gcode_param(body.get("param"))
            plate = None
        if rel is None:
            return "file url not understood"
        local = resolve_storage_file(self.sdcard_dir, rel)  # type: ignore[arg-type]
        if local is None or not await asyncio.to_thread(local.is_file):
            return f"file not found on the printer's storage: /{rel}"
        try:
            meta = await asyncio.to_thread(_read_print_file, local, command)
        except Exception as e:  # a file the firmware cannot read: it refuses, it does not crash
            return f"cannot read /{rel}: {str(e)[:120]}"
        if plate is not None:
            found = meta.plate(plate)
            if found is None or not found.gcode_path:
                return f"/{rel} has no sliced plate {plate}"
            prediction, layers = found.prediction_s, found.layers
        else:
            first = meta.plates[0] if meta.plates else None
            prediction, layers = (first.prediction_s, first.layers) if first else (None, None)
        duration = prediction * self.time_scale if prediction else self.demo_print_s
        return duration, layers or 100

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


# --- helpers ---------------------------------------------------------------------------------------


def storage_path_from_url(url: Any) -> str | None:
    """The storage-relative path a project_file url names ("cache/x.3mf"); None if not understood."""
    if not isinstance(url, str):
        return None
    for prefix in STORAGE_URL_PREFIXES:
        if url.startswith(prefix):
            return url[len(prefix) :].lstrip("/") or None
    return None


def storage_path_from_gcode_param(param: Any) -> str | None:
    if not isinstance(param, str):
        return None
    for prefix in STORAGE_PATH_PREFIXES:
        if param.startswith(prefix):
            return param[len(prefix) :].lstrip("/") or None
    return param.lstrip("/") or None


def plate_from_param(param: Any) -> int | None:
    m = _PLATE_PARAM.match(param) if isinstance(param, str) else None
    return int(m.group(1)) if m else None


def resolve_storage_file(root: Path, rel: str) -> Path | None:
    """``rel`` inside ``root``, or None if it would leave it (``..``, absolute, NUL)."""
    if "\0" in rel or any(part == ".." for part in rel.split("/")):
        return None
    base = root.resolve()
    target = (base / rel).resolve()
    return target if target.is_relative_to(base) and target != base else None


def _read_print_file(path: Path, command: str) -> PrintFileMeta:
    # The file readers of the daemon itself: a virtual printer reads a 3MF as safely as we do.
    if command == "project_file":
        return read_3mf(path, geometry=False)
    return read_gcode_header(path)


def _deep_update(target: dict[str, Any], changes: Mapping[str, Any]) -> None:
    """Apply a delta the way a client merges it: dicts key by key, ``id``-keyed lists by item."""
    for key, value in changes.items():
        before = target.get(key)
        if isinstance(before, dict) and isinstance(value, dict):
            _deep_update(before, value)
        elif _id_list(before) is not None and _id_list(value) is not None:
            by_id = {item["id"]: item for item in before}
            for item in value:
                if item["id"] in by_id:
                    _deep_update(by_id[item["id"]], item)
                else:
                    before.append(_copy(item))
        else:
            target[key] = _copy(value) if isinstance(value, dict | list) else value


def _dig(d: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(d, dict):
            return None
        d = d.get(key)
    return d


def _float(v: Any, default: float) -> float:
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else default


def _int(v: Any) -> int:
    try:
        return int(v)
    except (TypeError, ValueError):
        return -1


def _pack(heater: Heater) -> int:
    return (round(heater.target) & 0xFFFF) << 16 | (round(heater.current) & 0xFFFF)


def _dbm(v: Any) -> int | None:
    m = re.fullmatch(r"(-?\d+)dBm", v) if isinstance(v, str) else None
    return int(m.group(1)) if m else None


# --- command line ----------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="bambu-edge virtual-printer",
        description="Run a virtual Bambu printer that speaks the LAN protocol on an MQTT broker.",
    )
    p.add_argument("--host", default="127.0.0.1", help="broker address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8883, help="broker TLS port (default 8883)")
    p.add_argument("--model", default=models.P1S, help=f"one of {', '.join(VIRTUAL_MODELS)} (default P1S)")
    p.add_argument("--serial", help="serial number (default: a new one with the model's prefix)")
    p.add_argument("--access-code", required=True, help="the broker password of user bblp")
    p.add_argument("--ca-file", help="CA that signed the broker's certificate (default: do not verify)")
    p.add_argument("--hz", type=float, default=1.0, help="reports per second (default 1)")
    p.add_argument(
        "--developer-mode",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="accept control commands (default); --no-developer-mode refuses them like 2025 firmware",
    )
    p.add_argument("--demo-prints", action="store_true", help="print demo jobs in a loop")
    p.add_argument("--demo-print-s", type=float, default=600.0, help="length of one demo print in seconds")
    p.add_argument(
        "--sdcard-dir", help="folder playing the printer's storage: print commands print the files in it"
    )
    p.add_argument(
        "--time-scale",
        type=float,
        default=1.0,
        help="print time = the file's estimate times this (default 1)",
    )
    return p


def virtual_printer_main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    try:
        profile = profile_for(args.model)
    except ValueError as e:
        print(f"bambu-edge virtual-printer: {e}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    printer = VirtualPrinter(
        args.host,
        args.port,
        args.serial or make_serial(profile.model),
        args.access_code,
        profile.model,
        args.ca_file,
        report_hz=args.hz,
        developer_mode=args.developer_mode,
        demo_prints=args.demo_prints,
        demo_print_s=args.demo_print_s,
        sdcard_dir=args.sdcard_dir,
        time_scale=args.time_scale,
    )

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await printer.start()
        print(
            f"virtual {printer.model} {printer.serial} on {args.host}:{args.port} "
            f"(topics device/{printer.serial}/...); Ctrl-C stops it",
            flush=True,
        )
        try:
            await stop.wait()
        finally:
            await printer.stop()

    try:
        asyncio.run(run())
    except (ConnectionError, OSError) as e:
        print(f"bambu-edge virtual-printer: {e}", file=sys.stderr)
        return 1
    return 0
