"""Power control in the real daemon (a child process) with mosquitto, a virtual P1S and its vsftpd,
and a Shelly Gen2 plug on loopback that powers the printer: when its relay is off, the printer's
MQTT side (the broker) and the virtual printer are down, as a printer without mains would be.

Switched off through the API -> the printer goes offline -> a job is queued -> the queue asks for
the printer, the relay goes on -> the printer comes online -> the job is dispatched and printed ->
switching off while it prints is refused (409) without confirm -> the print's energy is on its
history record (and in the totals and the CSV) -> finished, cool and idle -> switched off.
"""

from __future__ import annotations

import csv
import io
import signal
import sqlite3

import pytest

from tests.factories.threemf import PlateSpec, make_3mf
from tests.integration.running_daemon import (
    BLACK_PLA,
    Farm,
    all_connected,
    eventually,
    job_state,
    readiness_is,
    running_for_the_queue,
    upload,
)
from tests.integration.smart_plugs import ShellyGen2Plug

pytestmark = pytest.mark.integration

P1S = {"p1s": ("P1S", "P1S", "01P09C000000009")}


async def test_the_queue_switches_on_an_off_printer_prints_after_online_and_records_energy(
    farm_factory, tmp_path
):
    plug = ShellyGen2Plug(on=True, watts=180.0, wh_per_s=50.0)
    await plug.start()
    try:
        farm = await farm_factory(
            P1S,
            entry_extra={
                "p1s": {"power": {"shelly": plug.url, "auto_off": {"idle_min": 0.05, "below_nozzle_c": 300}}}
            },
            config_extra={"energy": {"price_per_kwh": 0.4, "currency": "EUR"}},
            p1s={"held": True},
        )
        vp = farm.vps["p1s"]

        async def mains(on: bool) -> None:
            if on:
                farm.broker.start()
                await vp.start()
            else:
                await vp.stop()
                farm.broker.kill()

        plug.on_switch = mains

        async def link(state: str) -> bool:
            return (await farm.ok("GET", "/api/printers/p1s"))["link"]["state"] == state

        await eventually(lambda: link("connected"), what="printer online")
        assert await farm.ok("GET", "/api/printers/p1s/power") == {
            "kind": "shelly",
            "on": True,
            "watts": 180.0,
            "reachable": True,
            "error": None,
        }
        # Idle: switched off by hand, no confirmation needed. The printer goes offline.
        off = await farm.ok("POST", "/api/printers/p1s/power", json={"on": False})
        assert off["on"] is False and not plug.on
        await eventually(lambda: link("offline"), timeout=30, what="printer offline")
        await farm.ok("POST", "/api/printers/p1s/bed", json={"clear": True})

        off_words = "switched off (switched on when a job needs it)"
        await eventually(lambda: readiness_is(farm, "p1s", off_words), what="off in the queue")

        made = make_3mf(
            tmp_path / "cube.gcode.3mf",
            printer_model_id="C12",
            nozzle=0.4,
            plates=[PlateSpec(prediction_s=3000, layers=60, filaments=[BLACK_PLA])],
        )
        f = await upload(farm, made.path)
        job = await farm.ok("POST", "/api/queue", json={"file_id": f["id"], "plate": 1, "copies": 1})
        # The queue wants the printer: the relay goes on, the printer comes online, then the dispatch.
        await eventually(lambda: plug.on, timeout=30, what="relay on")
        await eventually(lambda: link("connected"), timeout=60, what="printer online again")
        await eventually(lambda: job_state(farm, job["id"], "printing"), timeout=60, what="printing")
        # Power told the link to connect at once, not after its backoff (the link cuts its wait short
        # only if it had not reconnected on its own meanwhile: test_bambu_link tests that part).
        assert "printer p1s switched on: its link connects now" in farm.daemon.output
        assert [r for r in vp.received if r.get("print", {}).get("command") == "project_file"]

        # Printing: no switching off without a confirmation.
        await eventually(lambda: running_for_the_queue(farm, "p1s"), what="labelled")
        status, body = await farm.call("POST", "/api/printers/p1s/power", json={"on": False})
        assert status == 409 and body["error"] == "printing", body
        assert "confirm" in body["message"] and plug.on

        await vp.finish(steps=5)
        await eventually(lambda: job_state(farm, job["id"], "done"), timeout=60, what="done")

        async def measured() -> dict | None:
            items = (await farm.ok("GET", "/api/history", params={"printer": "p1s"}))["items"]
            return items[0] if items and items[0]["energy_kwh"] is not None else None

        record = await eventually(measured, timeout=30, what="energy on the record")
        assert record["outcome"] == "success" and record["energy_kwh"] > 0
        assert record["energy_cost"] == pytest.approx(record["energy_kwh"] * 0.4, abs=1e-3)
        totals = await farm.ok("GET", "/api/history/totals")
        assert totals["energy_kwh"] == pytest.approx(record["energy_kwh"], abs=1e-3)
        status, raw = await farm.call("GET", "/api/history.csv")
        rows = list(csv.DictReader(io.StringIO(raw.decode())))
        assert float(rows[0]["energy_kwh"]) == pytest.approx(record["energy_kwh"], abs=1e-4)

        # Finished, cool (below 300 °C here) and idle for 3 s: switched off by itself.
        await eventually(lambda: not plug.on, timeout=60, what="auto-off")
        await eventually(lambda: link("offline"), timeout=30, what="printer offline")
    finally:
        plug.on_switch = None
        await plug.stop()


