"""The daemon as systemd runs it: READY/STATUS/WATCHDOG/STOPPING, clean stop on SIGTERM/SIGINT."""

from __future__ import annotations

import signal
import time
import urllib.request

import pytest

from tests.conftest import ACCESS_CODE, SERIAL
from tests.integration.daemon_proc import DaemonProcess, NotifySocket, printer_entry, write_config
from tests.integration.waiting import dashboard_tls


@pytest.fixture
def notify_socket(tmp_path):
    s = NotifySocket(tmp_path / "notify.sock")
    yield s
    s.close()


def _health(port: int) -> dict:
    import json

    ctx = dashboard_tls()
    with urllib.request.urlopen(f"https://127.0.0.1:{port}/api/health", context=ctx, timeout=5) as r:
        return json.loads(r.read())


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_systemd_lifecycle(tmp_path, broker, notify_socket, sig):
    cfg_path = tmp_path / "config.yaml"
    write_config(cfg_path, tmp_path / "data", [printer_entry(broker, SERIAL, ACCESS_CODE)])
    d = DaemonProcess(cfg_path, env={"NOTIFY_SOCKET": str(notify_socket.path), "WATCHDOG_USEC": "200000"})
    try:
        notify_socket.wait_for("READY=1")
        assert _health(d.https_port)["status"] == "ok"
        # The watchdog is fed while the loop is healthy (every WATCHDOG_USEC/2 = 0.1 s): twice
        # within five intervals.
        deadline = time.monotonic() + 0.5
        while time.monotonic() < deadline and sum(m.count("WATCHDOG=1") for m in notify_socket.messages) < 2:
            notify_socket.drain(limit_s=0.05)
        assert sum(m.count("WATCHDOG=1") for m in notify_socket.messages) >= 2
        # systemctl status tells how many printers are up.
        notify_socket.wait_for("STATUS=1 printers, 1 connected")

        t0 = time.monotonic()
        d.signal(sig)
        assert d.wait(timeout=6) == 0
        assert time.monotonic() - t0 < 5.0
        notify_socket.wait_for("STOPPING=1", timeout=1)
    finally:
        d.stop()
    out = d.output
    assert "[p1]" in out  # log lines carry the printer id
    assert ACCESS_CODE not in out
    assert "Traceback" not in out


def test_bad_config_exits_2_without_starting(tmp_path):
    cfg_path = tmp_path / "config.yaml"
    cfg_path.write_text("web:\n  https_port: lots\n")
    d = DaemonProcess(cfg_path)
    try:
        assert d.wait(timeout=30) == 2
    finally:
        d.stop()
    assert f"{cfg_path}:2: web.https_port" in d.output


def test_port_in_use_is_reported_plainly(tmp_path, notify_socket):
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        cfg_path = tmp_path / "config.yaml"
        write_config(cfg_path, tmp_path / "data", https_port=busy.getsockname()[1])
        d = DaemonProcess(cfg_path, env={"NOTIFY_SOCKET": str(notify_socket.path)})
        try:
            # Read its notifications meanwhile, as systemd does: a socket nobody reads fills up
            # after ten datagrams and then blocks the sender.
            deadline = time.monotonic() + 30
            while d.proc.poll() is None and time.monotonic() < deadline:
                notify_socket.drain(limit_s=0.2)
            assert d.wait(timeout=1) == 1
        finally:
            d.stop()
    assert "cannot start" in d.output
    assert "Traceback" not in d.output
    assert not any("READY=1" in m for m in notify_socket.messages)
