"""The whole spine: daemon process <-> mosquitto <-> virtual printer, seen through the HTTPS API."""

from __future__ import annotations

import time

from tests.integration.running_daemon import SERIAL_X1C, eventually


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
