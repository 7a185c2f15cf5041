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


async def test_klipper_nozzle_and_filament_set_on_the_printer_page(page) -> None:
    """The printer page's nozzle and filament form: saved through the API, kept (read back on a
    new visit), and the card shows the filament as the printer's spool."""
    pg, (farm, _server), errors = page
    async with screenshot_on_failure(pg, "klipper-materials"):
        await login(pg, farm.https, PASSWORD, "/#/printer/voron")
        form = pg.locator("[data-testid=materials-form]")
        await form.wait_for(timeout=15_000)
        await form.locator("[data-testid=materials-nozzle]").select_option("0.6")
        await form.locator("[data-testid=materials-filament]").fill("petg")
        await form.locator("[data-testid=materials-colour]").fill("#ff8800")
        assert not await form.locator("[data-testid=materials-no-colour]").is_checked()
        await form.locator("[data-testid=materials-save]").click()
        await pg.locator(".toast", has_text="Nozzle and filament saved.").wait_for(timeout=10_000)
        assert await farm.ok("GET", "/api/printers/voron/materials") == {
            "nozzle_diameter": 0.6,
            "filament_type": "PETG",
            "filament_color": "#FF8800FF",
        }

        # Another visit reads the saved values back into the form.
        await pg.goto(farm.https + "/#/")
        # The router renders after the address changes: until the first visit's page is gone, its
        # form (holding the saved values already) would answer for the new one.
        await pg.locator("[data-testid=printer-page]").wait_for(state="detached", timeout=10_000)
        await pg.goto(farm.https + "/#/printer/voron")
        form = pg.locator("[data-testid=materials-form]")
        # Both read from the one form on the page (its values arrive together from one GET).
        await pg.wait_for_function(
            """() => {
                const f = document.querySelector('[data-testid=materials-form]');
                return f?.querySelector('[data-testid=materials-filament]')?.value === 'PETG'
                    && f.querySelector('[data-testid=materials-nozzle]')?.value === '0.6'
                    && f.querySelector('[data-testid=materials-colour]')?.value === '#ff8800';
            }""",
            timeout=10_000,
        )
        assert await form.locator("[data-testid=materials-nozzle]").input_value() == "0.6"

        # The overview card shows the filament as the printer's spool.
        await pg.goto(farm.https + "/#/")
        tray = pg.locator("[data-testid=printer-card][data-printer-id=voron] [data-testid=ams-tray]")
        await tray.first.wait_for(timeout=10_000)
        assert "PETG" in await tray.first.inner_text()
        assert errors == []
