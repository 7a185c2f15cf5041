"""Print history end to end: the real daemon (a child process, as systemd runs it) <-> mosquitto <->
the virtual printer, seen through the HTTPS API and the WebSocket; killed and restarted mid-print."""

from __future__ import annotations

import asyncio
import csv
import io
import signal
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from bambu_edge.printers.virtual import VirtualPrinter
from tests.integration.running_daemon import Farm
from tests.integration.waiting import eventually

SERIAL_X1C = "00M00A000000001"


@pytest.fixture
async def unit(farm_factory) -> AsyncIterator[tuple[Farm, VirtualPrinter]]:
    """One bambu-edge installation with one X1C: config and data folder outlive daemon restarts."""
    u = await farm_factory({"x1c": ("X1C", "X1C", SERIAL_X1C)}, x1c={"report_hz": 2.0, "held": True})
    await eventually(lambda: _connected(u), what="printer connected")
    yield u, u.vps["x1c"]


async def _get(u: Farm, path: str, status: int = 200) -> Any:
    got, body = await u.call("GET", path)
    assert got == status, (path, got, body)
    return body.decode() if isinstance(body, bytes) else body


async def _history(u: Farm) -> list[dict[str, Any]]:
    return (await _get(u, "/api/history"))["items"]


async def _connected(u: Farm) -> bool:
    p = await _get(u, "/api/printers/x1c")
    return p["link"]["state"] == "connected" and p["print"]["state"] is not None


