"""The queue page in real Chromium against the real daemon, mosquitto, virtual printers and vsftpd
as their storage (the farm of test_queue_end_to_end.py).

A user uploads a sliced 3MF on the queue page, picks a plate from the file's own metadata, queues
it, reads why it waits, marks the bed clear, and watches the job go to the printer and the print
land in the history page open in another tab, all live. Also: a print refused without Developer
Mode and a hostile upload are told in plain words.
"""

from __future__ import annotations

import pytest

from tests.factories.threemf import HOSTILE, PlateSpec, make_3mf
from tests.integration.browser import chromium, login, new_page, screenshot_on_failure, snap, wait_for_order
from tests.integration.running_daemon import (
    BLACK_PLA,
    PASSWORD,
    PRINTERS,
    all_connected,
    eventually,
    running_for_the_queue,
    upload,
)

pytestmark = pytest.mark.integration


async def _job_state(pg, state: str) -> None:
    await pg.wait_for_function(
        f"() => [...document.querySelectorAll('[data-testid=queue-job] [data-testid=job-state]')]"
        f".some((e) => e.dataset.state === '{state}')",
        timeout=60_000,
    )


async def test_upload_pick_a_plate_mark_the_bed_clear_and_see_it_print_and_land_in_history(
    farm_factory,
    tmp_path,
):
    farm = await farm_factory(
        {"p1s-free": PRINTERS["p1s-free"], "a1": PRINTERS["a1"]}, **{"p1s-free": {"held": True}}
    )
    await eventually(lambda: all_connected(farm), what="printers connected")
    made = make_3mf(
        tmp_path / "desk organizer.gcode.3mf",
        printer_model_id="C12",
        nozzle=0.4,
        plates=[
            PlateSpec(prediction_s=5400, layers=180, filaments=[BLACK_PLA], objects=("tray",)),
            PlateSpec(prediction_s=2700, layers=90, filaments=[("PLA", "#000000", 6.5)], objects=("lid",)),
        ],
    )
    async with chromium() as browser:
        errors: list[str] = []
        pg = await new_page(browser, errors)
        async with screenshot_on_failure(pg, "queue-flow"):
            await login(pg, farm.https, PASSWORD, "/#/queue")
            await pg.wait_for_selector("[data-testid=queue-printer][data-printer-id=p1s-free]")
            # The history, open in a second tab of the same session, must follow without a reload.
            hist = await pg.context.new_page()
            hist.on("pageerror", lambda e: errors.append(str(e)))
            await hist.goto(farm.https + "/#/history")
            await hist.wait_for_selector("[data-testid=history-empty]", state="visible")
            await hist.evaluate("window.__same_page = true")

            # Upload: the plates come from the file's metadata, with their pictures.
            await pg.set_input_files("[data-testid=queue-file-input]", str(made.path))
            await pg.wait_for_selector("[data-testid=queue-setup]", state="visible", timeout=20_000)
            assert await pg.text_content("[data-testid=queue-file-name]") == "desk organizer.gcode.3mf"
            assert "Sliced for P1S" in await pg.text_content("[data-testid=queue-file-facts]")
            plates = pg.locator("[data-testid=plate]")
            assert await plates.count() == 2
            second = plates.nth(1)
            assert "Plate 2" in await second.text_content() and "45 min" in await second.text_content()
            assert await second.locator("[data-testid=filament]").get_attribute("data-color") == "#000000"
            await pg.wait_for_function(
                "() => [...document.querySelectorAll('[data-testid=plate] img')]"
                ".every((i) => i.complete && i.naturalWidth > 0)"
            )
            await snap(pg, "queue-plates")
            # Keyboard: the plates are a radio group; arrow down picks plate 2.
            await pg.focus("[data-testid=plate-radio] >> nth=0")
            await pg.keyboard.press("ArrowDown")
            assert await pg.locator("[data-testid=plate-radio] >> nth=1").is_checked()
            await pg.click("[data-testid=queue-submit]")

            # The job waits, and says why for each printer in plain words.
            job = pg.locator("[data-testid=queue-job]")
            await job.wait_for()
            assert await job.get_attribute("data-state") == "waiting"
            assert await job.locator("[data-testid=job-plate]").text_content() == "Plate 2"
            reasons = job.locator("[data-testid=job-reason]")
            await pg.wait_for_function(
                "() => document.querySelectorAll('[data-testid=job-reason]').length === 2"
            )
            assert await reasons.all_text_contents() == [
                "A1: sliced for P1S, this is an A1",
                "P1S free: bed not marked clear",
            ]
            await snap(pg, "queue-waiting")

            # Mark the bed clear on the queue page: the job goes to that printer and prints.
            free = pg.locator("[data-testid=queue-printer][data-printer-id=p1s-free]")
            await free.locator("[data-testid=bed-clear]").click()
            await _job_state(pg, "printing")
            assert await job.locator("[data-testid=job-run]").get_attribute("data-printer") == "p1s-free"
            await hist.wait_for_selector("[data-testid=history-row] [data-outcome=running]", timeout=30_000)
            await eventually(lambda: running_for_the_queue(farm, "p1s-free"), what="labelled")
            await farm.vps["p1s-free"].finish(steps=5)
            await _job_state(pg, "done")
            assert await pg.locator("[data-testid=queue-finished] [data-testid=queue-job]").count() == 1
            assert await pg.locator("[data-testid=queue-empty]").is_visible()

            # The history tab: the print is there, finished, with its picture, and the totals too.
            row = hist.locator("[data-testid=history-row]")
            await hist.wait_for_selector("[data-testid=history-row] [data-outcome=success]", timeout=30_000)
            assert await row.count() == 1
            assert await row.locator("[data-testid=history-job]").text_content() == "desk organizer"
            assert await row.locator("[data-testid=history-printer]").text_content() == "P1S free"
            await hist.wait_for_function(
                "() => { const i = document.querySelector('[data-testid=history-row] img');"
                " return i && i.complete && i.naturalWidth > 0; }"
            )
            # Totals follow too: one print, ended well.
            await hist.wait_for_function(
                "() => document.querySelector('[data-testid=total-count]')?.textContent === '1'"
                " && document.querySelector('[data-testid=total-success-rate]')?.textContent"
                ".startsWith('100')",
                timeout=10_000,
            )
            assert await hist.evaluate("window.__same_page") is True
            await snap(hist, "history-after-queue")

            # After the print the bed is not clear again: the card says so and offers the action.
            await pg.goto(farm.https + "/#/")
            card = pg.locator("[data-testid=printer-card][data-printer-id=p1s-free]")
            await card.locator("[data-testid=bed-note]").wait_for(state="visible", timeout=15_000)
            assert await card.locator("[data-testid=print-thumb]").is_visible()  # the plate it printed
            await card.locator("[data-testid=bed-clear]").click()
            await card.locator("[data-testid=bed-note]").wait_for(state="hidden")
            await snap(pg, "overview-after-queue")
            assert errors == []


