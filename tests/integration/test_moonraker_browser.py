"""A Klipper printer's card in real headless Chromium: live state from the stand-in Klippy through
the real Moonraker and the daemon, and Klippy's shutdown in plain words."""

from __future__ import annotations

import pytest

from tests.integration.browser import chromium, login, new_page, screenshot_on_failure
from tests.integration.running_daemon import PASSWORD
from tests.integration.test_moonraker_daemon import klipper_farm, mjpeg_streamer  # noqa: F401 - fixtures


@pytest.fixture
async def page(klipper_farm):  # noqa: F811
    async with chromium() as browser:
        errors: list[str] = []
        pg = await new_page(browser, errors)
        yield pg, klipper_farm, errors


async def test_klipper_card_live_and_shutdown_in_plain_words(page) -> None:
    pg, (farm, server), errors = page
    klippy = server.klippy
    async with screenshot_on_failure(pg, "klipper-card"):
        await login(pg, farm.https, PASSWORD)
        sel = "[data-testid=printer-card][data-printer-id=voron]"
        await pg.wait_for_selector(f"{sel}[data-link-state=connected]", timeout=15_000)
        card = pg.locator(sel)
        assert (await card.locator("[data-testid=printer-model]").inner_text()).strip() == "Klipper"

        # A delta from Klippy shows on the card without a reload.
        klippy.set("extruder", temperature=187.0)
        klippy.push()
        await pg.wait_for_function(
            "() => (document.querySelector('[data-printer-id=voron] [data-testid=temp-nozzle]')"
            "?.textContent || '').includes('187')",
            timeout=15_000,
        )

        klippy.shutdown("MCU 'mcu' shutdown: Timer too close")
        item = card.locator("[data-testid=hms-item]")
        await item.first.wait_for(timeout=15_000)
        text = await item.first.inner_text()
        assert "Klipper has shut down: MCU 'mcu' shutdown: Timer too close" in text
        state = card.locator("[data-testid=print-state]")
        assert (await state.inner_text()).strip() == "Offline"  # no job can start; the item says why
        assert errors == []
