"""The dispatcher service in-process with real peers: BambuLinks to virtual printers on mosquitto,
vsftpd as their storage. Failure paths: retries with backoff, giving up, storage coming back,
cancelling an upload, an upload cut by a restart; and copies spread over printers."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from bambu_edge.bus import EventBus
from bambu_edge.config import Config, PrinterConfig
from bambu_edge.files.gcode import read_gcode_header
from bambu_edge.files.meta import PrintFileMeta
from bambu_edge.files.threemf import read_3mf
from bambu_edge.jobs.dispatcher import Dispatcher
from bambu_edge.jobs.queue import QueueStore
from bambu_edge.printers.manager import PrinterManager
from bambu_edge.printers.virtual import VirtualPrinter
from bambu_edge.store.db import Store
from tests.conftest import ACCESS_CODE, SERIAL
from tests.factories.threemf import PlateSpec, make_3mf
from tests.integration.vsftpd import VsftpdServer
from tests.integration.waiting import eventually

pytestmark = pytest.mark.integration

BLACK_PLA = ("PLA", "#000000", 10.0)


@dataclass
class Rig:
    config: Config
    store: Store
    bus: EventBus
    manager: PrinterManager
    queue: Dispatcher
    vps: dict[str, VirtualPrinter]
    ftps: dict[str, VsftpdServer]
    tmp: Path
    events: list[dict[str, Any]] = field(default_factory=list)

    async def add_file(self, name: str = "cube.gcode.3mf", **kw: Any) -> int:
        made = make_3mf(self.tmp / name, plates=[PlateSpec(filaments=[BLACK_PLA], **kw)])
        return await self.register(made.path, name, "3mf", read_3mf(made.path))

    async def register(self, path: Path, name: str, kind: str, meta: PrintFileMeta) -> int:
        """Keep ``path`` in the queue as the upload handler does: a temp copy, then register_file."""
        data = path.read_bytes()
        temp = self.queue.temp_path()
        temp.write_bytes(data)
        qf, _ = await self.queue.register_file(
            temp,
            name=name,
            kind=kind,
            size=len(data),
            sha256=hashlib.sha256(data).hexdigest(),
            md5=hashlib.md5(data).hexdigest(),
            meta=meta,
        )
        return qf.id

    async def restart_queue(self, **kw: Any) -> None:
        await self.queue.stop()
        self.queue = Dispatcher(self.config, QueueStore(self.store.db), self.manager, self.bus, **kw)
        await self.queue.start()


@pytest.fixture
async def rig_factory(tmp_path, broker) -> AsyncIterator[Callable[..., Any]]:
    rigs: list[Rig] = []
    servers: list[VsftpdServer] = []

    async def make(
        printers: dict[str, str], *, start_ftp: bool = True, ftp_options: dict | None = None, **queue_kw: Any
    ) -> Rig:
        ftps, cfgs, vps = {}, [], {}
        for i, (pid, model) in enumerate(printers.items()):
            server = VsftpdServer(
                tmp_path / f"ftp-{pid}",
                ACCESS_CODE,
                SERIAL,
                server_cert=broker.server_pair,
                **(ftp_options or {}),
            )
            servers.append(server)
            server.start()
            if not start_ftp:
                server.stop(keep_files=True)  # away; start() again brings it back on its port
            ftps[pid] = server
            serial = {"P1S": "01P", "A1": "039"}[model] + f"09C00000000{i}"
            cfgs.append(
                PrinterConfig(
                    id=pid,
                    name=pid.upper(),
                    type="bambu",
                    host=broker.host,
                    serial=serial,
                    access_code=ACCESS_CODE,
                    mqtt_port=broker.port,
                    ftps_port=server.port,
                )
            )
            server.root.mkdir(parents=True, exist_ok=True)
            vps[pid] = VirtualPrinter(
                broker.host, broker.port, serial, ACCESS_CODE, model, str(broker.ca_path),
                report_hz=5, sdcard_dir=server.root, time_scale=0.001, held=True,
            )  # fmt: skip
            await vps[pid].start()
        config = Config(data_dir=tmp_path / "data", printers=tuple(cfgs))
        store = Store(config)
        await store.start()
        bus = EventBus()
        manager = PrinterManager(config, bus, store.pins)
        await manager.start()
        queue_kw.setdefault("retry_delays", (0.3, 0.3))
        queue = Dispatcher(config, QueueStore(store.db), manager, bus, **queue_kw)
        await queue.start()
        rig = Rig(config, store, bus, manager, queue, vps, ftps, tmp_path)
        rigs.append(rig)
        await eventually(
            lambda: all(
                (v := link.state.view())["link"]["state"] == "connected"
                and v["print"]["state"]
                and v["model"]
                for link in manager.links()
            ),
            what="printers connected",
        )
        return rig

    try:
        yield make
    finally:
        for rig in rigs:
            await rig.queue.stop()
            await rig.manager.stop()
            for vp in rig.vps.values():
                await vp.stop()
            await rig.store.stop()
        for server in servers:
            server.stop()


async def job_of(rig: Rig, job_id: int) -> dict[str, Any]:
    return await rig.queue.job_view(job_id)


async def test_upload_failures_are_retried_with_backoff_then_the_job_fails_in_plain_words(rig_factory):
    rig = await rig_factory({"p1s": "P1S"}, start_ftp=False)  # nothing listens on the storage port
    await rig.queue.set_bed("p1s", True)
    job = await rig.queue.create_job(file_id=await rig.add_file())
    assert job["state"] == "dispatching"
    seen_reasons: set[str] = set()

    async def failed() -> bool:
        j = await job_of(rig, job["id"])
        seen_reasons.update(j["reasons"])
        return j["state"] == "failed"

    await eventually(failed, what="job failed")
    j = await job_of(rig, job["id"])
    assert j["attempts"] == 3 and len(j["runs"]) == 3
    assert all(r["state"] == "failed" for r in j["runs"])
    assert j["last_error"].startswith("upload to P1S failed: ") and j["last_error"].endswith(
        "(gave up after 3 attempts)"
    )
    assert any(r.startswith("trying again in ") and "upload to P1S failed" in r for r in seen_reasons)
    # Nothing reached the printer, so its bed is still clear; it never got a print command.
    readiness = (await rig.queue.queue_view())["printers"][0]
    assert readiness["bed_clear"] is True and readiness["ready"] is True
    assert not any(r.get("print", {}).get("command") == "project_file" for r in rig.vps["p1s"].received)


async def test_a_retry_succeeds_once_the_storage_is_back(rig_factory):
    rig = await rig_factory({"p1s": "P1S"}, start_ftp=False, retry_delays=(1.0, 1.0))
    await rig.queue.set_bed("p1s", True)
    job = await rig.queue.create_job(file_id=await rig.add_file())
    await eventually(lambda: _runs_failed(rig, job["id"], 1), what="first attempt failed")
    await asyncio.to_thread(rig.ftps["p1s"].start)
    j = await eventually(lambda: _job_state_is(rig, job["id"], "printing"), what="printing")
    assert [r["state"] for r in j["runs"]][-1] == "printing" and rig.vps["p1s"].job is not None
    assert rig.ftps["p1s"].path("/cache/cube.gcode.3mf").is_file()
    assert j["last_error"] is None  # the printer took it: earlier failures are history


async def _job_state_is(rig: Rig, job_id: int, state: str) -> dict | None:
    j = await job_of(rig, job_id)
    return j if j["state"] == state else None


async def _runs_failed(rig: Rig, job_id: int, n: int) -> bool:
    return sum(r["state"] == "failed" for r in (await job_of(rig, job_id))["runs"]) >= n


async def test_copies_are_spread_over_the_free_printers(rig_factory):
    rig = await rig_factory({"p1s-a": "P1S", "p1s-b": "P1S", "a1": "A1"})
    for pid in ("p1s-a", "p1s-b", "a1"):
        await rig.queue.set_bed(pid, True)
    job = await rig.queue.create_job(file_id=await rig.add_file(prediction_s=600_000), copies=3)
    j = await eventually(lambda: _printing_on(rig, job["id"], 2), what="two copies printing")  # not on the A1
    assert sorted(r["printer_id"] for r in j["runs"]) == ["p1s-a", "p1s-b"]
    # The third copy waits, and says why.
    expected = ["A1: sliced for P1S, this is an A1", "P1S-A: preparing a print", "P1S-B: preparing a print"]
    await eventually(lambda: _reasons_are(rig, job["id"], expected), what=f"reasons {expected}")
    for pid in ("p1s-a", "p1s-b"):
        assert rig.ftps[pid].path("/cache/cube.gcode.3mf").is_file()
    assert not rig.ftps["a1"].path("/cache").exists()


async def _reasons_are(rig: Rig, job_id: int, expected: list[str]) -> bool:
    return (await job_of(rig, job_id))["reasons"] == expected


async def _printing_on(rig: Rig, job_id: int, n: int) -> dict | None:
    j = await job_of(rig, job_id)
    return j if sum(r["state"] == "printing" for r in j["runs"]) >= n else None


async def test_removing_a_job_stops_its_upload_and_gives_the_bed_back(rig_factory):
    rig = await rig_factory({"p1s": "P1S"}, ftp_options={"max_rate": 100_000})
    await rig.queue.set_bed("p1s", True)
    file_id = await rig.add_file("big.gcode.3mf")
    big = rig.queue.file_path(await rig.queue.get_file(file_id))
    # A slow upload: make the stored file ~1.5 MB (100 kB/s -> ~15 s).
    made = make_3mf(
        rig.tmp / "pad.gcode.3mf", plates=[PlateSpec(filaments=[BLACK_PLA])], target_size=1_500_000
    )
    big.write_bytes(made.path.read_bytes())
    await rig.store.db.execute("UPDATE queue_files SET size = ? WHERE id = ?", (big.stat().st_size, file_id))
    rig.queue.library.known[file_id] = await rig.queue.get_file(file_id)  # the size for progress events
    job = await rig.queue.create_job(file_id=file_id)
    await eventually(lambda: rig.ftps["p1s"].path("/cache").exists(), what="upload started")
    assert await rig.queue.remove_job(job["id"]) is None
    assert (await rig.queue.queue_view())["jobs"] == []
    readiness = (await rig.queue.queue_view())["printers"][0]
    assert readiness["bed_clear"] is True
    assert not rig.ftps["p1s"].path("/cache/big.gcode.3mf").exists()
    assert rig.vps["p1s"].gcode_state == "IDLE"
    # The upload really stopped: the printer's next session removes its partial file, and nothing
    # of it is left (an upload still going would still be writing it).
    await rig.manager.get("p1s").files.list("/cache")
    assert list(rig.ftps["p1s"].path("/cache").iterdir()) == []


async def test_an_upload_cut_by_a_restart_is_tried_again(rig_factory):
    rig = await rig_factory({"p1s": "P1S"}, ftp_options={"max_rate": 200_000})
    await rig.queue.set_bed("p1s", True)
    file_id = await rig.add_file()
    qf = await rig.queue.get_file(file_id)
    made = make_3mf(
        rig.tmp / "pad.gcode.3mf", plates=[PlateSpec(filaments=[BLACK_PLA])], target_size=1_000_000
    )
    rig.queue.file_path(qf).write_bytes(made.path.read_bytes())
    await rig.store.db.execute(
        "UPDATE queue_files SET size = ? WHERE id = ?", (made.path.stat().st_size, file_id)
    )
    job = await rig.queue.create_job(file_id=file_id)
    await eventually(lambda: rig.ftps["p1s"].path("/cache").exists(), what="upload started")
    await rig.restart_queue(retry_delays=(0.3, 0.3))  # the old run stays 'uploading' in the database
    j = await eventually(
        lambda: _run_states_are(rig, job["id"], ["failed", "printing"]), timeout=30, what="retried"
    )
    assert "restarted" in j["runs"][0]["error"]
    assert rig.vps["p1s"].gcode_state in ("PREPARE", "RUNNING", "FINISH")
    assert sum(1 for r in rig.vps["p1s"].received if r.get("print", {}).get("command") == "project_file") == 1


async def _run_states_are(rig: Rig, job_id: int, states: list[str]) -> dict | None:
    j = await job_of(rig, job_id)
    return j if [r["state"] for r in j["runs"]] == states else None


async def test_print_now_reads_the_file_on_the_printer_and_maps_its_filaments(rig_factory):
    from bambu_edge.jobs.dispatcher import QueueError

    rig = await rig_factory({"p1s": "P1S"})
    cache = rig.ftps["p1s"].path("/cache")
    cache.mkdir()
    make_3mf(cache / "part.gcode.3mf", plates=[PlateSpec(prediction_s=600, filaments=[BLACK_PLA])])
    make_3mf(cache / "petg.gcode.3mf", plates=[PlateSpec(filaments=[("PETG", "#FFFFFF", 5.0)])])
    with pytest.raises(QueueError, match="no white PETG loaded") as e:
        await rig.queue.print_now("p1s", "/cache/petg.gcode.3mf")
    assert e.value.status == 409
    with pytest.raises(QueueError) as e:
        await rig.queue.print_now("p1s", "/cache/none.gcode.3mf")
    assert e.value.status == 404
    with pytest.raises(QueueError, match=r"'\.\.'"):
        await rig.queue.print_now("p1s", "/cache/../x.3mf")
    assert list(rig.queue.tmp_dir.iterdir()) == []  # the copies read for matching are gone

    result = await rig.queue.print_now("p1s", "/cache/part.gcode.3mf", plate=1, options={"timelapse": True})
    assert result["ams_mapping"] == [3]  # black PLA is in AMS slot 3 of the P1S capture
    await eventually(lambda: rig.vps["p1s"].job is not None, what="printing")
    [sent] = [
        r["print"] for r in rig.vps["p1s"].received if r.get("print", {}).get("command") == "project_file"
    ]
    assert sent["sequence_id"] == result["sequence_id"]
    assert sent["url"] == "file:///sdcard/cache/part.gcode.3mf" and sent["timelapse"] is True
    assert sent["ams_mapping"] == [3]
    # A manual print leaves the bed not clear too, once the printer shows it.
    await eventually(lambda: _bed_is(rig, "p1s", False), what="bed not clear")
    with pytest.raises(QueueError, match="busy") as e:
        await rig.queue.print_now("p1s", "/cache/part.gcode.3mf")
    assert e.value.status == 409


async def _bed_is(rig: Rig, printer_id: str, clear: bool) -> bool:
    row = await rig.store.db.fetchone("SELECT clear FROM printer_beds WHERE printer_id = ?", (printer_id,))
    return row is not None and bool(row[0]) == clear


GCODE = """; HEADER_BLOCK_START
; BambuStudio 02.01.01.52
; model printing time: 40m 2s; total estimated time: 46m 40s
; total layer number: 24
; total filament weight [g] : 3.10
; filament: 1
; HEADER_BLOCK_END
; CONFIG_BLOCK_START
; filament_colour = #000000
; filament_type = PLA
; nozzle_diameter = 0.4
; printer_model = Bambu Lab P1S
; CONFIG_BLOCK_END
G28
"""


async def test_a_plain_gcode_job_is_sent_with_gcode_file(rig_factory):
    rig = await rig_factory({"p1s": "P1S", "a1": "A1"})
    await rig.queue.set_bed("p1s", True)
    await rig.queue.set_bed("a1", True)
    path = rig.tmp / "benchy.gcode"
    path.write_text(GCODE)
    data = path.read_bytes()
    file_id = await rig.register(path, "benchy.gcode", "gcode", read_gcode_header(path))
    job = await rig.queue.create_job(file_id=file_id)
    j = await eventually(lambda: _job_state_is(rig, job["id"], "printing"), what="printing")
    assert [r["printer_id"] for r in j["runs"]] == ["p1s"]  # sliced for a P1S
    assert rig.ftps["p1s"].path("/cache/benchy.gcode").read_bytes() == data
    [sent] = [
        r["print"] for r in rig.vps["p1s"].received if r.get("print", {}).get("command") == "gcode_file"
    ]
    assert sent["param"] == "/sdcard/cache/benchy.gcode"
    assert rig.vps["p1s"].job.layers == 24


async def test_a_job_that_ends_during_an_evaluation_is_not_announced_again_as_it_was(rig_factory):
    rig = await rig_factory({"p1s": "P1S"})
    await rig.queue.set_bed("p1s", True)
    job = await rig.queue.create_job(file_id=await rig.add_file(prediction_s=600_000))
    printing = await eventually(lambda: _job_state_is(rig, job["id"], "printing"), what="printing")
    run_id = printing["runs"][0]["id"]
    frames: list[dict[str, Any]] = []
    with rig.bus.subscribe("queue", maxsize=64) as sub:
        # The tracker's "ended" arrives while an evaluation waits on the database: the run ends
        # and the job is announced done in between (as _on_history does).
        store, runs_for = rig.queue.store, rig.queue.store.runs_for
        ended: list[bool] = []

        async def runs_for_while_the_print_ends(job_ids: Any) -> Any:
            if not ended:
                ended.append(True)
                await store.end_run(run_id, success=True, history_id=None)
                await rig.queue._announce_job(job["id"])
            return await runs_for(job_ids)

        store.runs_for = runs_for_while_the_print_ends  # type: ignore[method-assign]
        try:
            await rig.queue.evaluate()
        finally:
            store.runs_for = runs_for  # type: ignore[method-assign]
        while (event := sub.get_nowait()) is not None:
            frames.append(event.data)
    states = [f["job"]["state"] for f in frames if (f.get("job") or {}).get("id") == job["id"]]
    assert states and states[-1] == "done", states  # not "printing" again after "done"
