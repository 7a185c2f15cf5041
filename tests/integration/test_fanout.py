"""The fan-out endpoint against real peers: the daemon (child process) runs its own mosquitto with
the access-code plugin; two virtual printers on the printer-side mosquitto; clients are aiomqtt and
a third-party library (bambulabs_api, from PyPI) speaking to the endpoint as they would to a printer."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiomqtt
import orjson
import pytest
from bambulabs_api.mqtt_client import PrinterMQTTClient

from tests.conftest import ACCESS_CODE
from tests.integration.fanout_peers import FRONTED, established_at, fanout_config, start_farm, unit_tls
from tests.integration.running_daemon import Farm
from tests.integration.waiting import eventually

pytestmark = pytest.mark.integration

LEFT, RIGHT = FRONTED["left"], FRONTED["right"]


@pytest.fixture
async def farm(tmp_path, broker) -> AsyncIterator[Farm]:
    farm = await start_farm(tmp_path, broker, fanout_config())
    try:
        yield farm
    finally:
        await farm.close()
    farm.check_logs()


async def endpoint(farm: Farm) -> tuple[int, dict[str, dict[str, Any]]]:
    body = await farm.ok("GET", "/api/fanout")
    return body["port"], {p["id"]: p for p in body["printers"]}


def client(farm: Farm, port: int, code: str) -> aiomqtt.Client:
    return aiomqtt.Client(
        "127.0.0.1",
        port,
        username="bblp",
        password=code,
        tls_context=unit_tls(farm),
        identifier=f"test-{os.urandom(4).hex()}",
    )


async def first(c: aiomqtt.Client, match: Callable[[str, Any], bool], timeout: float = 15.0) -> Any:
    """The first message (topic, decoded payload) that ``match`` accepts."""
    async with asyncio.timeout(timeout):
        async for m in c.messages:
            msg = orjson.loads(m.payload)
            if match(str(m.topic), msg):
                return msg
    raise AssertionError("the session ended")


def is_full_report(msg: Any) -> bool:
    return msg.get("print", {}).get("command") == "push_status"


async def test_a_third_party_client_reads_the_printer_through_the_endpoint(farm: Farm) -> None:
    port, printers = await endpoint(farm)
    code = printers["left"]["access_code"]
    assert printers["left"]["serial"] == LEFT
    assert code != ACCESS_CODE and len(code) == 8  # its own code, never the printer's
    await farm.vps["left"].set_fields(nozzle_target_temper=215)
    lib = PrinterMQTTClient("127.0.0.1", code, LEFT, port=port)
    lib.connect()
    lib.start()
    try:
        await eventually(
            lambda: lib.ready() and lib.get_nozzle_temperature_target() == 215.0, what="a report"
        )
        view = await farm.ok("GET", "/api/printers/left")
        assert lib.get_printer_state().name == view["print"]["state"]
        assert lib.get_nozzle_temperature_target() == view["temps"]["nozzle"]["target"]
    finally:
        lib.stop()
        lib._client.disconnect()


async def test_ten_clients_and_still_one_upstream_session(farm: Farm) -> None:
    port, printers = await endpoint(farm)
    code = printers["left"]["access_code"]
    before = established_at(farm.broker.pid, farm.broker.port)
    assert before == 4  # the two virtual printers, and the daemon's one session with each
    async with contextlib.AsyncExitStack() as stack:
        clients = [await stack.enter_async_context(client(farm, port, code)) for _ in range(10)]
        for c in clients:
            await c.subscribe(f"device/{LEFT}/report")
        for c in clients:  # every one of them gets the printer's reports
            await first(c, lambda _t, m: is_full_report(m))
        assert established_at(farm.broker.pid, farm.broker.port) == before
        health = (await farm.ok("GET", "/api/health"))["components"]["fanout"]
        assert health["state"] == "running" and health["relayed"] > 0


async def test_pushall_is_answered_from_state_and_never_forwarded(farm: Farm) -> None:
    port, printers = await endpoint(farm)
    vp = farm.vps["left"]
    async with client(farm, port, printers["left"]["access_code"]) as c:
        await c.subscribe(f"device/{LEFT}/report")
        await first(c, lambda _t, m: is_full_report(m))  # the daemon has the printer's state
        seen = len(vp.received)
        await c.publish(
            f"device/{LEFT}/request", orjson.dumps({"pushing": {"command": "pushall", "sequence_id": "4242"}})
        )
        full = await first(c, lambda _t, m: m.get("print", {}).get("sequence_id") == "4242")
        assert full["print"]["msg"] == 0 and full["print"]["gcode_state"]
        assert [m for m in vp.received[seen:] if "pushing" in m] == []
        # get_version goes to the printer at most once: its answer is kept for the next asker.
        for seq in ("4243", "4244", "4245"):
            ask = {"info": {"command": "get_version", "sequence_id": seq}}
            await c.publish(f"device/{LEFT}/request", orjson.dumps(ask))
            version = await first(c, lambda _t, m, seq=seq: m.get("info", {}).get("sequence_id") == seq)
            assert version["info"]["module"]
        assert len([m for m in vp.received[seen:] if "info" in m]) <= 1


async def test_a_read_only_client_is_refused_until_an_admin_allows_the_command(farm: Farm) -> None:
    port, printers = await endpoint(farm)
    vp = farm.vps["left"]
    pause = {"print": {"command": "pause", "sequence_id": "7001", "param": ""}}
    async with client(farm, port, printers["left"]["access_code"]) as c:
        await c.subscribe(f"device/{LEFT}/report")
        await c.publish(f"device/{LEFT}/request", orjson.dumps(pause))
        reply = await first(c, lambda _t, m: m.get("print", {}).get("sequence_id") == "7001")
        assert reply["print"]["result"] == "failed" and "not allowed" in reply["print"]["reason"]
        assert not [m for m in vp.received if m.get("print", {}).get("command") == "pause"]

        status, body = await farm.call("PUT", "/api/fanout/printers/left", json={"grants": ["fly"]})
        assert status == 400 and "fly" in body["message"]
        entry = await farm.ok("PUT", "/api/fanout/printers/left", json={"grants": ["pause", "resume"]})
        assert entry["grants"] == ["pause", "resume"]

        pause["print"]["sequence_id"] = "7002"
        await c.publish(f"device/{LEFT}/request", orjson.dumps(pause))
        await eventually(
            lambda: [m for m in vp.received if m.get("print", {}).get("sequence_id") == "7002"],
            what="forwarded",
        )
        # The printer's own answer comes back to the client like any report.
        answer = await first(c, lambda _t, m: m.get("print", {}).get("sequence_id") == "7002")
        assert answer["print"]["command"] == "pause" and "result" in answer["print"]
        # The printer's access code is never handed out, whatever the grants.
        ask = {"system": {"command": "get_access_code", "sequence_id": "7003"}}
        await c.publish(f"device/{LEFT}/request", orjson.dumps(ask))
        reply = await first(c, lambda _t, m: m.get("system", {}).get("sequence_id") == "7003")
        assert reply["system"]["result"] == "failed" and ACCESS_CODE not in orjson.dumps(reply).decode()
    assert not [m for m in vp.received if "system" in m]


async def test_the_acl_keeps_a_client_to_its_own_printer(farm: Farm) -> None:
    port, printers = await endpoint(farm)
    left_code = printers["left"]["access_code"]
    with pytest.raises(aiomqtt.MqttError, match=r"135|Not authorized"):
        async with client(farm, port, ACCESS_CODE):  # the printer's own code opens nothing here
            pass
    async with client(farm, port, left_code) as c, client(farm, port, printers["right"]["access_code"]) as r:
        await r.subscribe(f"device/{RIGHT}/report")
        granted = await c.subscribe(f"device/{RIGHT}/report")
        assert list(granted) == [128]  # SUBACK: refused
        # Filters are read as the broker reads them: those that can bring the client's own report
        # are granted (each message is still checked before delivery), any other is refused.
        covering = ["#", "device/#", "+/+/report", f"device/{LEFT}/#", f"device/{LEFT}/report/#"]
        other = ["device/+/request", "device/+", f"device/{LEFT}0/report", "+/report", "$SYS/#"]
        granted = await c.subscribe([(f, 0) for f in covering + other])
        assert list(granted) == [0] * len(covering) + [128] * len(other)
        await c.subscribe("device/+/report")
        await c.publish(
            f"device/{RIGHT}/request", orjson.dumps({"pushing": {"command": "pushall", "sequence_id": "9"}})
        )
        seen: set[str] = set()

        async def collect() -> None:
            async for m in c.messages:
                seen.add(str(m.topic))

        task = asyncio.create_task(collect())
        try:
            # Both printers report twice a second; after the right one's client has had two
            # reports, the left one's client has had the chance to see the right's too.
            for _ in range(2):
                await first(r, lambda _t, m: is_full_report(m))
            await eventually(lambda: f"device/{LEFT}/report" in seen, what="left's reports")
        finally:
            task.cancel()
        assert seen == {f"device/{LEFT}/report"}
    assert not [m for m in farm.vps["right"].received if m.get("pushing", {}).get("sequence_id") == "9"]


async def test_a_rotated_code_disconnects_its_clients_and_stops_working(farm: Farm) -> None:
    port, printers = await endpoint(farm)
    old = printers["left"]["access_code"]
    async with client(farm, port, old) as c:
        await c.subscribe(f"device/{LEFT}/report")
        await first(c, lambda _t, m: is_full_report(m))
        new = (await farm.ok("POST", "/api/fanout/printers/left/rotate"))["access_code"]
        assert new not in (old, ACCESS_CODE)
        with pytest.raises(aiomqtt.MqttError):
            async with asyncio.timeout(10):
                async for _ in c.messages:
                    pass
    with pytest.raises(aiomqtt.MqttError, match=r"135|Not authorized"):
        async with client(farm, port, old):
            pass
    async with client(farm, port, new) as c:
        await c.subscribe(f"device/{LEFT}/report")
        await first(c, lambda _t, m: is_full_report(m))
    assert (await endpoint(farm))[1]["right"]["access_code"] == printers["right"]["access_code"]


async def test_a_killed_broker_is_restarted_and_clients_come_back(farm: Farm) -> None:
    port, printers = await endpoint(farm)
    (mosquitto,) = fanout_mosquittos(farm)
    os.kill(mosquitto, signal.SIGKILL)
    health = await eventually(
        lambda: _health(farm, lambda h: h.get("restarts") == 1 and h.get("broker")), what="a restart"
    )
    assert health["state"] == "running"
    assert fanout_mosquittos(farm) != [mosquitto]
    async with client(farm, port, printers["left"]["access_code"]) as c:
        await c.subscribe(f"device/{LEFT}/report")
        await first(c, lambda _t, m: is_full_report(m))


async def test_a_port_in_use_fails_the_endpoint_and_the_daemon_serves(tmp_path, broker) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        farm = await start_farm(tmp_path, broker, {"fanout": {"port": port, "bind": "127.0.0.1"}})
        try:
            fanout = (await farm.ok("GET", "/api/health"))["components"]["fanout"]
            assert fanout["state"] == "failed" and "Address already in use" in fanout["error"]
            assert len(await farm.ok("GET", "/api/printers")) == 2
            status, body = await farm.call("POST", "/api/fanout/printers/left/rotate")
            assert status == 503 and body["error"] == "unavailable"
            assert fanout_mosquittos(farm) == []  # nothing left running
        finally:
            await farm.close()
    farm.check_logs()


async def _health(farm: Farm, ok: Callable[[dict], Any]) -> dict | None:
    h = (await farm.ok("GET", "/api/health"))["components"]["fanout"]
    return h if ok(h) else None


def fanout_mosquittos(farm: Farm) -> list[int]:
    """The daemon's mosquitto children."""
    assert farm.daemon is not None
    pid = farm.daemon.proc.pid
    kids = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            kids += [int(c) for c in (task / "children").read_text().split()]
    out = []
    for k in kids:
        with contextlib.suppress(OSError):
            if "mosquitto" in Path(f"/proc/{k}/cmdline").read_text():
                out.append(k)
    return out
