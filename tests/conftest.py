"""Shared fixtures: real peers on loopback, free ports, stopped after each test."""

from __future__ import annotations

import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from bambu_edge.demo.broker import LocalBroker

SERIAL = "01S00C123456789"  # a P1P-style serial; CN of the broker's certificate, like a printer
ACCESS_CODE = "12345678"
REPO = Path(__file__).resolve().parent.parent
SHARED_FIXTURES = REPO.parent / "shared" / "fixtures"


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[LocalBroker]:
    """mosquitto with TLS + password file, playing the printer's MQTT side (user bblp)."""
    if shutil.which("mosquitto") is None and not Path("/usr/sbin/mosquitto").exists():
        pytest.fail(
            "mosquitto is not installed: run `make test` (it installs it) or apt-get install mosquitto"
        )
    b = LocalBroker(tmp_path / "broker", {"bblp": ACCESS_CODE}, server_cn=SERIAL, port_retries=5)
    b.start()
    try:
        yield b
    finally:
        b.stop()


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A loopback port where nothing listens: connections are refused. Bound (not listening) for
    the whole test, so no other process can start listening there meanwhile."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield s.getsockname()[1]