def saved_start_wh(farm: Farm, uid: str) -> float | None:
    """The plug's counter at the print's start as the daemon keeps it in its database."""
    with sqlite3.connect(f"file:{farm.tmp / 'data' / 'bambu-edge.db'}?mode=ro", uri=True) as db:
        row = db.execute("SELECT start_wh FROM power_energy_start WHERE record_uid = ?", (uid,)).fetchone()
    return None if row is None else row[0]


async def test_a_restart_mid_print_still_measures_the_whole_print(farm_factory):
    plug = ShellyGen2Plug(on=True, watts=180.0, wh_per_s=50.0)
    await plug.start()
    try:
        farm = await farm_factory(
            P1S,
            entry_extra={"p1s": {"power": {"shelly": plug.url}}},
            config_extra={"energy": {"price_per_kwh": 0.4}},
            p1s={"held": True},
        )
        vp = farm.vps["p1s"]
        await eventually(lambda: all_connected(farm), what="printer connected")
        await vp.simulate_print("Benchy", duration_s=25, layers=60)

        async def running() -> dict | None:
            items = (await farm.ok("GET", "/api/history", params={"printer": "p1s"}))["items"]
            return items[0] if items and items[0]["outcome"] == "running" else None

        record = await eventually(running, what="a running record")
        start_wh = await eventually(lambda: saved_start_wh(farm, record["uid"]), what="start reading saved")
        await vp.advance(12.5, steps=2)
        farm.stop_daemon(signal.SIGKILL)  # nothing in memory survives: only what was written
        before_restart_wh = plug.energy_wh()
        await farm.start_daemon()
        await eventually(lambda: all_connected(farm), what="connected again")
        await vp.finish(steps=3)
        finished_wh = plug.energy_wh()

        async def measured() -> dict | None:
            items = (await farm.ok("GET", "/api/history", params={"printer": "p1s"}))["items"]
            return items[0] if items and items[0]["energy_kwh"] is not None else None

        done = await eventually(measured, timeout=30, what="energy on the record")
        seen_wh = plug.energy_wh()
        assert done["uid"] == record["uid"] and done["outcome"] == "success"
        # From the reading saved before the restart to the one at the end: the whole print.
        assert (before_restart_wh - start_wh) / 1000 < (finished_wh - start_wh) / 1000 <= done["energy_kwh"]
        assert done["energy_kwh"] <= (seen_wh - start_wh) / 1000 + 1e-3
        assert done["energy_cost"] == pytest.approx(done["energy_kwh"] * 0.4, abs=1e-3)
        assert saved_start_wh(farm, record["uid"]) is None  # taken with the end reading
    finally:
        await plug.stop()
