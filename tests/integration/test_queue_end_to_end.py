"""Issue 4's main path, end to end: the real daemon (child process) + mosquitto + three virtual
printers, each with its own vsftpd as its storage (presenting the broker's certificate, as one
printer shows one certificate on both ports).

Upload a sliced 3MF to the queue through the API -> it waits, saying why for each printer -> the
free compatible printer gets it, not the busy or the incompatible one -> the file is on that
printer's storage -> the print runs -> exactly one complete history record with the queue job id.
Also: a printer without Developer Mode refuses (the job says so), and the queue survives a daemon
killed with SIGKILL mid-print.
"""

from __future__ import annotations

import signal
import time

import pytest

from tests.factories.threemf import PlateSpec, make_3mf
from tests.integration.running_daemon import (
    BLACK_PLA,
    PRINTERS,
    all_connected,
    eventually,
    job_state,
    readiness_is,
    running_for_the_queue,
    upload,
)

pytestmark = pytest.mark.integration


async def test_a_queued_file_goes_to_the_free_compatible_printer_and_is_recorded_once(farm_factory, tmp_path):
    farm = await farm_factory(**{pid: {"held": True} for pid in PRINTERS})
    busy = farm.vps["p1s-busy"]
    await busy.simulate_print("someone else's print", duration_s=3600, layers=300, start_fraction=0.5)
    await eventually(lambda: all_connected(farm), what="printers connected")
    await farm.ok("POST", "/api/printers/a1/bed", json={"clear": True})
    await farm.ok("POST", "/api/printers/p1s-busy/bed", json={"clear": True})

    made = make_3mf(
        tmp_path / "cube.gcode.3mf",
        printer_model_id="C12",
        nozzle=0.4,
        plates=[PlateSpec(prediction_s=3000, layers=60, filaments=[BLACK_PLA])],
    )
    f = await upload(farm, made.path)
    assert f["meta"]["printer_model"] == "P1S"
    job = await farm.ok("POST", "/api/queue", json={"file_id": f["id"], "plate": 1, "copies": 1})

    # It waits, and says why for every printer in plain words.
    assert job["state"] == "waiting"
    assert job["reasons"] == [
        "A1: sliced for P1S, this is an A1",
        "P1S busy: printing",
        "P1S free: bed not marked clear",
    ]
    q = await farm.ok("GET", "/api/queue")
    readiness = {p["id"]: p for p in q["printers"]}
    assert readiness["p1s-free"] == {
        "id": "p1s-free",
        "bed_clear": False,
        "ready": False,
        "reason": "bed not marked clear",
    }
    assert readiness["a1"]["ready"] is True

    async with farm.http.ws_connect(f"{farm.https}/api/ws", headers=farm.auth) as ws:
        assert (await ws.receive_json(timeout=5))["type"] == "snapshot"
        bed = await farm.ok("POST", "/api/printers/p1s-free/bed", json={"clear": True})
        assert bed["bed_clear"] is True
        seen_states, transfers = [], []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and "done" not in seen_states:
            frame = await ws.receive_json(timeout=30)
            if frame["type"] == "queue" and (frame.get("job") or {}).get("id") == job["id"]:
                state = frame["job"]["state"]
                if not seen_states or seen_states[-1] != state:
                    seen_states.append(state)
                    if state == "printing":
                        await eventually(lambda: running_for_the_queue(farm, "p1s-free"), what="labelled")
                        await farm.vps["p1s-free"].finish(steps=5)
            elif frame["type"] == "transfer":
                transfers.append(frame)
    assert seen_states[-1] == "done", seen_states
    assert "dispatching" in seen_states and "printing" in seen_states
    assert transfers and all(t["id"] == "p1s-free" for t in transfers)
    assert transfers[-1]["state"] == "done" and transfers[-1]["done"] == transfers[-1]["total"] == f["size"]
    assert transfers[-1]["path"] == "/cache/cube.gcode.3mf"

    # The file reached the free printer's storage, and only that one.
    assert farm.ftps["p1s-free"].path("/cache/cube.gcode.3mf").read_bytes() == made.path.read_bytes()
    assert not farm.ftps["p1s-busy"].path("/cache").exists()
    assert not farm.ftps["a1"].path("/cache").exists()
    sent = [
        r["print"]
        for r in farm.vps["p1s-free"].received
        if r.get("print", {}).get("command") == "project_file"
    ]
    assert len(sent) == 1
    assert sent[0]["url"] == "file:///sdcard/cache/cube.gcode.3mf"  # a P1S is a legacy model (BAMBU.md 13.4)
    assert sent[0]["param"] == "Metadata/plate_1.gcode" and sent[0]["subtask_name"] == "cube"
    assert sent[0]["ams_mapping"] == [3] and sent[0]["use_ams"] is True
    for other in ("p1s-busy", "a1"):
        assert not any(r.get("print", {}).get("command") == "project_file" for r in farm.vps[other].received)
    assert farm.vps["p1s-free"].gcode_state == "FINISH"

    done = await farm.ok("GET", f"/api/queue/{job['id']}")
    assert done["copies_done"] == 1 and done["reasons"] == []
    [run] = done["runs"]
    assert run["printer_id"] == "p1s-free" and run["state"] == "done" and run["history_id"]

    # Exactly one history record, complete, carrying the queue job id.
    history = await farm.ok("GET", "/api/history", params={"printer": "p1s-free"})
    assert history["total"] == 1
    [record] = history["items"]
    assert record["id"] == run["history_id"] and record["queue_job_id"] == job["id"]
    assert record["outcome"] == "success" and record["job"] == "cube" and record["ended_at"]
    assert record["filament"] and record["filament"][0]["slot"] == 3
    # After the print the bed is not clear: nothing else starts there until a user says so.
    await eventually(lambda: readiness_is(farm, "p1s-free", "bed not marked clear"), what="bed not clear")


