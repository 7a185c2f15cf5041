"""The whole spine: daemon process <-> mosquitto <-> virtual printer, seen through the HTTPS API."""

from __future__ import annotations

import asyncio
import ssl
import subprocess
import sys
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest

from bambu_edge.printers.virtual import VirtualPrinter
from tests.conftest import ACCESS_CODE
from tests.integration.daemon_proc import DaemonProcess, NotifySocket, printer_entry, write_config

SERIAL_X1C = "00M00A000000001"
PASSWORD = "correct horse battery"


def _no_verify() -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


async def eventually(fn, timeout: float = 10.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = await fn()
        if last:
            return last
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}; last: {last}")


@pytest.fixture
async def spine(tmp_path, broker) -> AsyncIterator[dict]:
    cfg_path = tmp_path / "config.yaml"
    cfg = write_config(cfg_path, tmp_path / "data", [printer_entry(broker, SERIAL_X1C, ACCESS_CODE, "x1c")])
    cli = [sys.executable, "-m", "bambu_edge", "--config", str(cfg_path)]
    subprocess.run([*cli, "user", "add", "admin"], input=PASSWORD + "\n", text=True, check=True, timeout=60)
    vp = VirtualPrinter(
        broker.host, broker.port, SERIAL_X1C, ACCESS_CODE, "X1C", str(broker.ca_path), report_hz=2.0
    )
    await vp.start()
    sock = NotifySocket(tmp_path / "notify.sock")
    daemon = DaemonProcess(cfg_path, env={"NOTIFY_SOCKET": str(sock.path)})
    try:
        await asyncio.to_thread(sock.wait_for, "READY=1", 30)
        base = f"https://127.0.0.1:{cfg['web']['https_port']}"
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=_no_verify())) as http:
            async with http.post(
                f"{base}/api/auth/login", json={"username": "admin", "password": PASSWORD}
            ) as r:
                assert r.status == 200
                token = (await r.json())["token"]
            yield {
                "base": base,
                "http": http,
                "auth": {"Authorization": f"Bearer {token}"},
                "vp": vp,
                "broker": broker,
            }
    finally:
        daemon.stop()
        sock.close()
        await vp.stop()
    assert ACCESS_CODE not in daemon.output
    assert "Traceback" not in daemon.output


async def _printer(s: dict) -> dict:
    async with s["http"].get(f"{s['base']}/api/printers/x1c", headers=s["auth"]) as r:
        assert r.status == 200
        return await r.json()


async def test_live_state_and_pause_through_the_api(spine):
    s = spine
    # Nothing without a login.
    async with s["http"].get(f"{s['base']}/api/printers") as r:
        assert r.status == 401
    p = await eventually(lambda: _get_connected(s), what="printer connected with state")
    assert p["model"] == "X1C" and p["serial"] == SERIAL_X1C
    assert p["print"]["state"] == s["vp"].gcode_state
    # The virtual printer starts a print; the API follows it.
    await s["vp"].simulate_print("cube", duration_s=60, layers=50)
    await eventually(lambda: _state_is(s, "RUNNING"), what="RUNNING")

    async with s["http"].ws_connect(f"{s['base']}/api/ws", headers=s["auth"]) as ws:
        first = await ws.receive_json(timeout=5)
        assert first["type"] == "snapshot" and first["printers"][0]["id"] == "x1c"
        async with s["http"].post(
            f"{s['base']}/api/printers/x1c/commands", json={"action": "pause"}, headers=s["auth"]
        ) as r:
            assert r.status == 202
            seq = (await r.json())["sequence_id"]
        got_ack = got_pause = False
        deadline = time.monotonic() + 10
        while not (got_ack and got_pause) and time.monotonic() < deadline:
            frame = await ws.receive_json(timeout=5)
            if frame["type"] == "command" and frame["sequence_id"] == seq:
                assert frame["result"] == "success"
                got_ack = True
            if frame["type"] == "printer" and (frame["changes"].get("print") or {}).get("state") == "PAUSE":
                got_pause = True
        assert got_ack and got_pause
    assert s["vp"].gcode_state == "PAUSE"
    assert any(r.get("print", {}).get("command") == "pause" for r in s["vp"].received)


async def test_command_errors_map_to_http(spine):
    s = spine
    await eventually(lambda: _get_connected(s), what="connected")
    url = f"{s['base']}/api/printers/x1c/commands"
    async with s["http"].post(url, json={"action": "speed", "level": 9}, headers=s["auth"]) as r:
        assert r.status == 400
    async with s["http"].post(url, json={"action": "dance"}, headers=s["auth"]) as r:
        assert r.status == 400
    async with s["http"].post(
        f"{s['base']}/api/printers/nope/commands", json={"action": "pause"}, headers=s["auth"]
    ) as r:
        assert r.status == 404
    s["broker"].kill()  # the printer loses power (its broker is on the printer)
    await eventually(lambda: _link_is(s, "offline"), timeout=15, what="offline")
    async with s["http"].post(url, json={"action": "pause"}, headers=s["auth"]) as r:
        assert r.status == 409


async def _get_connected(s: dict):
    p = await _printer(s)
    return p if p["link"]["state"] == "connected" and p["print"]["state"] else None


async def _state_is(s: dict, state: str):
    return (await _printer(s))["print"]["state"] == state


async def _link_is(s: dict, state: str):
    return (await _printer(s))["link"]["state"] == state
