"""Units of a farm for the farm tests and benches: real daemons (child processes), each with its own
virtual printers on the printers' mosquitto, all sharing a second mosquitto as the farm broker
(TLS, a password per unit, persistence on as docs/farm.md asks of a farm broker)."""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from bambu_edge.demo.broker import LocalBroker
from bambu_edge.printers.virtual import VirtualPrinter
from tests.conftest import ACCESS_CODE
from tests.integration.daemon_proc import printer_entry, write_config
from tests.integration.running_daemon import Farm, add_admin
from tests.integration.waiting import dashboard_tls


class FarmBroker(LocalBroker):
    """mosquitto as the farm's broker: sessions and retained messages kept across a restart."""

    def _write_conf(self) -> None:
        super()._write_conf()
        store = self.workdir / "store"
        store.mkdir(exist_ok=True)
        text = self.conf_path.read_text().replace(
            "persistence false", f"persistence true\npersistence_location {store}/\nautosave_interval 1"
        )
        self.conf_path.write_text(text)


def unit_password(node: str) -> str:
    return f"farm-{node}-secret"


@dataclass
class Unit:
    node: str
    farm: Farm
    vps: dict[str, VirtualPrinter] = field(default_factory=dict)

    async def ok(self, method: str, path: str, **kw: Any) -> Any:
        return await self.farm.ok(method, path, **kw)

    async def call(self, method: str, path: str, **kw: Any) -> tuple[int, Any]:
        return await self.farm.call(method, path, **kw)

    async def printers(self) -> dict[str, dict]:
        return {p["id"]: p for p in await self.ok("GET", "/api/printers")}

    async def history(self) -> list[dict]:
        return (await self.ok("GET", "/api/history", params={"limit": "500"}))["items"]

    def kill(self) -> None:
        """SIGKILL: no goodbye, only the broker's last will says the unit is gone."""
        d = self.farm.daemon
        assert d is not None
        os.kill(d.proc.pid, signal.SIGKILL)
        d.proc.wait(10)
        self.farm.stop_daemon()


async def start_unit(
    tmp: Path,
    node: str,
    printer_broker: LocalBroker,
    farm_broker: LocalBroker,
    printers: dict[str, tuple[str, str]],
    *,
    farm_port: int | None = None,
    **vp_options: Any,
) -> Unit:
    """``printers``: id -> (serial, model). The virtual printers' clocks are held unless
    ``vp_options`` says otherwise. ``farm_port``: reach the farm broker there (a relay) instead."""
    home = tmp / node
    home.mkdir()
    entries = [
        printer_entry(printer_broker, serial, ACCESS_CODE, pid) for pid, (serial, _) in printers.items()
    ]
    cfg_path = home / "config.yaml"
    extra = {
        "node": {"id": node, "name": node.capitalize()},
        "farm": {
            "broker": f"mqtts://127.0.0.1:{farm_port or farm_broker.port}",
            "username": node,
            "password": unit_password(node),
            "ca_file": str(farm_broker.ca_path),
        },
    }
    write_config(cfg_path, home / "data", entries, extra=extra)
    add_admin(cfg_path)
    vps = {}
    for pid, (serial, model) in printers.items():
        options = {"report_hz": 2.0, "held": True, **vp_options}
        vps[pid] = VirtualPrinter(
            printer_broker.host,
            printer_broker.port,
            serial,
            ACCESS_CODE,
            model,
            str(printer_broker.ca_path),
            **options,
        )
        await vps[pid].start()
    farm = Farm(home, printer_broker, cfg_path, vps, {})
    farm.http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=dashboard_tls()))
    unit = Unit(node, farm, vps)
    await farm.start_daemon()
    return unit


@contextlib.asynccontextmanager
async def units_closed(units: list[Unit]) -> AsyncIterator[list[Unit]]:
    try:
        yield units
    finally:
        for u in units:
            await u.farm.close()
        for u in units:
            u.farm.check_logs()
