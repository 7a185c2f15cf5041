"""Shared by the fan-out, Home Assistant and metrics tests: a real daemon (child process) with two
virtual printers on the printer-side mosquitto, and what the tests measure on the real peers."""

from __future__ import annotations

import os
import ssl
from pathlib import Path

import aiohttp

from bambu_edge.certs import DASHBOARD_CERT
from bambu_edge.demo.broker import LocalBroker, free_port
from bambu_edge.printers.virtual import VirtualPrinter
from tests.conftest import ACCESS_CODE
from tests.integration.daemon_proc import printer_entry, write_config
from tests.integration.running_daemon import Farm, add_admin
from tests.integration.waiting import dashboard_tls

# Two X1C (full reports each time) with serials that differ only at the end.
FRONTED = {"left": "00M00A000000011", "right": "00M00A000000012"}


async def start_farm(tmp_path: Path, broker: LocalBroker, extra: dict) -> Farm:
    cfg_path = tmp_path / "config.yaml"
    entries = [printer_entry(broker, serial, ACCESS_CODE, pid) for pid, serial in FRONTED.items()]
    write_config(cfg_path, tmp_path / "data", entries, extra=extra)
    add_admin(cfg_path)
    vps = {}
    for pid, serial in FRONTED.items():
        vps[pid] = VirtualPrinter(
            broker.host, broker.port, serial, ACCESS_CODE, "X1C", str(broker.ca_path), report_hz=2.0
        )
        await vps[pid].start()
    farm = Farm(tmp_path, broker, cfg_path, vps, {})
    farm.http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=dashboard_tls()))
    try:
        await farm.start_daemon()
    except BaseException:
        await farm.close()
        raise
    return farm


def fanout_config() -> dict:
    return {"fanout": {"port": free_port(), "bind": "127.0.0.1"}}


def unit_tls(farm: Farm) -> ssl.SSLContext:
    """Trust exactly the unit's own certificate (the dashboard's): the endpoint must present it."""
    ctx = ssl.create_default_context(cafile=str(farm.tmp / "data" / "tls" / DASHBOARD_CERT))
    ctx.check_hostname = True  # the unit's certificate names 127.0.0.1
    return ctx


def established_at(pid: int, port: int) -> int:
    """TCP connections process ``pid`` has accepted on ``port`` (its /proc sockets, ESTABLISHED)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            f = line.split()
            if f[3] == "01" and f[9] in inodes and int(f[1].rsplit(":", 1)[1], 16) == port:
                count += 1
    return count
