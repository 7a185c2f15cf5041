"""The printer card's power control in Chromium, against the running daemon whose X1C hangs on a
Shelly Gen2 plug played on loopback: live watts, switching off and on, and a confirmation before
switching off a printer that prints (cancel leaves it on)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.integration.browser import chromium, login, new_page, screenshot_on_failure
from tests.integration.running_daemon import PASSWORD
from tests.integration.smart_plugs import ShellyGen2Plug
from tests.integration.waiting import eventually

pytestmark = pytest.mark.integration


@pytest.fixture
async def plug() -> AsyncIterator[ShellyGen2Plug]:
    p = ShellyGen2Plug(on=True, watts=123.0)
    await p.start()
    yield p
    await p.stop()


@pytest.fixture
def spine_printer(plug: ShellyGen2Plug) -> dict:
    return {"power": {"shelly": plug.url}}


async def test_the_card_shows_watts_and_switches_the_plug(spine: dict, plug: ShellyGen2Plug) -> None:
    async with chromium() as browser:
        errors: list[str] = []
        pg = await new_page(browser, errors)
        async with screenshot_on_failure(pg, "power-card"):
            await login(pg, spine["base"], PASSWORD, "/#/")
            card = pg.locator("[data-testid=printer-card][data-printer-id=x1c]")
            control = card.locator("[data-testid=power-control]")
            watts = control.locator("[data-testid=power-watts]")
            button = control.locator("[data-testid=power-button]")
            await control.wait_for(timeout=15_000)
            # The plug's meter, live: it is polled while a browser watches.
            await eventually(lambda: watts.inner_text(), timeout=15, what="watts shown")
            plug.watts = 187.0
            await eventually(lambda: _has(watts, "187"), timeout=30, what="new watts")

            # Idle: switched off without a question.
            await button.click()
            await eventually(lambda: not plug.on, timeout=10, what="plug off")
            await eventually(lambda: _attr(control, "data-on", "false"), timeout=10, what="card says off")
            assert not await watts.is_visible()
            await button.click()
            await eventually(lambda: plug.on, timeout=10, what="plug on")

            # Printing: switching off asks first; cancel leaves it on, confirm switches it off.
            await spine["vp"].simulate_print("benchy", duration_s=3600, layers=100, start_fraction=0.3)
            job = card.locator("[data-testid=job-name]")
            await eventually(lambda: _has(job, "benchy"), timeout=20, what="the card shows the print")
            await button.click()
            dialog = pg.locator("[data-testid=confirm-dialog]")
            await dialog.wait_for(timeout=5_000)
            assert "prints" in await dialog.inner_text()
            await dialog.locator("[data-testid=confirm-cancel]").click()
            assert plug.on
            await button.click()
            await dialog.wait_for(timeout=5_000)
            await dialog.locator("[data-testid=confirm-ok]").click()
            await eventually(lambda: not plug.on, timeout=10, what="plug off after confirm")
        assert errors == []


async def _has(locator, text: str) -> bool:
    return text in await locator.inner_text()


async def _attr(locator, name: str, value: str) -> bool:
    return await locator.get_attribute(name) == value
