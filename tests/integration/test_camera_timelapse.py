"""Our own timelapse through the real daemon: a P1S (the virtual printer) prints with its port-6000
JPEG camera (the real TLS JPEG peer) on; a frame per layer change, an MP4 at the end, attached to
the print's record, served with ranges, played in Chromium from the history page; the last frame is
the record's picture."""

from __future__ import annotations

import asyncio
import functools
import json
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from bambu_edge.camera.timelapse import default_spool_dir
from bambu_edge.printers.virtual import VirtualPrinter
from tests.conftest import ACCESS_CODE
from tests.integration import waiting
from tests.integration.browser import chromium, login, new_page, screenshot_on_failure
from tests.integration.daemon_proc import printer_entry, write_config
from tests.integration.jpeg_camera import JpegCamera
from tests.integration.running_daemon import PASSWORD, Farm, add_admin
from tests.integration.waiting import dashboard_tls

eventually = functools.partial(waiting.eventually, every=0.25)
SERIAL = "01P09C000000031"
LAYERS = 12


@pytest.fixture
async def printing(tmp_path: Path, broker: Any) -> AsyncIterator[dict[str, Any]]:
    jpeg = JpegCamera(broker.server_pair, tmp_path / "jpeg", ACCESS_CODE, fps=10)
    await jpeg.start()
    p1s = printer_entry(broker, SERIAL, ACCESS_CODE, "p1s") | {
        "camera": {"kind": "jpeg6000", "port": jpeg.port}
    }
    cfg_path = tmp_path / "config.yaml"
    cfg = write_config(cfg_path, tmp_path / "data", [p1s])
    cfg["cameras"] = {"idle_timeout_s": 2, "timelapse": {"enabled": True, "every_layer": True, "fps": 10}}
    cfg_path.write_text(yaml.safe_dump(cfg))
    add_admin(cfg_path)
    vp = VirtualPrinter(
        broker.host, broker.port, SERIAL, ACCESS_CODE, "P1S", str(broker.ca_path), report_hz=0.2
    )
    await vp.start()
    farm = Farm(tmp_path, broker, cfg_path, {"p1s": vp}, {})
    farm.http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=dashboard_tls()))
    try:
        await farm.start_daemon()

        async def connected() -> bool:
            return (await farm.ok("GET", "/api/printers/p1s"))["link"]["state"] == "connected"

        await eventually(connected, 30, "the printer connected")
        yield {"farm": farm, "vp": vp, "jpeg": jpeg, "data": tmp_path / "data"}
    finally:
        await farm.close()
        await jpeg.stop()
    farm.check_logs()


def _probe(video: bytes, tmp: Path) -> dict[str, Any]:
    path = tmp / "got.mp4"
    path.write_bytes(video)
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0", "-show_entries",
         "stream=codec_name,width,height,nb_read_frames", "-of", "json", str(path)],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    return json.loads(out.stdout)["streams"][0]


async def test_a_print_gets_a_timelapse_of_its_layers_playable_from_the_history(
    printing: dict[str, Any], tmp_path: Path
) -> None:
    farm, vp = printing["farm"], printing["vp"]
    await vp.simulate_print("Timelapse cube", duration_s=LAYERS * 10 + 5, layers=LAYERS)
    await vp.advance(5)  # preparing done
    for _ in range(LAYERS - 1):
        await vp.advance(10)  # a layer per report
        await asyncio.sleep(0.6)  # the frame of that layer is taken (the camera sends 10 a second)
    await vp.finish()

    async def attached() -> dict[str, Any] | None:
        items = (await farm.ok("GET", "/api/history"))["items"]
        return items[0] if items and items[0]["timelapse"] else None

    rec = await eventually(attached, 60, "the timelapse attached to the record")
    assert rec["outcome"] == "success"
    assert rec["timelapse"] == f"/api/history/{rec['id']}/timelapse.mp4"
    status, video = await farm.call("GET", rec["timelapse"])
    assert status == 200 and video[4:8] == b"ftyp"
    info = _probe(video, tmp_path)
    assert (info["codec_name"], info["width"], info["height"]) == ("h264", 1280, 720)
    # One frame per layer change seen (at least most of them: the first may come before the camera).
    assert LAYERS - 3 <= int(info["nb_read_frames"]) <= LAYERS
    # Seekable in the browser: byte ranges.
    async with farm.http.get(
        farm.https + rec["timelapse"], headers={**farm.auth, "Range": "bytes=0-99"}
    ) as r:
        assert r.status == 206 and len(await r.read()) == 100
    # The print had no plate picture: the last frame is its picture.
    assert rec["thumbnail"] == f"/api/history/{rec['id']}/thumbnail"
    status, png = await farm.call("GET", rec["thumbnail"])
    assert status == 200 and png[:8] == b"\x89PNG\r\n\x1a\n"
    # The spool (in RAM, not on the SD card) is gone; the video stays.
    spool = default_spool_dir(printing["data"])
    assert spool.parent == Path("/dev/shm") and not any(spool.glob("*/*.jpg"))
    assert not (printing["data"] / "timelapse-spool").exists()
    assert (printing["data"] / "timelapses" / f"{rec['uid']}.mp4").is_file()

    errors: list[str] = []
    async with chromium() as browser:
        pg = await new_page(browser, errors)
        async with screenshot_on_failure(pg, "timelapse-history"):
            await login(pg, farm.https, PASSWORD, "/#/history")
            await pg.click("[data-testid=history-row] [data-testid=history-timelapse]")
            await pg.wait_for_function(
                "() => { const v = document.querySelector('[data-testid=timelapse-video]');"
                " return v && v.readyState >= 2 && v.videoWidth === 1280 && v.currentTime > 0; }",
                timeout=20_000,
            )
            href = await pg.get_attribute("[data-testid=timelapse-download]", "href")
            assert href == rec["timelapse"]
    assert errors == []
