"""The virtual printer prints files from its storage folder (project_file / gcode_file) with the
timing in their metadata, scaled by time_scale; it refuses what is not there. On mosquitto."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aiomqtt
import orjson
import pytest

from bambu_edge.printers.bambu import commands
from bambu_edge.printers.virtual import VirtualPrinter, resolve_storage_file, storage_path_from_url
from tests.conftest import ACCESS_CODE
from tests.factories.threemf import PlateSpec, make_3mf
from tests.integration.waiting import eventually

pytestmark = pytest.mark.integration

SERIAL = "01P09C000000042"


async def _client(broker) -> aiomqtt.Client:
    import ssl

    ctx = ssl.create_default_context(cafile=str(broker.ca_path))
    ctx.check_hostname = False
    return aiomqtt.Client(broker.host, broker.port, username="bblp", password=ACCESS_CODE, tls_context=ctx)


async def _send_and_reply(client: aiomqtt.Client, cmd: commands.Command) -> dict:
    await client.publish(f"device/{SERIAL}/request", orjson.dumps(cmd.payload))
    async with asyncio.timeout(10):
        async for message in client.messages:
            msg = orjson.loads(message.payload)
            if commands.reply_key(msg) == cmd.key:
                return msg[cmd.kind]
    raise AssertionError("no reply")


async def test_project_file_prints_the_named_file_with_its_timing(broker, tmp_path: Path):
    sdcard = tmp_path / "sdcard"
    (sdcard / "cache").mkdir(parents=True)
    make_3mf(
        sdcard / "cache" / "two plates.gcode.3mf",
        plates=[PlateSpec(prediction_s=99_999, layers=7), PlateSpec(prediction_s=1000, layers=42)],
    )
    vp = VirtualPrinter(
        broker.host, broker.port, SERIAL, ACCESS_CODE, "P1S", str(broker.ca_path),
        report_hz=20, sdcard_dir=sdcard, time_scale=0.002,
    )  # fmt: skip
    async with vp, await _client(broker) as client:
        await client.subscribe(f"device/{SERIAL}/report")
        cmd = commands.project_file(
            "5",
            path="/cache/two plates.gcode.3mf",
            plate=2,
            model="P1S",
            subtask_name="two plates",
            ams_mapping=[-1, 2],
        )
        reply = await _send_and_reply(client, cmd)
        assert reply["result"] == "success"
        job = vp.job
        assert job is not None and job.layers == 42  # plate 2's metadata, not plate 1's
        assert job.duration_s == pytest.approx(2.0)  # 1000 s x 0.002
        assert vp.report["subtask_name"] == "two plates"
        assert vp.report["ams"]["tray_now"] == "2"  # the tray ams_mapping names is loaded
        started = time.monotonic()
        await eventually(lambda: vp.gcode_state == "FINISH", what="FINISH")
        assert time.monotonic() - started < 10
        assert vp.report["layer_num"] == 42 and vp.report["mc_percent"] == 100


async def test_the_ftp_url_of_newer_models_and_gcode_files(broker, tmp_path: Path):
    sdcard = tmp_path / "sdcard"
    (sdcard / "cache").mkdir(parents=True)
    make_3mf(sdcard / "cache" / "x.3mf", plates=[PlateSpec(prediction_s=500, layers=10)])
    (sdcard / "cache" / "benchy.gcode").write_text(
        "; HEADER_BLOCK_START\n; BambuStudio 02.01.01.52\n"
        "; model printing time: 7m 30s; total estimated time: 8m 20s\n; total layer number: 24\n"
        "; HEADER_BLOCK_END\nG28\n"
    )
    vp = VirtualPrinter(
        broker.host, broker.port, SERIAL, ACCESS_CODE, "H2D", str(broker.ca_path),
        report_hz=20, sdcard_dir=sdcard, time_scale=0.001,
    )  # fmt: skip
    async with vp, await _client(broker) as client:
        await client.subscribe(f"device/{SERIAL}/report")
        reply = await _send_and_reply(
            client, commands.project_file("6", path="/cache/x.3mf", plate=1, model="H2D")
        )
        assert reply["result"] == "success" and reply["url"] == "ftp:///cache/x.3mf"
        assert vp.job.layers == 10
        await eventually(lambda: vp.gcode_state == "FINISH", what="FINISH")
        reply = await _send_and_reply(client, commands.gcode_file("7", path="/cache/benchy.gcode"))
        assert reply["result"] == "success"
        assert vp.job.layers == 24 and vp.report["subtask_name"] == "benchy"


async def test_missing_files_and_plates_are_refused_with_a_reason(broker, tmp_path: Path):
    sdcard = tmp_path / "sdcard"
    sdcard.mkdir()
    make_3mf(sdcard / "one.3mf", plates=[PlateSpec()])
    (tmp_path / "secret.3mf").write_bytes((sdcard / "one.3mf").read_bytes())
    vp = VirtualPrinter(
        broker.host, broker.port, SERIAL, ACCESS_CODE, "P1S", str(broker.ca_path), sdcard_dir=sdcard
    )
    async with vp, await _client(broker) as client:
        await client.subscribe(f"device/{SERIAL}/report")
        reply = await _send_and_reply(
            client, commands.project_file("1", path="/cache/none.3mf", plate=1, model="P1S")
        )
        assert reply["result"] == "failed" and "not found" in reply["reason"]
        reply = await _send_and_reply(
            client, commands.project_file("2", path="/one.3mf", plate=3, model="P1S")
        )
        assert reply["result"] == "failed" and "plate 3" in reply["reason"]
        # A url that climbs out of the storage folder finds nothing (a raw request: our builder refuses '..').
        bad = commands.project_file("3", path="/one.3mf", plate=1, model="P1S")
        bad.payload["print"]["url"] = "file:///sdcard/../secret.3mf"
        reply = await _send_and_reply(client, bad)
        assert reply["result"] == "failed" and "not found" in reply["reason"]
        assert vp.gcode_state == "IDLE" and vp.job is None


async def test_without_a_storage_folder_the_stand_in_job_still_prints(broker):
    vp = VirtualPrinter(
        broker.host,
        broker.port,
        SERIAL,
        ACCESS_CODE,
        "P1S",
        str(broker.ca_path),
        demo_print_s=1.0,
        report_hz=20,
    )
    async with vp, await _client(broker) as client:
        await client.subscribe(f"device/{SERIAL}/report")
        reply = await _send_and_reply(
            client, commands.project_file("1", path="/cache/any.3mf", plate=1, model="P1S")
        )
        assert reply["result"] == "success"
        assert vp.job.duration_s == 1.0 and vp.job.layers == 100
        await eventually(lambda: vp.gcode_state == "FINISH", what="FINISH")


def test_storage_paths():
    assert storage_path_from_url("file:///sdcard/cache/x.3mf") == "cache/x.3mf"
    assert storage_path_from_url("ftp:///cache/x.3mf") == "cache/x.3mf"
    assert storage_path_from_url("ftp:///x.3mf") == "x.3mf"
    assert storage_path_from_url("http://evil/x.3mf") is None
    root = Path("/srv/card")
    assert resolve_storage_file(root, "cache/x.3mf") == Path("/srv/card/cache/x.3mf")
    assert resolve_storage_file(root, "../x.3mf") is None
    assert resolve_storage_file(root, "cache/../../x.3mf") is None
