"""The dashboard in real headless Chromium against the real daemon, mosquitto and a virtual printer."""

from __future__ import annotations

import contextlib
import shutil
import time
from pathlib import Path

import pytest
from playwright.async_api import async_playwright

from tests.integration.test_end_to_end import PASSWORD, spine  # noqa: F401 - the fixture

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
# No traffic off this machine: Chromium's own background services stay off.
CHROMIUM_ARGS = [
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-gpu",
]


@pytest.fixture
async def page(spine):  # noqa: F811
    if not Path(CHROMIUM).exists():
        pytest.fail("Chromium is not installed: run `make test` (it installs it) or apt-get install chromium")
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        ctx = await browser.new_context(ignore_https_errors=True, viewport={"width": 1280, "height": 900})
        pg = await ctx.new_page()
        errors: list[str] = []
        pg.on("pageerror", lambda e: errors.append(str(e)))
        pg.on("console", lambda m: errors.append(m.text) if "Content Security Policy" in m.text else None)
        try:
            yield pg, spine, errors
        finally:
            await browser.close()


@contextlib.asynccontextmanager
async def screenshot_on_failure(pg, name: str):
    """Keep what the browser showed when a test fails (test-artifacts/, kept by CI)."""
    try:
        yield
    except BaseException:
        ARTIFACTS.mkdir(exist_ok=True)
        await pg.screenshot(path=str(ARTIFACTS / f"{name}-{int(time.time())}.png"), full_page=True)
        raise


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