async def test_a_printer_without_developer_mode_refuses_and_the_job_says_so(farm_factory, tmp_path):
    farm = await farm_factory({"p1s-free": PRINTERS["p1s-free"]}, **{"p1s-free": {"developer_mode": False}})
    await eventually(lambda: all_connected(farm), what="printer connected")
    await farm.ok("POST", "/api/printers/p1s-free/bed", json={"clear": True})
    made = make_3mf(tmp_path / "cube.gcode.3mf", plates=[PlateSpec(filaments=[BLACK_PLA])])
    f = await upload(farm, made.path)
    job = await farm.ok("POST", "/api/queue", json={"file_id": f["id"]})
    failed = await eventually(lambda: job_state(farm, job["id"], "failed"), what="job failed")
    assert "Developer Mode" in failed["last_error"]
    assert failed["attempts"] == 1  # refused: not retried blindly
    assert failed["runs"][0]["state"] == "failed" and "Developer Mode" in failed["runs"][0]["error"]
    assert farm.vps["p1s-free"].gcode_state == "IDLE"
    # Nothing was printed, so the bed is still clear.
    q = await farm.ok("GET", "/api/queue")
    assert q["printers"][0]["bed_clear"] is True
    history = await farm.ok("GET", "/api/history", params={"printer": "p1s-free"})
    assert history["total"] == 0
    # Starting the uploaded file by hand is refused the same way, and the user is told why.
    assert farm.ftps["p1s-free"].path("/cache/cube.gcode.3mf").is_file()
    async with farm.http.ws_connect(f"{farm.https}/api/ws", headers=farm.auth) as ws:
        assert (await ws.receive_json(timeout=5))["type"] == "snapshot"
        sent = await farm.ok("POST", "/api/printers/p1s-free/print", json={"path": "/cache/cube.gcode.3mf"})
        assert sent["ams_mapping"] == [3]
        while True:
            frame = await ws.receive_json(timeout=15)
            if frame["type"] == "command" and frame["sequence_id"] == sent["sequence_id"]:
                break
    assert frame["action"] == "print" and frame["result"] == "failed"
    assert "Developer Mode" in frame["message"]


async def test_the_queue_survives_a_daemon_killed_mid_print(farm_factory, tmp_path):
    only = {"p1s-free": PRINTERS["p1s-free"]}
    farm = await farm_factory(only, **{"p1s-free": {"held": True}})
    await eventually(lambda: all_connected(farm), what="printer connected")
    await farm.ok("POST", "/api/printers/p1s-free/bed", json={"clear": True})
    made = make_3mf(tmp_path / "cube.gcode.3mf", plates=[PlateSpec(prediction_s=3000, filaments=[BLACK_PLA])])
    f = await upload(farm, made.path)
    first = await farm.ok("POST", "/api/queue", json={"file_id": f["id"]})
    second = await farm.ok("POST", "/api/queue", json={"file_id": f["id"], "copies": 2})
    await eventually(lambda: job_state(farm, first["id"], "printing"), what="printing")
    await farm.ok("POST", "/api/queue/pause")

    farm.stop_daemon(signal.SIGKILL)  # no goodbye: as a power cut would
    assert farm.vps["p1s-free"].gcode_state in ("PREPARE", "RUNNING")
    await farm.start_daemon()

    q = await farm.ok("GET", "/api/queue")
    assert q["paused"] is True
    assert [j["id"] for j in q["jobs"][:2]] == [first["id"], second["id"]]
    assert q["jobs"][1]["reasons"] == ["the queue is paused"]
    await farm.vps["p1s-free"].finish(steps=5)
    done = await eventually(lambda: job_state(farm, first["id"], "done"), timeout=60, what="first job done")
    assert done["copies_done"] == 1 and len(done["runs"]) == 1
    history = await farm.ok("GET", "/api/history", params={"printer": "p1s-free"})
    assert history["total"] == 1
    record = history["items"][0]
    assert record["outcome"] == "success" and record["queue_job_id"] == first["id"] and record["ended_at"]
    # Still paused: the second job waited.
    waiting = await farm.ok("GET", f"/api/queue/{second['id']}")
    assert waiting["state"] == "waiting" and waiting["runs"] == []
