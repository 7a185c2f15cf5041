"""The dashboard in real headless Chromium against the real daemon, mosquitto and a virtual printer."""

from __future__ import annotations

import time

import pytest

from tests.integration.browser import chromium, new_page, screenshot_on_failure
from tests.integration.running_daemon import PASSWORD


@pytest.fixture
async def page(spine):
    async with chromium() as browser:
        errors: list[str] = []
        pg = await new_page(browser, errors)
        yield pg, spine, errors


async def login(pg, base: str) -> None:
    await pg.goto(base + "/")
    await pg.fill("[data-testid=login-username]", "admin")
    await pg.fill("[data-testid=login-password]", PASSWORD)
    await pg.click("[data-testid=login-submit]")


async def test_login_then_live_card_and_pause(page):
    pg, s, errors = page
    async with screenshot_on_failure(pg, "live-card"):
        await _live_card_and_pause(pg, s, errors)


async def _live_card_and_pause(pg, s, errors):
    await login(pg, s["base"])
    card = pg.locator("[data-testid=printer-card][data-printer-id=x1c]")
    await card.wait_for(timeout=10_000)
    await pg.wait_for_selector(
        "[data-testid=printer-card][data-printer-id=x1c][data-link-state=connected]", timeout=10_000
    )

    # A change in the printer shows in the card within a second (no reload).
    await s["vp"].simulate_print("benchy", duration_s=120, layers=100)
    state = card.locator("[data-testid=print-state]")
    await pg.wait_for_function(
        "() => document.querySelector('[data-printer-id=x1c] [data-testid=print-state]')"
        "?.dataset.state === 'RUNNING'",
        timeout=20_000,
    )
    t0 = time.monotonic()
    await s["vp"].set_fields(nozzle_temper=233.0)
    await pg.wait_for_function(
        "() => document.querySelector('[data-printer-id=x1c] [data-testid=temp-nozzle]')"
        "?.dataset.current === '233'",
        timeout=3_000,
    )
    assert time.monotonic() - t0 < 1.0

    # Pause: the printer receives it and the card shows PAUSE.
    await card.locator("[data-testid=btn-pause]").click()
    await pg.wait_for_function(
        "() => document.querySelector('[data-printer-id=x1c] [data-testid=print-state]')"
        "?.dataset.state === 'PAUSE'",
        timeout=5_000,
    )
    assert await state.get_attribute("data-state") == "PAUSE"
    assert any(r.get("print", {}).get("command") == "pause" for r in s["vp"].received)
    assert errors == []


async def test_every_page_needs_login(page):
    pg, s, _ = page
    for route in ("/", "/#/printer/x1c", "/#/settings"):
        await pg.goto(s["base"] + route)
        await pg.wait_for_selector("[data-testid=login-form]", timeout=10_000)
        assert await pg.locator("[data-testid=printer-card]").count() == 0
