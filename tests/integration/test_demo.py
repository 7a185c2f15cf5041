"""``bambu-edge demo`` as a user runs it: a child process in an empty folder, Ctrl-C to stop."""

from __future__ import annotations

import asyncio
import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from bambu_edge.demo import run
from bambu_edge.demo.broker import BrokerError, free_port
from bambu_edge.printers.bambu.ftps import PrinterFiles
from bambu_edge.printers.bambu.tls import pinned_context
from bambu_edge.printers.virtual.moonraker import VENV, moonraker_python
from tests.integration.waiting import dashboard_tls

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]


class Demo:
    def __init__(self, cwd: Path, https: int, http: int, moonraker_venv: Path | None = None):
        env = {k: v for k, v in os.environ.items() if not k.startswith(("BAMBU_EDGE_", "NOTIFY_SOCKET"))}
        env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
        if moonraker_venv is not None:
            env["MOONRAKER_VENV"] = str(moonraker_venv)
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bambu_edge",
                "demo",
                "--https-port",
                str(https),
                "--http-port",
                str(http),
            ],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.output: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)

    def wait_for(self, pattern: str, timeout: float = 20.0) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.1)
            except queue.Empty:
                if self.proc.poll() is not None:
                    break
                continue
            self.output.append(line)
            if m := re.search(pattern, line):
                return m
        raise AssertionError(f"no {pattern!r} within {timeout} s; output:\n{''.join(self.output)}")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            return self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise


def mosquitto_pids(conf: Path) -> list[int]:
    """Live mosquitto processes started with this config file."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
            state = next(
                line for line in (entry / "status").read_text().splitlines() if line.startswith("State:")
            )
        except (OSError, StopIteration):
            continue
        if str(conf).encode() in cmdline and "zombie" not in state:
            pids.append(int(entry.name))
    return pids


def get(url: str, data: dict | None = None) -> tuple[int, dict]:
    ctx = dashboard_tls()
    body = json.dumps(data).encode() if data is not None else None
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, context=ctx, timeout=10) as r:
        return r.status, json.loads(r.read())


def test_demo_serves_the_dashboard_and_stops_cleanly(tmp_path: Path) -> None:
    https, http = free_port(), free_port()
    conf = tmp_path / "var" / "broker" / "mosquitto.conf"
    demo = Demo(tmp_path, https, http)
    try:
        url = demo.wait_for(r"(https://localhost:\d+/)").group(1)
        user, password = demo.wait_for(r"Login:\s+(\S+) / (\S+)").groups()
        demo.wait_for(r"Stop:")
        assert url == f"https://localhost:{https}/"
        assert (tmp_path / "var" / "demo-login.txt").stat().st_mode & 0o777 == 0o600
        status, body = get(url + "api/health")
        assert status == 200 and body["status"] == "ok"
        status, body = get(url + "api/auth/login", {"username": user, "password": password})
        assert status == 200 and body["token"]
        assert mosquitto_pids(conf)
        # Each virtual printer has storage on its FTPS port, trusted like its MQTT side.
        cfg = yaml.safe_load((tmp_path / "var" / "config.yaml").read_text())
        cert = (tmp_path / "var" / "broker" / "server.crt").read_text()
        for p in (p for p in cfg["printers"] if p["type"] == "bambu"):
            files = PrinterFiles(
                "127.0.0.1", p["ftps_port"], p["access_code"], pinned_context(cert), timeout=5
            )
            assert {e.name for e in asyncio.run(files.list("/"))} >= {"cache", "timelapse"}
    finally:
        rc = demo.stop()
    assert rc == 0, "".join(demo.output)
    assert mosquitto_pids(conf) == []

    # A second run reuses var/: same login, same broker certificate.
    fingerprint = (tmp_path / "var" / "broker" / "server.crt").read_bytes()
    demo = Demo(tmp_path, https, http)
    try:
        assert demo.wait_for(r"Login:\s+(\S+) / (\S+)").groups() == (user, password)
        assert (tmp_path / "var" / "broker" / "server.crt").read_bytes() == fingerprint
    finally:
        assert demo.stop() == 0
    assert mosquitto_pids(conf) == []


def processes_with(arg: Path) -> list[int]:
    """Live processes whose command line names ``arg``."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
            status = (entry / "status").read_text()
        except OSError:
            continue
        if str(arg).encode() in cmdline and "zombie" not in status:
            pids.append(int(entry.name))
    return pids


