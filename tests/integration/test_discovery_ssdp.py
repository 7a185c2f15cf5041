"""SSDP discovery in the real daemon: real UDP datagrams on loopback to the ports the config names,
read back through the real HTTP API."""

from __future__ import annotations

import asyncio
import socket
import time
from typing import Any

import pytest

from bambu_edge.printers.bambu.fixtures import read_fixture_text
from tests.integration.running_daemon import SERIAL_X1C, eventually


def free_udp_ports(n: int) -> list[int]:
    socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


PORTS = free_udp_ports(2)


@pytest.fixture
def spine_config() -> dict:
    # Joined on loopback: no IGMP report leaves this machine.
    return {"discovery": {"ssdp": True, "ssdp_ports": PORTS, "mdns": False, "ssdp_interface": "127.0.0.1"}}


def captured_packet() -> bytes:
    """The real X1C announcement as it travels (CRLF lines)."""
    return ("\r\n".join(read_fixture_text("x1c_ssdp_notify.txt").splitlines()) + "\r\n\r\n").encode()


def notify(serial: str, *extra: str, model: str = "C12") -> bytes:
    lines = [
        "NOTIFY * HTTP/1.1",
        "HOST: 239.255.255.250:1990",
        "NT: urn:bambulab-com:device:3dprinter:1",
        "NTS: ssdp:alive",
        f"USN: {serial}",
        f"DevModel.bambu.com: {model}",
        *extra,
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def send(packet: bytes, port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.sendto(packet, ("127.0.0.1", port))


async def discovered(spine: dict) -> list[dict[str, Any]]:
    async with spine["http"].get(spine["base"] + "/api/discovery/printers", headers=spine["auth"]) as r:
        assert r.status == 200
        return await r.json()


async def test_a_captured_announcement_lists_the_printer_and_it_expires(spine: dict) -> None:
    async with spine["http"].get(spine["base"] + "/api/health") as r:
        health = (await r.json())["components"]["discovery"]
    assert health["state"] == "running" and health["ssdp_ports"] == PORTS
    assert await discovered(spine) == []

    before = time.time()
    send(captured_packet(), PORTS[0])
    listed = await eventually(lambda: discovered(spine), what="the captured printer")
    assert listed == [
        {
            "serial": "00M09C452703629",
            "model": "X1C",
            "name": "3DP-00M-629",
            "host": "192.168.1.68",  # the Location header, not the packet's source
            "seen_at": listed[0]["seen_at"],
            "configured": False,
        }
    ]
    assert before - 1 <= listed[0]["seen_at"] <= time.time() + 1

    # The configured X1C announcing itself on the other port, without a Location: the packet's
    # source is its host, and it is marked configured. Its max-age is one second.
    send(notify(SERIAL_X1C, "DevName.bambu.com: Left", "Cache-Control: max-age=1", model="BL-P001"), PORTS[1])

    async def both() -> list[dict[str, Any]] | None:
        found = await discovered(spine)
        return found if len(found) == 2 else None

    mine = next(p for p in await eventually(both, what="the configured printer") if p["serial"] == SERIAL_X1C)
    assert (mine["host"], mine["model"], mine["name"], mine["configured"]) == (
        "127.0.0.1",
        "X1C",
        "Left",
        True,
    )

    async def expired() -> bool:
        return [p["serial"] for p in await discovered(spine)] == ["00M09C452703629"]

    await eventually(expired, timeout=10, what="the one-second entry to expire")


async def test_hostile_packets_list_nothing_and_a_flood_stays_bounded(spine: dict) -> None:
    hostile = [
        b"\xff" * 100,
        b"",
        b"M-SEARCH * HTTP/1.1\r\nST: ssdp:all\r\n\r\n",
        notify("01P09C000000009", "NTS: ssdp:byebye").replace(b"NTS: ssdp:alive\r\n", b""),
        notify("../../etc/passwd"),
        notify("01P09C000000010", "X: " + "y" * 5000),  # larger than any announcement
        notify("01P09C000000011").replace(b"NOTIFY", b"NOTIFY\x00"),
    ]
    for packet in hostile:
        send(packet, PORTS[0])
    # A packet that is fine, sent after the hostile ones, is listed: they were all read and refused.
    send(notify("01P09C000000012", "Location: 10.9.8.7", "DevName.bambu.com: <b>P1S</b>\x1b[2J"), PORTS[0])
    listed = await eventually(lambda: discovered(spine), what="the good packet")
    assert [(p["serial"], p["name"], p["host"], p["model"]) for p in listed] == [
        ("01P09C000000012", "<b>P1S</b>[2J", "10.9.8.7", "P1S")
    ]

    # A flood of forged printers: the table keeps at most 256, the daemon keeps answering.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for i in range(2000):
            s.sendto(notify(f"01P{i:012d}"), ("127.0.0.1", PORTS[1]))
            if i % 200 == 0:
                await asyncio.sleep(0.01)  # keep the loopback queue from dropping most of them

    # The kernel may drop part of a flood: a last packet, sent once it is over, marks the end.
    await asyncio.sleep(0.2)
    send(notify("01P999999999999"), PORTS[1])

    async def marked() -> list[dict[str, Any]] | None:
        found = await discovered(spine)
        return found if "01P999999999999" in {p["serial"] for p in found} else None

    listed = await eventually(marked, what="the packet after the flood")
    assert len(listed) == 256
    # The entries heard from longest ago made room: the good printer and the first forged ones.
    serials = {p["serial"] for p in listed}
    assert "01P09C000000012" not in serials and "01P000000000000" not in serials
    async with spine["http"].get(spine["base"] + "/api/health") as r:
        assert (await r.json())["components"]["discovery"]["printers_seen"] == 256


async def test_discovery_that_cannot_listen_fails_visibly_while_the_daemon_runs(tmp_path) -> None:
    from bambu_edge.app import Daemon
    from bambu_edge.config import Config, WebConfig
    from bambu_edge.discovery.config import DiscoveryConfig

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:  # bound without SO_REUSEADDR
        taken.bind(("", 0))
        port = taken.getsockname()[1]
        d = Daemon(
            Config(
                data_dir=tmp_path / "data",
                web=WebConfig(bind="127.0.0.1", https_port=0, http_port=None),
                sections={
                    "discovery": DiscoveryConfig(
                        ssdp=True, ssdp_ports=(port,), mdns=False, ssdp_interface="127.0.0.1"
                    )
                },
            )
        )
        await d.start()
        try:
            health = d.health()
            assert health["discovery"]["state"] == "failed"
            assert health["discovery"]["error"] == f"cannot listen on UDP port {port}: Address already in use"
            assert health["web"]["state"] == "running" and d.running("discovery") is None
        finally:
            await d.stop()
