"""Run the real daemon as a child process, as systemd would: config file, NOTIFY_SOCKET, signals."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import yaml

from bambu_edge.demo.broker import LocalBroker

# The line the daemon logs once its dashboard listens (bambu_edge/web/server.py).
DASHBOARD_LINE = re.compile(r"dashboard on https://\S+:(\d+)")


def end_process(proc: subprocess.Popen, timeout: float = 5.0) -> None:
    """SIGTERM, then SIGKILL after ``timeout``; reaped either way (no zombie outlives a test)."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def write_config(
    path: Path,
    data_dir: Path,
    printers: list[dict] | None = None,
    *,
    https_port: int = 0,
    extra: dict | None = None,
) -> dict:
    """``https_port`` 0: the daemon binds a free port and logs it (``DaemonProcess.https_port``); no
    plain-HTTP redirect listener (tests/integration/test_web_api.py tests that one). Discovery is
    off (a test daemon neither listens on the printers' SSDP ports nor announces itself on the
    LAN) unless ``extra``, more top-level keys, says otherwise."""
    cfg = {
        "data_dir": str(data_dir),
        "log_level": "info",
        "web": {"bind": "127.0.0.1", "https_port": https_port, "http_port": None},
        "printers": printers or [],
        "discovery": {"ssdp": False, "mdns": False},
        **(extra or {}),
    }
    path.write_text(yaml.safe_dump(cfg))
    return cfg


def keep_port(path: Path, https_port: int) -> None:
    """Write the port the daemon got into its config: a restart comes back where the dashboard's
    pages and cookies are, as a daemon with a configured port does."""
    cfg = yaml.safe_load(path.read_text())
    cfg["web"]["https_port"] = https_port
    path.write_text(yaml.safe_dump(cfg))


def printer_entry(broker: LocalBroker, serial: str, access_code: str, pid: str = "p1") -> dict:
    """A printer played by a virtual printer on ``broker``. It has no camera (nothing answers on
    its camera ports): a camera test names one."""
    return {
        "id": pid,
        "name": pid.upper(),
        "host": broker.host,
        "mqtt_port": broker.port,
        "serial": serial,
        "access_code": access_code,
        "camera": "off",
    }


class NotifySocket:
    """The receiving end of sd_notify, like systemd's."""

    def __init__(self, path: Path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.2)
        self.messages: list[str] = []
        self._reader: threading.Thread | None = None

    def follow(self) -> NotifySocket:
        """Keep reading in a thread from now on, as systemd does: a socket nobody reads holds ten
        datagrams, then the daemon's next notification blocks it. For daemons that run a while."""
        if self._reader is None:
            self._reader = threading.Thread(target=self._read_all, name="notify-socket", daemon=True)
            self._reader.start()
        return self

    def _read_all(self) -> None:
        while True:
            try:
                self.messages.append(self.sock.recv(4096).decode())
            except TimeoutError:
                continue
            except OSError:  # closed
                return

    def wait_for(self, prefix: str, timeout: float = 20.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for m in list(self.messages):
                for line in m.splitlines():
                    if line.startswith(prefix):
                        return line
            if self._reader is not None:
                time.sleep(0.02)
                continue
            try:
                self.messages.append(self.sock.recv(4096).decode())
            except TimeoutError:
                pass
        raise AssertionError(f"no {prefix!r} from the daemon within {timeout} s; got {self.messages}")

    def drain(self, limit_s: float = 1.0) -> None:
        """Read what is queued (for at most limit_s: a watchdog keeps sending)."""
        deadline = time.monotonic() + limit_s
        while time.monotonic() < deadline:
            try:
                self.messages.append(self.sock.recv(4096).decode())
            except TimeoutError:
                return

    def close(self) -> None:
        self.sock.close()


class DaemonProcess:
    def __init__(
        self,
        config_path: Path,
        env: dict[str, str] | None = None,
        log_path: Path | None = None,
        module: str = "bambu_edge",  # or a test runner that wraps bambu_edge.cli (tests/integration/)
    ):
        self.config_path = config_path
        self.log_path = log_path or config_path.with_suffix(".log")
        base = {
            k: v for k, v in os.environ.items() if not k.startswith(("BAMBU_EDGE_", "NOTIFY_", "WATCHDOG_"))
        }
        base.update(env or {})
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", module, "--config", str(config_path), "run"],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=base,
        )

    @property
    def output(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    @property
    def https_port(self) -> int:
        """The dashboard port the daemon reported (read after READY=1: it logs it before)."""
        found = DASHBOARD_LINE.findall(self.output)
        if not found:
            raise AssertionError(f"the daemon did not say where its dashboard is:\n{self.output[-3000:]}")
        return int(found[-1])

    def signal(self, sig: int = signal.SIGTERM) -> None:
        self.proc.send_signal(sig)

    def wait(self, timeout: float) -> int:
        return self.proc.wait(timeout)

    def stop(self) -> None:
        end_process(self.proc, 10)
        self._log.close()
