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

import pytest
import yaml

from bambu_edge.demo import run
from bambu_edge.demo.broker import BrokerError, free_port
from bambu_edge.printers.bambu.ftps import PrinterFiles
from bambu_edge.printers.bambu.tls import pinned_context
from tests.integration.waiting import dashboard_tls

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]


class Demo:
    def __init__(self, cwd: Path, https: int, http: int):
        env = {k: v for k, v in os.environ.items() if not k.startswith(("BAMBU_EDGE_", "NOTIFY_SOCKET"))}
        env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
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
        for p in cfg["printers"]:
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