async def test_a_refused_print_and_a_hostile_upload_are_told_in_plain_words(farm_factory, tmp_path):
    farm = await farm_factory({"p1s-free": PRINTERS["p1s-free"]}, **{"p1s-free": {"developer_mode": False}})
    await eventually(lambda: all_connected(farm), what="printer connected")
    bomb = HOSTILE["zip_bomb"][0](tmp_path / "bomb.gcode.3mf")
    made = make_3mf(tmp_path / "cube.gcode.3mf", plates=[PlateSpec(filaments=[BLACK_PLA])])
    async with chromium() as browser:
        errors: list[str] = []
        pg = await new_page(browser, errors)
        async with screenshot_on_failure(pg, "queue-refused"):
            await login(pg, farm.https, PASSWORD, "/#/queue")
            await pg.wait_for_selector("[data-testid=queue-printer]")

            # A zip bomb: refused, the reason shown, nothing kept or queued.
            await pg.set_input_files("[data-testid=queue-file-input]", str(bomb))
            message = pg.locator("[data-testid=queue-upload-message]")
            await message.wait_for(timeout=20_000)
            assert "zip bomb" in await message.text_content()
            assert not await pg.locator("[data-testid=queue-setup]").is_visible()
            assert (await farm.ok("GET", "/api/queue/files"))["files"] == []
            # Not a print file at all: said before anything is sent.
            other = tmp_path / "notes.txt"
            other.write_text("hello")
            await pg.set_input_files("[data-testid=queue-file-input]", str(other))
            await pg.wait_for_function(
                "() => document.querySelector('[data-testid=queue-upload-message]')?.textContent"
                ".includes('.gcode files')"
            )
            await snap(pg, "queue-upload-refused")

            # Without Developer Mode the printer refuses: the job fails saying how to fix it.
            await pg.set_input_files("[data-testid=queue-file-input]", str(made.path))
            await pg.wait_for_selector("[data-testid=queue-setup]", state="visible", timeout=20_000)
            assert not await pg.locator("[data-testid=queue-upload-error]").is_visible()
            await pg.click("[data-testid=queue-submit]")
            await pg.click("[data-testid=queue-printer] [data-testid=bed-clear]")
            failed = pg.locator("[data-testid=queue-finished] [data-testid=queue-job][data-state=failed]")
            await failed.wait_for(timeout=60_000)
            assert "Developer Mode" in await failed.locator("[data-testid=job-error]").text_content()
            assert await failed.locator("[data-testid=job-retry]").is_visible()
            await snap(pg, "queue-refused-job")
            assert errors == []


