"""systemd's watchdog: the pings stop while the event loop is stuck, or while the database does not
answer, and come back after; systemd's SIGABRT leaves every thread's stack in the journal.

systemd itself cannot run here (not PID 1), so the receiving end is a NOTIFY_SOCKET of the test's
own, as in test_lifecycle.py, and "systemd would restart us" is asserted as "no ping for longer
than WatchdogSec".
"""

from __future__ import annotations

import asyncio
import itertools
import signal
import time
from pathlib import Path

import pytest

from bambu_edge.config import Config
from bambu_edge.store.db import Store
from bambu_edge.watchdog import feed_watchdog
from tests.integration.daemon_proc import DaemonProcess, NotifySocket, write_config

ROOT = Path(__file__).resolve().parents[2]
WATCHDOG_S = 1.0  # WatchdogSec=1: a ping every 0.5 s
STALL_S = 3.0


def _record(sock: NotifySocket, seconds: float) -> list[tuple[float, str]]:
    """Every notification line received for ``seconds``, with the time it arrived."""
    got: list[tuple[float, str]] = []
    deadline = time.monotonic() + seconds
    sock.sock.settimeout(0.02)
    while time.monotonic() < deadline:
        try:
            data = sock.sock.recv(4096).decode()
        except TimeoutError:
            continue
        now = time.monotonic()
        got.extend((now, line) for line in data.splitlines())
    return got


def _pings(got: list[tuple[float, str]]) -> list[float]:
    return [t for t, line in got if line == "WATCHDOG=1"]


@pytest.fixture
def stalling_daemon(tmp_path):
    cfg_path = tmp_path / "config.yaml"
    write_config(cfg_path, tmp_path / "data")
    sock = NotifySocket(tmp_path / "notify.sock")
    d = DaemonProcess(
        cfg_path,
        env={
            "NOTIFY_SOCKET": str(sock.path),
            "WATCHDOG_USEC": str(int(WATCHDOG_S * 1e6)),
            "STALL_SECONDS": str(STALL_S),
            "PYTHONPATH": str(ROOT),
        },
        module="tests.integration.stalling_daemon",
    )
    try:
        sock.wait_for("READY=1")
        yield d, sock
    finally:
        d.stop()
        sock.close()


def test_stuck_event_loop_stops_the_pings_until_it_runs_again(stalling_daemon):
    d, sock = stalling_daemon
    before = _pings(_record(sock, 2.0))
    assert len(before) >= 3  # fed every WatchdogSec/2 while healthy

    stalled_at = time.monotonic()
    d.signal(signal.SIGUSR2)  # the loop blocks for STALL_S; the process and its threads live on
    got = _record(sock, STALL_S + 2.0)
    pings = _pings(got)
    during = [t for t in pings if stalled_at + 0.2 < t < stalled_at + STALL_S - 0.2]
    assert during == [], "a stuck loop must not feed the watchdog"
    after = [t for t in pings if t > stalled_at]
    assert after, "the pings must come back when the loop runs again"
    # Longer than WatchdogSec without a ping: systemd would have killed and restarted us.
    assert after[0] - max([t for t in before + pings if t <= stalled_at + 0.2]) > WATCHDOG_S
    assert len(after) >= 2  # and it is fed regularly again
    assert d.proc.poll() is None


def test_watchdog_abort_leaves_the_stuck_stack_in_the_journal(stalling_daemon):
    d, _ = stalling_daemon
    d.signal(signal.SIGUSR2)
    deadline = time.monotonic() + 10
    while "stalling the event loop" not in d.output and time.monotonic() < deadline:
        time.sleep(0.02)  # until the main thread is inside the handler, not merely signalled
    d.signal(signal.SIGABRT)  # what systemd sends when WatchdogSec passes without a ping
    assert d.wait(timeout=10) == -signal.SIGABRT
    out = d.output
    assert "Fatal Python error: Aborted" in out
    # The main thread's stack names the blocking call: the journal says where the daemon hung.
    assert "stall_the_loop" in out and "stalling_daemon.py" in out


async def test_database_that_does_not_answer_stops_the_pings(tmp_path, monkeypatch):
    """The loop is fine but the database thread is stuck (here: a statement that takes 2 s, as a
    write on a failing SD card would): no ping once it has not answered for the deadline; pings and
    the status line come back when it answers."""
    sock = NotifySocket(tmp_path / "notify.sock")
    monkeypatch.setenv("NOTIFY_SOCKET", str(sock.path))
    store = Store(Config(data_dir=tmp_path / "data"))
    await store.start()
    await store.db.conn.create_function("stuck", 0, lambda: time.sleep(2.0))
    interval, deadline = 0.1, 0.5
    probes = {"database": lambda: store.db.fetchone("SELECT 1")}
    feeder = asyncio.create_task(feed_watchdog(interval, deadline, probes, lambda: "0 printers, 0 connected"))
    try:
        await asyncio.sleep(0.5)
        stuck_at = time.monotonic()
        stuck = asyncio.create_task(store.db.fetchone("SELECT stuck()"))
        got = await asyncio.to_thread(_record, sock, 3.5)
        await stuck
    finally:
        feeder.cancel()
        await asyncio.gather(feeder, return_exceptions=True)
        await store.stop()
        sock.close()
    lines = [line for _, line in got]
    wedged = next(t for t, line in got if line == "STATUS=database not answering; restart pending")
    # Its last answer came at most one round before it got stuck.
    assert deadline - interval < wedged - stuck_at < deadline + 3 * interval + 0.3
    pings = _pings(got)
    silent = [t for t in pings if wedged < t < stuck_at + 2.0]
    assert silent == []
    # As long without a ping as the deadline (WatchdogSec in the daemon): systemd would restart us.
    assert max(b - a for a, b in itertools.pairwise(pings)) > deadline
    assert any(t > stuck_at + 2.0 for t in pings)  # answered again: fed again
    assert lines.index("STATUS=0 printers, 0 connected") > lines.index(
        "STATUS=database not answering; restart pending"
    )
