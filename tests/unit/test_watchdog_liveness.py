"""When the watchdog pings stop: the probes' deadlines and systemd's WATCHDOG_USEC/WATCHDOG_PID."""

from __future__ import annotations

import os

import pytest

from bambu_edge import sdnotify
from bambu_edge.watchdog import Liveness


def test_a_probe_is_stale_only_after_the_deadline():
    live = Liveness.starting(["database"], now=100.0, deadline_s=30.0)
    assert live.stale(129.9) == []
    live.answered("database", 115.0)
    assert live.stale(144.0) == []
    assert live.stale(145.1) == ["database"]


def test_a_stuck_event_loop_is_not_blamed_on_the_probes():
    # The loop stood still for 20 s right after an answer: the answer could not be heard, but the
    # database is not late for it (a loop stall shorter than WatchdogSec must not cause a restart).
    live = Liveness.starting(["database"], now=0.0, deadline_s=30.0)
    live.answered("database", 15.0)
    live.excuse(20.0)
    assert live.stale(50.0) == []
    assert live.stale(65.1) == ["database"]


@pytest.mark.parametrize(
    ("env", "timeout", "interval"),
    [
        ({"WATCHDOG_USEC": "30000000"}, 30.0, 15.0),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "self"}, 30.0, 15.0),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}, None, None),  # meant for another process
        ({"WATCHDOG_USEC": "soon"}, None, None),
        ({"WATCHDOG_USEC": "0"}, None, None),
        ({}, None, None),
    ],
)
def test_watchdog_settings_from_systemd(monkeypatch, env, timeout, interval):
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, str(os.getpid()) if value == "self" else value)
    assert sdnotify.watchdog_timeout() == timeout
    assert sdnotify.watchdog_interval() == interval