async def _order_is(pg, ids: list[int]) -> None:
    await wait_for_order(pg, "[data-testid=queue-jobs] > [data-testid=queue-job]", "id", ids)


async def test_reorder_with_the_keyboard_priority_pause_and_remove(farm_factory, tmp_path):
    farm = await farm_factory({"p1s-free": PRINTERS["p1s-free"]})
    await eventually(lambda: all_connected(farm), what="printer connected")
    made = make_3mf(tmp_path / "cube.gcode.3mf", plates=[PlateSpec(filaments=[BLACK_PLA])])
    f = await upload(farm, made.path)
    a, b, c = [
        (await farm.ok("POST", "/api/queue", json={"file_id": f["id"], "copies": n}))["id"] for n in (1, 2, 3)
    ]
    async with chromium() as browser:
        errors: list[str] = []
        pg = await new_page(browser, errors)
        async with screenshot_on_failure(pg, "queue-order"):
            await login(pg, farm.https, PASSWORD, "/#/queue")
            await _order_is(pg, [a, b, c])
            job = lambda i: f"[data-testid=queue-jobs] > [data-testid=queue-job][data-id='{i}']"  # noqa: E731
            assert await pg.locator(f"{job(a)} [data-testid=job-up]").is_disabled()
            assert await pg.locator(f"{job(c)} [data-testid=job-down]").is_disabled()

            # With the keyboard only: focus "move down" on the first job and press Enter, twice.
            await pg.focus(f"{job(a)} [data-testid=job-down]")
            await pg.keyboard.press("Enter")
            await _order_is(pg, [b, a, c])
            # The focus stays with the job that moved, so Enter moves it on.
            assert await pg.evaluate("document.activeElement.dataset.testid") == "job-down"
            assert await pg.evaluate("document.activeElement.closest('li').dataset.id") == str(a)
            await pg.keyboard.press("Enter")
            await _order_is(pg, [b, c, a])
            # At the bottom "down" is disabled: the focus went to a button that still works.
            assert await pg.evaluate("document.activeElement.closest('li')?.dataset.id") == str(a)
            assert await pg.evaluate("document.activeElement.disabled") is False
            await pg.focus(f"{job(a)} [data-testid=job-up]")
            await pg.keyboard.press("Space")
            await _order_is(pg, [b, a, c])
            # The server keeps the same order (it is what the dispatcher follows).
            q = await farm.ok("GET", "/api/queue")
            assert [j["id"] for j in q["jobs"]] == [b, a, c]

            # Priority comes first: a high-priority job goes to the top, whatever the order.
            await farm.ok("PUT", f"/api/queue/{c}", json={"priority": 10})
            await _order_is(pg, [c, b, a])
            assert await pg.text_content(f"{job(c)} [data-testid=job-priority]") == "High"

            # Pause: said at the top and in every job's reasons; resume takes it back.
            await pg.click("[data-testid=queue-pause]")
            await pg.wait_for_selector("[data-testid=queue-state][data-paused=true]")
            await pg.wait_for_function(
                "() => [...document.querySelectorAll('[data-testid=job-reason]')]"
                ".some((e) => e.textContent === 'the queue is paused')"
            )
            assert (await farm.ok("GET", "/api/queue"))["paused"] is True
            await snap(pg, "queue-paused")
            await pg.click("[data-testid=queue-pause]")
            await pg.wait_for_selector("[data-testid=queue-state][data-paused=false]")

            # Remove a job that has not started: asked first, then gone here and on the server.
            await pg.click(f"{job(b)} [data-testid=job-cancel]")
            assert "Remove" in await pg.text_content("[data-testid=confirm-dialog] h2")
            await pg.click("[data-testid=confirm-ok]")
            await _order_is(pg, [c, a])
            status, _ = await farm.call("GET", f"/api/queue/{b}")
            assert status == 404
            assert errors == []
