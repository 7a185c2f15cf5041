"""The real daemon (a child process) with mosquitto and virtual printers, and an HTTPS client logged
in as its admin. Fixtures (made known in tests/integration/conftest.py):

- ``spine``: one X1C, no storage: the link, the API, the dashboard.
- ``farm_factory``: printers each with its own vsftpd as its storage (presenting the broker's
  certificate, as one printer shows one certificate on both ports): the jobs tests."""

from __future__ import annotations

import asyncio
import functools
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bambu_edge.printers.virtual import VirtualPrinter
from tests.conftest import ACCESS_CODE
from tests.integration import waiting
from tests.integration.daemon_proc import (
    DaemonProcess,
    NotifySocket,
    keep_port,
    printer_entry,
    write_config,
)
from tests.integration.vsftpd import VsftpdServer
from tests.integration.waiting import dashboard_tls

# Poll gently: the API allows 200 requests a minute per client.
eventually = functools.partial(waiting.eventually, every=0.5)

PASSWORD = "correct horse battery"
SERIAL_X1C = "00M00A000000001"


# P1S serials start 01P, A1 serials 039 (BAMBU.md section 10).
PRINTERS = {
    "p1s-free": ("P1S free", "P1S", "01P09C000000001"),
    "p1s-busy": ("P1S busy", "P1S", "01P09C000000002"),
    "a1": ("A1", "A1", "03909C000000003"),
}
# The P1S capture's AMS: slot 3 holds black PLA (#000000FF).
BLACK_PLA = ("PLA", "#000000", 14.2)


@dataclass
class Farm:
    tmp: Path
    broker: Any
    cfg_path: Path
    vps: dict[str, VirtualPrinter]
    ftps: dict[str, VsftpdServer]
    http: aiohttp.ClientSession | None = None
    https: str = ""  # the dashboard's base URL, known once the daemon has started
    token: str | None = None
    daemon: DaemonProcess | None = None
    logs: list[str] = field(default_factory=list)
    sockets: list[NotifySocket] = field(default_factory=list)
    starts: int = 0

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    async def start_daemon(self) -> None:
        self.starts += 1
        sock = NotifySocket(self.tmp / f"notify{self.starts}.sock").follow()
        self.sockets.append(sock)  # open until the daemon has stopped: it notifies STOPPING=1 too
        self.daemon = DaemonProcess(
            self.cfg_path,
            env={"NOTIFY_SOCKET": str(sock.path)},
            log_path=self.tmp / f"daemon{self.starts}.log",
        )
        await asyncio.to_thread(sock.wait_for, "READY=1", 30)
        port = self.daemon.https_port
        if not self.https:
            keep_port(self.cfg_path, port)
        self.https = f"https://127.0.0.1:{port}"
        async with self.http.post(
            f"{self.https}/api/auth/login", json={"username": "admin", "password": PASSWORD}
        ) as r:
            assert r.status == 200
            self.token = (await r.json())["token"]

    def stop_daemon(self, sig: int | None = None) -> None:
        d, self.daemon = self.daemon, None
        if d is None:
            return
        if sig is not None:
            d.signal(sig)
            d.wait(10)
        d.stop()
        self.logs.append(d.output)

    async def close(self) -> None:
        self.stop_daemon()
        for sock in self.sockets:
            sock.close()
        if self.http is not None:
            await self.http.close()
        for vp in self.vps.values():
            await vp.stop()

    def check_logs(self) -> None:
        """What every run of the daemon must hold to: no access code in its log, no traceback."""
        for log in self.logs:
            assert ACCESS_CODE not in log
            assert "Traceback" not in log, log[-3000:]

    async def call(self, method: str, path: str, **kw: Any) -> tuple[int, Any]:
        async with self.http.request(method, self.https + path, headers=self.auth, **kw) as r:
            return r.status, await r.json() if r.content_type == "application/json" else await r.read()

    async def ok(self, method: str, path: str, **kw: Any) -> Any:
        status, body = await self.call(method, path, **kw)
        assert 200 <= status < 300, (method, path, status, body)
        return body


def add_admin(cfg_path: Path) -> None:
    cli = [sys.executable, "-m", "bambu_edge", "--config", str(cfg_path), "user", "add", "admin"]
    subprocess.run(cli, input=PASSWORD + "\n", text=True, check=True, timeout=60)


