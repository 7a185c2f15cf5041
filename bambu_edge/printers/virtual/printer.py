"""One virtual Bambu printer on an MQTT broker: its firmware (firmware.py) behind a real MQTT
session (transport.py), its simulated time (clock.py), and how it reports (BAMBU.md sections 3-6).

A real printer runs its own broker; here a local mosquitto plays that broker and this client plays
the printer's firmware behind it. P1/A1-style and newer models send ``msg: 1`` deltas with only the
changed keys about ``report_hz`` times a second (the temperature sensors jitter, as the real P1S
deltas show); X1-style models send the full object every time (OBA).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson

from bambu_edge.printers.bambu.protocol import ACTIVE_PRINT_STATES, FINISH, PAUSE, PRINT_ERROR_CANCELLED
from bambu_edge.printers.virtual.clock import SimClock
from bambu_edge.printers.virtual.firmware import (
    VERIFY_FAILED_ERR_CODE,
    VERIFY_FAILED_REASON,
    Firmware,
    StartPrint,
)
from bambu_edge.printers.virtual.physics import PrintJob
from bambu_edge.printers.virtual.profiles import version_reply
from bambu_edge.printers.virtual.reports import copy, deep_update, diff_report
from bambu_edge.printers.virtual.storage import plan_from_storage
from bambu_edge.printers.virtual.transport import MqttTransport

log = logging.getLogger("bambu_edge.printers.virtual")

STATUS_COMMAND = "push_status"
ENVELOPE_KEYS = ("command", "msg", "sequence_id")

DEMO_JOBS = (
    ("3DBenchy", 240),
    ("Cable clip x8", 36),
    ("Gridfinity bin 2x3", 180),
    ("Phone stand", 310),
    ("Planter self-watering", 420),
)


class VirtualPrinter(Firmware):
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
        held: bool = False,
    ):
        """``sdcard_dir``: the folder that plays the printer's storage (what its FTPS server
        serves); with it, ``project_file``/``gcode_file`` print the named file with the timing in its
        metadata, times ``time_scale`` (0.001: a one-hour slice takes 3.6 s). Without it they print a
        stand-in job of ``demo_print_s``. ``held``: simulated time stands still until ``advance()``
        or ``finish()`` moves it (tests); reports still go out ``report_hz`` times a second."""
        super().__init__(model, serial, sensor_noise=sensor_noise, seed=seed)
        self.serial, self.access_code = serial, access_code
        self.report_hz = max(float(report_hz), 0.1)
        self.developer_mode = developer_mode
        self.demo_prints = demo_prints
        self.demo_print_s = demo_print_s
        self.demo_phase = min(max(demo_phase, 0.0), 0.99)
        self.demo_pause_s = demo_pause_s
        self.connect_timeout = connect_timeout
        self.sdcard_dir = Path(sdcard_dir) if sdcard_dir is not None else None
        self.time_scale = max(float(time_scale), 1e-6)
        self.clock = SimClock(held=held)
        self.transport = MqttTransport(
            host,
            port,
            serial,
            access_code,
            ca_file,
            on_request=self._on_request,
            identifier=lambda: f"virtual-{serial}-{self._rng.getrandbits(32):08x}",
            label=f"{self.model} {serial}",
        )
        self.received: list[dict[str, Any]] = []  # every request payload, parsed, in arrival order

        self._published: dict[str, Any] = copy(self.report)  # what subscribers have merged so far
        try:
            self._counter = int(self.report.get("sequence_id", 0))
        except (TypeError, ValueError):
            self._counter = 0
        self._job_ended = asyncio.Event()
        self._publish_lock = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def host(self) -> str:
        return self.transport.host

    @property
    def port(self) -> int:
        return self.transport.port

    @property
    def ca_file(self) -> str | None:
        return self.transport.ca_file

    @property
    def request_topic(self) -> str:
        return self.transport.request_topic

    @property
    def report_topic(self) -> str:
        return self.transport.report_topic

    @property
    def connected(self) -> bool:
        return self.transport.connected.is_set()

    # --- lifecycle ---------------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the tasks and wait (``connect_timeout``) until the broker accepts the first connection."""
        if self._tasks:
            return
        self._tasks = [
            asyncio.create_task(self.transport.run(), name=f"virtual-{self.serial}-mqtt"),
            asyncio.create_task(self._tick_loop(), name=f"virtual-{self.serial}-tick"),
        ]
        if self.demo_prints:
            self._tasks.append(asyncio.create_task(self._demo_loop(), name=f"virtual-{self.serial}-demo"))
        try:
            await asyncio.wait_for(self.transport.connected.wait(), self.connect_timeout)
        except TimeoutError:
            error = self.transport.last_error
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

    # --- publishing --------------------------------------------------------------------------------

    async def _publish(self, message: Mapping[str, Any] | bytes) -> None:
        await self.transport.publish(message if isinstance(message, bytes) else orjson.dumps(message))

    def _next_sequence(self) -> str:
        self._counter += 1
        return str(self._counter)

    async def publish_full(self) -> None:
        """A full report (``msg: 0``), as the answer to ``pushing.pushall``."""
        async with self._publish_lock:
            self.report["command"] = STATUS_COMMAND
            self.report["msg"] = 0
            self.report["sequence_id"] = self._next_sequence()
            self._published = copy(self.report)
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
        deep_update(self._published, changes)
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
        deep_update(self.report, copy(fields))
        async with self._publish_lock:
            changes = diff_report(self._published, self.report)
            changes = {k: v for k, v in changes.items() if k in fields}
            if changes:
                await self._send_delta(changes)
        return changes

    # --- simulated time ----------------------------------------------------------------------------

    async def _tick_loop(self) -> None:
        loop = asyncio.get_running_loop()
        period = 1.0 / self.report_hz
        self.clock.tick(loop.time())
        while True:
            await asyncio.sleep(period)
            self.pass_time(self.clock.tick(loop.time()))
            if self.connected:
                await self.publish_changes()

    def hold(self) -> None:
        """Stop simulated time: the print stays where it is until ``advance``/``finish``."""
        self.clock.hold()

    def run_clock(self) -> None:
        """Let simulated time follow real time again."""
        self.clock.run()

    async def advance(self, seconds: float, steps: int = 1) -> None:
        """Let ``seconds`` of simulated time pass at once, in ``steps`` equal steps, each pushed as
        a report (as the printer's periodic reports would have shown them)."""
        for _ in range(max(int(steps), 1)):
            self.pass_time(seconds / max(int(steps), 1))
            if self.connected:
                await self.publish_changes()

    async def finish(self, steps: int = 1) -> PrintJob:
        """Run the current job (preparing or printing) to its end now: FINISH, reported. A paused
        job must be resumed first, as on the printer."""
        job = self.job
        if job is None or job.state not in ACTIVE_PRINT_STATES or job.state == PAUSE:
            raise RuntimeError(f"virtual {self.serial}: no preparing or printing job to finish")
        while job.state != FINISH:
            await self.advance(job.seconds_left(self.speed) + 1e-6, steps)
            steps = 1
        return job

    # --- prints ------------------------------------------------------------------------------------

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
        job = self.start_print(
            name,
            duration_s,
            layers,
            gcode_file=gcode_file,
            nozzle_target=nozzle_target,
            bed_target=bed_target,
            start_fraction=start_fraction,
            tray=tray,
        )
        self._job_ended.clear()
        if publish and self.connected:
            await self.publish_changes()
        return job

    async def fail_print(self, print_error: int, hms: list[dict[str, int]] | None = None) -> None:
        """The running print fails: FAILED with this ``print_error`` (e.g. 117473286, 0700_8006) and
        these HMS alarms (``[{"attr": ..., "code": ...}]``, BAMBU.md section 5.2), pushed at once."""
        self.fail(print_error, hms)
        if self.connected:
            await self.publish_changes()

    def end_job(self, state: str, print_error: int = PRINT_ERROR_CANCELLED) -> None:
        super().end_job(state, print_error)
        self._job_ended.set()  # the demo loop's cue for the next job

    async def _demo_loop(self) -> None:
        """Print demo jobs forever: print, a pause showing FINISH, the next one. User commands win:
        a paused job waits; a stopped one is followed by the next after the pause."""
        index = self._rng.randrange(len(DEMO_JOBS))
        phase = self.demo_phase
        while True:
            name, layers = DEMO_JOBS[index % len(DEMO_JOBS)]
            index += 1
            if self.job is None or self.job.state not in ACTIVE_PRINT_STATES:
                await self.simulate_print(name, self.demo_print_s, layers, start_fraction=phase)
            phase = 0.0
            if self.job is not None and self.job.state in ACTIVE_PRINT_STATES:
                await self._job_ended.wait()
            await asyncio.sleep(self.demo_pause_s)

    # --- requests ----------------------------------------------------------------------------------

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
        if not self.developer_mode and self.refuses_unsigned(kind, command):
            await self._reply(
                kind, body, "failed", reason=VERIFY_FAILED_REASON, err_code=VERIFY_FAILED_ERR_CODE
            )
            return
        outcome = self.apply(kind, command, body)
        if isinstance(outcome, StartPrint):
            outcome = await self._start_from_command(outcome, body)
        if outcome:
            await self._reply(kind, body, "failed", reason=outcome)
        else:
            await self._reply(kind, body, "success")
        if self.connected:
            await self.publish_changes()  # state changes follow the reply as a push (BAMBU.md section 6)

    async def _start_from_command(self, start: StartPrint, body: Mapping[str, Any]) -> str | None:
        """Start what a print command named; why not, if the storage refuses it."""
        duration, layers, name = self.demo_print_s, 100, start.name
        if self.sdcard_dir is not None:
            planned = await plan_from_storage(self.sdcard_dir, start.command, body)
            if isinstance(planned, str):
                return planned
            prediction, found_layers = planned
            duration = prediction * self.time_scale if prediction else self.demo_print_s
            layers, name = found_layers or 100, start.stored_name
        # The reply goes first; the new state follows it as a push (BAMBU.md section 6).
        await self.simulate_print(
            name, duration, layers, gcode_file=start.gcode_file, publish=False, tray=start.tray
        )
        return None
