"""History, queue, files and timelapses as they look in real Chromium: a 360 px phone must not
scroll sideways, in the dark and the light theme, with the pages as full as they get (a seeded
history, queued jobs with reasons, a file being set up with its plates, files on the printer).
"""

from __future__ import annotations

import os
import time

import pytest

from tests.factories.history import sample_records, seed_history
from tests.factories.threemf import PlateSpec, make_3mf
from tests.integration.browser import (
    BACKGROUND,
    DESKTOP,
    PHONE,
    TEXT,
    chromium,
    login,
    new_page,
    no_sideways_scroll,
    screenshot_on_failure,
    snap,
)
from tests.integration.running_daemon import (
    BLACK_PLA,
    PASSWORD,
    PRINTERS,
    all_connected,
    eventually,
    upload,
)

pytestmark = pytest.mark.integration
LONG = "Gridfinity_baseplate_6x4_magnets_and_screws_v2_final_FINAL_0.2mm_PETG_4h12m"


async def _page_colours(pg, selector: str) -> dict[str, str]:
    return await pg.evaluate(
        "(sel) => { const e = document.querySelector(sel); const b = getComputedStyle(document.body);"
        " return {background: b.backgroundColor, text: b.color,"
        " panel: e ? getComputedStyle(e.closest('.panel') || e).backgroundColor : null}; }",
        selector,
    )


async def test_new_pages_fit_a_phone_in_both_themes(farm_factory, tmp_path):
    farm = await farm_factory({"p1s-free": PRINTERS["p1s-free"], "a1": PRINTERS["a1"]})
    farm.stop_daemon()
    records = sample_records([("p1s-free", "P1S free", "P1S"), ("a1", "A1", "A1")], 30, time.time())
    await seed_history(tmp_path / "data", records)
    await farm.start_daemon()
    await eventually(lambda: all_connected(farm), what="printers connected")
    made = make_3mf(
        tmp_path / f"{LONG}.gcode.3mf",
        plates=[
            PlateSpec(prediction_s=15120, layers=420, filaments=[BLACK_PLA, ("PETG", "#FF6A13", 80.0)]),
            PlateSpec(prediction_s=600, layers=20, filaments=[("PLA", "#FFFFFF", 2.0)]),
        ],
    )
    f = await upload(farm, made.path)
    for body in ({"copies": 5, "priority": 10}, {"plate": 2}):
        await farm.ok("POST", "/api/queue", json={"file_id": f["id"], **body})
    ftps = farm.ftps["p1s-free"]
    cache = ftps.folder("/cache")
    (cache / f"{LONG}.gcode.3mf").write_bytes(made.path.read_bytes())
    lapses = ftps.folder("/timelapse")
    (lapses / "video_2025-03-04_18-30-00.mp4").write_bytes(os.urandom(4096))

    pages = {
        "history": ("/#/history", "[data-testid=history-row]", "[data-testid=history-table]"),
        "queue": ("/#/queue", "[data-testid=queue-job] [data-testid=job-reason]", "[data-testid=queue-jobs]"),
        "files": ("/#/printer/p1s-free/files", "[data-testid=files-row]", "[data-testid=files-table]"),
        "timelapses": (
            "/#/printer/p1s-free/timelapses",
            "[data-testid=timelapse-row]",
            "[data-testid=timelapse-list]",
        ),
    }
    async with chromium() as browser:
        for scheme in ("light", "dark"):
            errors: list[str] = []
            pg = await new_page(
                browser, errors, viewport=PHONE, is_mobile=True, has_touch=True, color_scheme=scheme
            )
            async with screenshot_on_failure(pg, f"jobs-phone-{scheme}"):
                await login(pg, farm.https, PASSWORD)
                for name, (route, ready, part) in pages.items():
                    await pg.goto(farm.https + route)
                    await pg.wait_for_selector(ready, timeout=20_000)
                    if name == "files":
                        await pg.click("[data-testid=files-row][data-name=cache] [data-testid=files-open]")
                        await pg.wait_for_selector(f"[data-testid=files-row][data-name='{LONG}.gcode.3mf']")
                    await pg.wait_for_timeout(300)  # late content (pictures, totals) laid out
                    await snap(pg, f"phone-{scheme}-{name}")
                    width = await no_sideways_scroll(pg)
                    assert width["view"] == PHONE["width"] and width["scroll"] <= width["view"], (name, width)
                    c = await _page_colours(pg, part)
                    assert (c["background"], c["text"]) == (BACKGROUND[scheme], TEXT[scheme]), (name, c)
                    assert c["panel"] not in (None, c["background"]), (name, c)
                # The queue with a file being set up (plates with pictures) fits as well.
                await pg.goto(farm.https + "/#/queue")
                await pg.wait_for_selector(
                    "[data-testid=queue-recent] option[value]:not([value=''])", state="attached"
                )
                await pg.select_option("[data-testid=queue-recent]", str(f["id"]))
                await pg.wait_for_selector("[data-testid=plate] img")
                await pg.wait_for_timeout(300)
                await snap(pg, f"phone-{scheme}-queue-plates")
                width = await no_sideways_scroll(pg)
                assert width["scroll"] <= width["view"], ("queue plates", width)
                # A long file name is wrapped or cut inside the screen, never pushed off it.
                for sel in (
                    "[data-testid=queue-file-name]",
                    "[data-testid=queue-job] [data-testid=job-name]",
                ):
                    box = await pg.locator(sel).first.bounding_box()
                    assert box is not None and box["x"] + box["width"] <= PHONE["width"], (sel, box)
                assert errors == []
            await pg.context.close()
            # The desktop in this theme, for looking at.
            pg = await new_page(browser, errors, viewport=DESKTOP, color_scheme=scheme)
            await login(pg, farm.https, PASSWORD)
            for name, (route, ready, _part) in pages.items():
                await pg.goto(farm.https + route)
                await pg.wait_for_selector(ready, timeout=20_000)
                await pg.wait_for_timeout(300)
                await snap(pg, f"desktop-{scheme}-{name}")
            assert errors == []
            await pg.context.close()