async def _frame(ws: aiohttp.ClientWebSocketResponse, pred, timeout: float = 30.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        frame = await ws.receive_json(timeout=max(deadline - time.monotonic(), 0.1))
        if pred(frame):
            return frame
    raise AssertionError("no such frame")


def _history_frame(action: str):
    return lambda f: f["type"] == "history" and f["action"] == action


async def test_a_print_to_finish_is_one_complete_record_announced_on_the_websocket(unit):
    u, vp = unit
    async with u.http.ws_connect(f"{u.https}/api/ws", headers=u.auth) as ws:
        assert (await ws.receive_json(timeout=5))["type"] == "snapshot"
        t0 = time.time()
        await vp.simulate_print("Benchy", duration_s=6, layers=30, tray=5)  # AMS 1, slot 1: blue ABS
        started = await _frame(ws, _history_frame("started"))
        assert started["id"] == "x1c" and started["record"]["outcome"] == "running"
        assert started["record"]["job"] == "Benchy"
        # Committed before announced: the API already has it.
        (running,) = await _history(u)
        assert running["uid"] == started["record"]["uid"] and running["outcome"] == "running"
        t_seen = time.time()  # the record started no later than this...
        await vp.finish(steps=3)
        t_finished = time.time()  # ... and ended no earlier than this
        ended = await _frame(ws, _history_frame("ended"))
    rec = ended["record"]
    assert rec["uid"] == started["record"]["uid"] and rec["id"] == running["id"]
    assert rec["outcome"] == "success" and rec["failure_reason"] is None
    assert rec["printer_id"] == "x1c" and rec["printer_name"] == "X1C" and rec["model"] == "X1C"
    assert rec["job"] == "Benchy" and rec["file"] == "/data/Metadata/plate_1.gcode" and rec["plate"] == 1
    assert rec["layers"] == 30 and rec["total_layers"] == 30 and rec["progress"] == 100
    assert t0 - 1 <= rec["started_at"] <= rec["ended_at"] <= time.time()
    assert t_finished - t_seen <= rec["duration_s"] <= time.time() - t0
    # The tray it printed from, with type and colour from the AMS state (grams: no metadata here).
    assert rec["filament"] == [
        {"slot": 5, "type": "ABS", "color": "#489FDFFF", "grams": None, "meters": None}
    ]
    assert await _history(u) == [rec]
    assert await _get(u, f"/api/history/{rec['id']}") == rec
    # FINISH stays on the screen: no second record from the next three full reports (X1C: every
    # report is the whole state) that reach the daemon.
    await asyncio.sleep(3 / vp.report_hz)
    assert len(await _history(u)) == 1


async def test_a_print_stopped_from_the_api_is_cancelled(unit):
    u, vp = unit
    await vp.simulate_print("Phone stand", duration_s=120, layers=80)
    await eventually(lambda: _outcomes(u, ["running"]), what="a running record")
    async with u.http.post(
        f"{u.https}/api/printers/x1c/commands", json={"action": "stop"}, headers=u.auth
    ) as r:
        assert r.status == 202
    (rec,) = await eventually(lambda: _outcomes(u, ["cancelled"]), what="a cancelled record")
    assert rec["error_code"] == "0300_400C" and rec["ended_at"] >= rec["started_at"]
    assert vp.gcode_state == "FAILED"


async def test_a_failed_print_says_why(unit):
    u, vp = unit
    await vp.simulate_print("Planter", duration_s=120, layers=80)
    await eventually(lambda: _outcomes(u, ["running"]), what="a running record")
    # AMS alarm 0700_2000_0002_0001 (attr 0x07002000, code 0x00020001) and print_error 0700_8006.
    await vp.fail_print(117473286, hms=[{"attr": 0x07002000, "code": 0x00020001}])
    (rec,) = await eventually(lambda: _outcomes(u, ["failed"]), what="a failed record")
    assert rec["error_code"] == "0700_8006" and "0700_2000_0002_0001" in rec["hms"]
    assert rec["failure_reason"].startswith("Print error 0700_8006; AMS: serious problem")


async def _outcomes(u: Farm, outcomes: list[str]):
    items = await _history(u)
    return items if [i["outcome"] for i in items] == outcomes else None


async def test_sigkill_mid_print_then_restart_resumes_the_same_record(unit):
    u, vp = unit
    await vp.simulate_print("Gridfinity bin", duration_s=25, layers=60)
    (before,) = await eventually(lambda: _outcomes(u, ["running"]), what="a running record")
    await vp.advance(12.5, steps=2)  # preparing (2.5 s) done, 40 % printed
    await eventually(lambda: _state(u, "RUNNING"), what="RUNNING")
    u.stop_daemon(signal.SIGKILL)  # no clean stop: whatever was written is all there is
    assert vp.gcode_state == "RUNNING"
    await u.start_daemon()
    await eventually(lambda: _connected(u), what="connected again")
    (resumed,) = await _history(u)
    assert resumed["uid"] == before["uid"] and resumed["id"] == before["id"]
    await vp.finish(steps=3)
    (done,) = await eventually(lambda: _outcomes(u, ["success"]), timeout=40, what="the print to finish")
    assert done["uid"] == before["uid"] and done["started_at"] == before["started_at"]
    assert done["layers"] == 60 and done["progress"] == 100
    assert vp.gcode_state == "FINISH"


async def test_a_print_that_finishes_while_the_daemon_is_down_is_closed_as_success(unit):
    u, vp = unit
    job = await vp.simulate_print("Cable clip x8", duration_s=8, layers=36)
    (before,) = await eventually(lambda: _outcomes(u, ["running"]), what="a running record")
    u.stop_daemon(signal.SIGTERM)
    t_down = time.time()
    await vp.finish(steps=3)
    assert vp.gcode_state == "FINISH"
    await u.start_daemon()
    (rec,) = await eventually(lambda: _outcomes(u, ["success"]), what="closed on restart")
    assert rec["uid"] == before["uid"] and rec["id"] == before["id"]
    assert rec["started_at"] <= rec["ended_at"] <= time.time()
    assert rec["ended_at"] >= t_down - job.duration_s  # not invented before the print could end


async def _state(u: Farm, state: str):
    return (await _get(u, "/api/printers/x1c"))["print"]["state"] == state


# The CSV has every matching row (no paging); totals are neither sorted nor paged.
IGNORED = {
    ("/api/history.csv", "limit"),
    ("/api/history.csv", "offset"),
    ("/api/history/totals", "sort"),
    ("/api/history/totals", "limit"),
    ("/api/history/totals", "offset"),
}


async def test_csv_totals_and_bad_queries_through_the_api(unit):
    u, vp = unit
    # In real time: print_hours is rounded to 3 decimals, so the ended prints must add up to 1.8 s.
    vp.run_clock()
    await vp.simulate_print('cube, "big"', duration_s=4, layers=10)
    await eventually(lambda: _outcomes(u, ["success"]), what="first print")
    vp.hold()
    await vp.simulate_print("=cmd", duration_s=60, layers=10)
    await eventually(lambda: _outcomes(u, ["running", "success"]), what="second print")
    async with u.http.post(
        f"{u.https}/api/printers/x1c/commands", json={"action": "stop"}, headers=u.auth
    ) as r:
        assert r.status == 202
    await eventually(lambda: _outcomes(u, ["cancelled", "success"]), what="second print cancelled")

    async with u.http.get(f"{u.https}/api/history.csv?sort=started_at", headers=u.auth) as r:
        assert r.status == 200 and r.content_type == "text/csv"
        assert "attachment" in r.headers["Content-Disposition"]
        rows = list(csv.reader(io.StringIO(await r.text())))
    header, first, second = rows
    assert header[:3] == ["id", "uid", "printer_id"]
    row1, row2 = dict(zip(header, first, strict=True)), dict(zip(header, second, strict=True))
    assert row1["job"] == 'cube, "big"' and row1["outcome"] == "success"
    assert row2["job"] == "'=cmd" and row2["outcome"] == "cancelled"
    only = await _get(u, "/api/history.csv?outcome=cancelled")
    assert len(list(csv.reader(io.StringIO(only)))) == 2

    totals = await _get(u, "/api/history/totals")
    assert (
        totals["count"] == 2
        and totals["by_outcome"]["success"] == 1
        and totals["by_outcome"]["cancelled"] == 1
    )
    assert totals["success_rate"] == 0.5 and totals["print_hours"] > 0
    assert (await _get(u, "/api/history/totals?printer=x1c&status=success"))["count"] == 1
    assert (await _get(u, "/api/history?q=CUBE"))["total"] == 1
    assert (await _get(u, "/api/history?sort=job&limit=1"))["items"][0]["job"] == "=cmd"
    assert (await _get(u, "/api/history?from=2000-01-01&to=2000-01-02"))["total"] == 0
    assert (await _get(u, f"/api/history?from={int(time.time()) - 3600}"))["total"] == 2

    for query, words in [
        ("sort=started_at;DROP", "sort"),
        ("outcome=finished", "outcome"),
        ("from=yesterday", "from"),
        ("limit=9999", "limit"),
        ("offset=-1", "offset"),
        ("from=2025-02-01&to=2025-01-01", "before"),
    ]:
        name = query.split("=")[0]
        for path in ("/api/history", "/api/history.csv", "/api/history/totals"):
            if (path, name) in IGNORED:
                continue
            body = await _get(u, f"{path}?{query}", status=400)
            assert body["error"] == "bad_request" and words in body["message"], (path, query, body)
    rec_id = (await _history(u))[0]["id"]
    assert (await _get(u, f"/api/history/{rec_id + 100}", status=404))["error"] == "not_found"
    await _get(u, f"/api/history/{rec_id}/thumbnail", status=404)  # no thumbnail for a print from elsewhere
    async with u.http.get(f"{u.https}/api/history") as r:
        assert r.status == 401  # login needed
    spec = await _get(u, "/api/openapi.json")
    for path in ("/api/history", "/api/history.csv", "/api/history/totals", "/api/history/{id}"):
        assert path in spec["paths"], path
    names = {p["name"] for p in spec["paths"]["/api/history"]["get"]["parameters"]}
    assert {"printer", "outcome", "q", "from", "to", "sort", "limit", "offset"} <= names
    assert "text/csv" in spec["paths"]["/api/history.csv"]["get"]["responses"]["200"]["content"]
