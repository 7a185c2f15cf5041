"""mDNS between two network namespaces joined by a veth pair: the real daemon in one, another unit
and a Moonraker printer (real zeroconf) in the other. Nothing reaches any other network."""

from __future__ import annotations

import json
import ssl
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bambu_edge import __version__
from tests.conftest import REPO
from tests.integration.daemon_proc import DaemonProcess, NotifySocket, write_config
from tests.integration.netns import VethPair, can_make_namespaces
from tests.integration.running_daemon import PASSWORD, add_admin

pytestmark = pytest.mark.skipif(can_make_namespaces() is not None, reason=str(can_make_namespaces()))

TLS = ssl.create_default_context()
TLS.check_hostname = False
TLS.verify_mode = ssl.CERT_NONE


def until(fn: Callable[[], Any], what: str, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}; last: {last}")


def request(url: str, body: dict | None = None, token: str | None = None) -> Any:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    with urllib.request.urlopen(urllib.request.Request(url, data, headers), context=TLS, timeout=10) as r:
        return json.loads(r.read())


class Peer:
    """The peer process's JSON lines, read as they come."""

    def __init__(self, proc: subprocess.Popen):
        self.proc = proc
        self.lines: list[dict] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(json.loads(line))

    def records(self, service_type: str) -> list[dict]:
        return [r for r in self.lines if r.get("type") == service_type]


def test_units_and_moonraker_printers_are_found_and_the_unit_is_announced(tmp_path: Path) -> None:
    cfg_path = tmp_path / "config.yaml"
    write_config(
        cfg_path,
        tmp_path / "data",
        extra={
            "web": {"bind": "0.0.0.0", "https_port": 0, "http_port": None},
            "node": {"id": "garage", "name": "Garage"},
            "discovery": {"ssdp": False, "mdns": True},
        },
    )
    add_admin(cfg_path)
    notify = NotifySocket(tmp_path / "notify.sock")
    with VethPair() as net:
        daemon = net.a.call(
            DaemonProcess, cfg_path, env={"NOTIFY_SOCKET": str(notify.path)}, log_path=tmp_path / "d.log"
        )
        peer = Peer(
            net.b.call(
                subprocess.Popen,
                [sys.executable, "-m", "tests.integration.mdns_peer", net.b.address],
                cwd=REPO,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
        )
        try:
            notify.wait_for("READY=1", 30)
            base = f"https://{net.a.address}:{daemon.https_port}"
            login = {"username": "admin", "password": PASSWORD}
            token = net.a.call(request, base + "/api/auth/login", login)["token"]

            def get(path: str) -> Any:
                return net.a.call(request, base + path, token=token)

            # The other unit is listed; this unit, which browses the same type, is not.
            nodes = until(lambda: get("/api/discovery/nodes"), "the other unit")
            assert nodes == [
                {"node": "farm-b", "name": "Farm B", "host": net.b.address, "port": 3443, "version": "9.9.9"}
            ]
            moonraker = until(lambda: get("/api/discovery/moonraker"), "the Moonraker printer")
            assert moonraker == [
                {
                    "name": "Voron @ voron",
                    "host": net.b.address,
                    "port": 7125,
                    "version": "v0.9.3-1",
                    "configured": False,
                }
            ]

            # The peer resolved this unit under both types, at its address and dashboard port.
            txt = {"node": "garage", "name": "Garage", "version": __version__, "api": "/api"}
            unit = until(lambda: peer.records("_bambu-edge._tcp.local."), "the peer to see this unit")
            assert [(r["name"], r["addresses"], r["port"], r["properties"]) for r in unit] == [
                ("Garage._bambu-edge._tcp.local.", [net.a.address], daemon.https_port, txt)
            ]
            https = until(lambda: peer.records("_https._tcp.local."), "the peer to see the https service")
            assert [(r["addresses"], r["port"], r["properties"]) for r in https] == [
                ([net.a.address], daemon.https_port, {**txt, "path": "/"})
            ]

            def announced() -> dict | None:
                health = get("/api/health")["components"]["discovery"]
                return health if health.get("mdns_advertised_on") else None

            health = until(announced, "the announcement to be done")
            assert health["state"] == "running" and health["mdns_advertised_on"] == [net.a.address]

            # The other unit says goodbye: it leaves the list at once, not after its records' TTL.
            peer.proc.stdin.write("bye\n")
            peer.proc.stdin.flush()
            until(lambda: get("/api/discovery/nodes") == [], "the unit to leave the list", timeout=10)
            assert len(get("/api/discovery/moonraker")) == 1
        finally:
            peer.proc.stdin.close()
            peer.proc.wait(10)
            daemon.stop()
            notify.close()
    log = daemon.output
    assert "Traceback" not in log, log[-3000:]
