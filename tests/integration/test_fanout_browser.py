"""Settings > Fan-out in Chromium against the real daemon and its fan-out endpoint: the admin sees
where clients connect and each printer's code, copies it, rotates it and changes what its clients
may send; the API (and a reload) shows what was done."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.integration.browser import chromium, login, new_page, no_sideways_scroll, screenshot_on_failure
from tests.integration.fanout_peers import FRONTED, fanout_config, start_farm
from tests.integration.running_daemon import PASSWORD, Farm

pytestmark = pytest.mark.integration


@pytest.fixture
async def farm(tmp_path, broker) -> AsyncIterator[Farm]:
    farm = await start_farm(tmp_path, broker, fanout_config())
    try:
        yield farm
    finally:
        await farm.close()
    farm.check_logs()


async def left_entry(farm: Farm) -> dict:
    body = await farm.ok("GET", "/api/fanout")
    return next(p for p in body["printers"] if p["id"] == "left")


async def test_an_admin_rotates_a_code_and_changes_grants_in_the_dashboard(farm: Farm) -> None:
    overview = await farm.ok("GET", "/api/fanout")
    before = await left_entry(farm)
    assert before["grants"] == []
    async with chromium() as browser:
        errors: list[str] = []
        pg = await new_page(browser, errors, permissions=["clipboard-read", "clipboard-write"])
        async with screenshot_on_failure(pg, "fanout-settings"):
            await login(pg, farm.https, PASSWORD, "/#/settings/fanout")
            await pg.locator("[data-testid=fanout-panel]").wait_for()
            address = pg.locator("[data-testid=fanout-address]")
            await address.wait_for()
            assert await address.text_content() == f"127.0.0.1:{overview['port']}"
            assert await pg.locator("[data-testid=fanout-row]").count() == len(FRONTED)
            row = pg.locator("[data-testid=fanout-row][data-printer-id=left]")
            code = row.locator("[data-testid=fanout-code]")
            assert await code.input_value() == before["access_code"]
            assert await row.text_content() and FRONTED["left"] in (await row.text_content() or "")

            await row.locator("[data-testid=fanout-copy]").click()
            await pg.wait_for_function(
                "want => navigator.clipboard.readText().then((t) => t === want)", arg=before["access_code"]
            )

            await row.locator("[data-testid=fanout-rotate]").click()
            await pg.click("[data-testid=confirm-ok]")
            await pg.wait_for_function(
                "([sel, old]) => { const v = document.querySelector(sel)?.value; return v && v !== old; }",
                arg=[
                    "[data-testid=fanout-row][data-printer-id=left] [data-testid=fanout-code]",
                    before["access_code"],
                ],
            )
            rotated = await left_entry(farm)
            assert rotated["access_code"] != before["access_code"]
            assert await code.input_value() == rotated["access_code"]
            right = next(p for p in (await farm.ok("GET", "/api/fanout"))["printers"] if p["id"] == "right")
            assert (
                right["access_code"]
                == next(p for p in overview["printers"] if p["id"] == "right")["access_code"]
            )

            pause, light = (
                row.locator("[data-testid=fanout-grant-pause]"),
                row.locator("[data-testid=fanout-grant-light]"),
            )
            await light.check()
            await pg.wait_for_function("el => !el.disabled", arg=await light.element_handle())
            await pause.check()
            await pg.wait_for_function("el => !el.disabled", arg=await pause.element_handle())
            assert (await left_entry(farm))["grants"] == ["pause", "light"]
            await pause.uncheck()
            await pg.wait_for_function("el => !el.disabled", arg=await pause.element_handle())
            assert (await left_entry(farm))["grants"] == ["light"]

            await pg.reload()
            row = pg.locator("[data-testid=fanout-row][data-printer-id=left]")
            await row.wait_for()
            assert await row.locator("[data-testid=fanout-grant-light]").is_checked()
            assert not await row.locator("[data-testid=fanout-grant-pause]").is_checked()
            assert await row.locator("[data-testid=fanout-code]").input_value() == rotated["access_code"]

            await pg.set_viewport_size({"width": 360, "height": 800})  # a phone: code, Copy, Rotate fit
            width = await no_sideways_scroll(pg)
            assert width["scroll"] <= width["view"], width
        assert errors == []


async def test_the_page_says_when_the_endpoint_is_off(spine: dict) -> None:
    async with chromium() as browser:
        errors: list[str] = []
        pg = await new_page(browser, errors)
        async with screenshot_on_failure(pg, "fanout-off"):
            await login(pg, spine["base"], PASSWORD, "/#/settings/fanout")
            off = pg.locator("[data-testid=fanout-off]")
            await off.wait_for()
            assert "fanout:" in (await off.text_content() or "")
            assert await pg.locator("[data-testid=fanout-row]").count() == 0
        assert errors == []