@pytest.fixture
def spine_config() -> dict:
    """More top-level config keys for ``spine``'s daemon: a test module overrides this fixture."""
    return {}


@pytest.fixture
def spine_printer() -> dict:
    """More keys for ``spine``'s printer entry (e.g. ``power``): a test module overrides this fixture."""
    return {}


@pytest.fixture
async def spine(tmp_path, broker, spine_config, spine_printer) -> AsyncIterator[dict]:
    cfg_path = tmp_path / "config.yaml"
    write_config(
        cfg_path,
        tmp_path / "data",
        [{**printer_entry(broker, SERIAL_X1C, ACCESS_CODE, "x1c"), **spine_printer}],
        extra=spine_config,
    )
    add_admin(cfg_path)
    vp = VirtualPrinter(
        broker.host, broker.port, SERIAL_X1C, ACCESS_CODE, "X1C", str(broker.ca_path), report_hz=2.0
    )
    await vp.start()
    farm = Farm(tmp_path, broker, cfg_path, {"x1c": vp}, {})
    farm.http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=dashboard_tls()))
    try:
        await farm.start_daemon()
        yield {"base": farm.https, "http": farm.http, "auth": farm.auth, "vp": vp, "broker": broker}
    finally:
        await farm.close()
    farm.check_logs()


@pytest.fixture
async def farm_factory(tmp_path, broker, vsftpd_factory) -> AsyncIterator[Callable[..., Any]]:
    farms: list[Farm] = []

    async def make(
        printers: dict[str, tuple[str, str, str]] = PRINTERS,
        *,
        entry_extra: dict[str, dict] | None = None,  # more keys per printer entry (e.g. power)
        config_extra: dict | None = None,  # more top-level config keys (e.g. energy)
        **vp_options: Any,
    ) -> Farm:
        ftps = {pid: vsftpd_factory(server_cert=broker.server_pair) for pid in printers}
        entries = []
        for pid, (name, _model, serial) in printers.items():
            entry = printer_entry(broker, serial, ACCESS_CODE, pid)
            entry.update(name=name, ftps_port=ftps[pid].port, **(entry_extra or {}).get(pid, {}))
            entries.append(entry)
        cfg_path = tmp_path / "config.yaml"
        write_config(cfg_path, tmp_path / "data", entries, extra=config_extra)
        add_admin(cfg_path)
        vps = {}
        for pid, (_name, model, serial) in printers.items():
            options = {"report_hz": 4.0, "time_scale": 0.002, **vp_options.get(pid, {})}
            vps[pid] = VirtualPrinter(
                broker.host,
                broker.port,
                serial,
                ACCESS_CODE,
                model,
                str(broker.ca_path),
                sdcard_dir=ftps[pid].root,
                **options,
            )
            await vps[pid].start()
        farm = Farm(tmp_path, broker, cfg_path, vps, ftps)
        farm.http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=dashboard_tls()))
        farms.append(farm)
        await farm.start_daemon()
        return farm

    try:
        yield make
    finally:
        for farm in farms:
            await farm.close()
        for farm in farms:
            farm.check_logs()


async def all_connected(farm: Farm) -> bool:
    views = await farm.ok("GET", "/api/printers")
    return len(views) == len(farm.vps) and all(
        v["link"]["state"] == "connected" and v["print"]["state"] and v["model"] for v in views
    )


async def job_state(farm: Farm, job_id: int, *states: str) -> dict | None:
    job = await farm.ok("GET", f"/api/queue/{job_id}")
    return job if job["state"] in states else None


async def readiness_is(farm: Farm, printer_id: str, reason: str) -> bool:
    q = await farm.ok("GET", "/api/queue")
    return {p["id"]: p for p in q["printers"]}[printer_id]["reason"] == reason


async def running_for_the_queue(farm: Farm, printer_id: str) -> dict | None:
    """The printer's running history record once the dispatcher's announcement has labelled it
    with its queue job: before then, a print that ended at once could not be told from one started
    elsewhere (a real print takes minutes; a test drives it to the end in milliseconds)."""
    items = (await farm.ok("GET", "/api/history", params={"printer": printer_id}))["items"]
    running = [r for r in items if r["outcome"] == "running" and r["queue_job_id"] is not None]
    return running[0] if running else None


async def upload(farm: Farm, path: Path) -> dict:
    status, body = await farm.call(
        "POST", "/api/queue/files", params={"name": path.name}, data=path.read_bytes()
    )
    assert status == 201, body
    return body