def api(url: str, token: str) -> Any:
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req, context=dashboard_tls(), timeout=10) as r:
        return json.loads(r.read())


def test_demo_shows_a_klipper_printer_beside_the_bambu_ones(tmp_path: Path) -> None:
    """The demo's virtual Klipper printer: the real Moonraker (its venv, as `make run` makes it) in
    front of the stand-in Klippy, printing, on the same list as the Bambu printers; Moonraker
    stops with the demo."""
    moonraker_python()  # the venv `make run` makes (made once for the tests)
    https, http = free_port(), free_port()
    demo = Demo(tmp_path, https, http, moonraker_venv=VENV)
    data = tmp_path / "var" / "klipper" / "printer_data"
    try:
        url = demo.wait_for(r"(https://localhost:\d+/)", timeout=60).group(1)
        user, password = demo.wait_for(r"Login:\s+(\S+) / (\S+)").groups()
        assert "a Klipper printer printing, behind a real Moonraker" in demo.wait_for(r"Printers:").string
        token = get(url + "api/auth/login", {"username": user, "password": password})[1]["token"]
        deadline = time.monotonic() + 60
        while True:
            printers = {p["id"]: p for p in api(url + "api/printers", token)}
            voron = printers["voron-demo"]
            if voron["link"]["state"] == "connected" and voron["print"]["state"] == "RUNNING":
                break
            assert time.monotonic() < deadline, voron
            time.sleep(0.2)
        assert {"x1c-demo", "p1s-demo", "a1-demo"} <= set(printers)
        assert voron["type"] == "moonraker" and voron["model"] == "Klipper"
        assert voron["name"] == "Voron demo" and voron["print"]["progress"] >= 30
        assert voron["nozzle"]["diameter"] == 0.4  # the demo's materials, as the dashboard shows them
        materials = api(url + "api/printers/voron-demo/materials", token)
        assert materials["filament_type"] == "PLA"
        assert processes_with(data)
    finally:
        rc = demo.stop()
    assert rc == 0, "".join(demo.output)
    assert processes_with(data) == []


def test_demo_without_moonraker_says_how_to_add_the_klipper_printer(tmp_path: Path) -> None:
    demo = Demo(tmp_path, free_port(), free_port(), moonraker_venv=tmp_path / "no-venv")
    try:
        line = demo.wait_for(r"Printers:").string
        assert "3 virtual printers" in line and "Klipper" not in line
        assert "scripts/moonraker-venv.sh" in demo.wait_for(r"Klipper:").string
    finally:
        assert demo.stop() == 0
    cfg = yaml.safe_load((tmp_path / "var" / "config.yaml").read_text())
    assert [p["type"] for p in cfg["printers"]] == ["bambu"] * 3


def test_demo_without_mosquitto_names_the_install_command(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def missing() -> tuple[str, str]:
        raise BrokerError("mosquitto is not installed. Run:  sudo apt-get install -y mosquitto")

    monkeypatch.setattr(run, "mosquitto_binaries", missing)
    assert run.demo_main(tmp_path / "var") == 1
    assert "sudo apt-get install -y mosquitto" in capsys.readouterr().err
    assert not (tmp_path / "var").exists()


def test_a_busy_default_port_falls_back_with_a_clear_line(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as busy:
        busy.bind((run.BIND, 0))
        busy.listen()
        taken = busy.getsockname()[1]
        port = run.choose_port(None, taken, "HTTPS")
        assert port != taken and run.port_is_free(port)
        assert f"Port {taken} (HTTPS) is in use; using {port} instead." in capsys.readouterr().out
        with pytest.raises(OSError, match="already in use"):
            run.choose_port(taken, 3443, "HTTPS")
