"""Debian's Chromium through Playwright, for the dashboard tests (headless, no traffic off the host)."""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page, async_playwright

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
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 360, "height": 740}
# The page colours of the two themes (web/css/app.css), as computed styles report them.
BACKGROUND = {"light": "rgb(243, 244, 246)", "dark": "rgb(14, 17, 22)"}
TEXT = {"light": "rgb(21, 26, 33)", "dark": "rgb(232, 235, 240)"}


@contextlib.asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail("Chromium is not installed: run `make test` (it installs it) or apt-get install chromium")
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()


async def new_page(browser: Browser, errors: list[str], **context: Any) -> Page:
    """A page in a fresh context (own cookies and storage). Script errors and CSP violations go to
    ``errors``, so a test can assert the page ran cleanly."""
    ctx = await browser.new_context(
        ignore_https_errors=True, viewport=context.pop("viewport", DESKTOP), **context
    )
    pg = await ctx.new_page()
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.on("console", lambda m: errors.append(m.text) if "Content Security Policy" in m.text else None)
    return pg


@contextlib.asynccontextmanager
async def screenshot_on_failure(pg: Page, name: str) -> AsyncIterator[None]:
    """Keep what the browser showed when a test fails (test-artifacts/, kept by CI)."""
    try:
        yield
    except BaseException:
        ARTIFACTS.mkdir(exist_ok=True)
        with contextlib.suppress(Exception):
            await pg.screenshot(path=str(ARTIFACTS / f"{name}-{int(time.time())}.png"), full_page=True)
        raise


async def snap(pg: Page, name: str) -> None:
    """Screenshots for looking at during development: saved only when BAMBU_EDGE_SHOTS names a
    folder (``BAMBU_EDGE_SHOTS=/tmp/shots pytest tests/integration/test_dashboard_setup.py``)."""
    folder = os.environ.get("BAMBU_EDGE_SHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        await pg.evaluate("window.scrollTo(0, 0)")  # else the sticky top bar lands mid-picture
        await pg.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)
        # A tall page also in viewport-sized parts: a phone page shrunk to fit a screen is unreadable.
        size = pg.viewport_size or {"width": 1280, "height": 900}
        height = await pg.evaluate("document.documentElement.scrollHeight")
        if height > size["height"] * 1.5:
            for i, top in enumerate(range(0, height, size["height"])):
                clip = {"x": 0, "y": top, "width": size["width"], "height": min(size["height"], height - top)}
                await pg.screenshot(
                    path=str(Path(folder) / f"{name}-part{i + 1}.png"), full_page=True, clip=clip
                )


async def login(pg: Page, base: str, password: str, route: str = "/", username: str = "admin") -> None:
    """Sign in through the login page, then open ``route`` (e.g. ``/#/queue``)."""
    await pg.goto(base + "/#/login")
    await pg.fill("[data-testid=login-username]", username)
    await pg.fill("[data-testid=login-password]", password)
    await pg.click("[data-testid=login-submit]")
    await pg.wait_for_selector("[data-testid=live-indicator][data-live=true]", timeout=15_000)
    if route != "/":
        await pg.goto(base + route)


async def wait_for_order(pg: Page, selector: str, key: str, want: list[Any], timeout: float = 10_000) -> None:
    """Wait until the elements matching ``selector`` carry exactly ``want`` in ``data-<key>``, in
    that order (values compared as text, so ids may be given as numbers)."""
    await pg.wait_for_function(
        "([sel, key, want]) => JSON.stringify([...document.querySelectorAll(sel)].map((e) => e.dataset[key]))"
        " === JSON.stringify(want)",
        arg=[selector, key, [str(x) for x in want]],
        timeout=timeout,
    )


async def no_sideways_scroll(pg: Page) -> dict[str, float]:
    """The page's width against the viewport's (a 360 px phone must not scroll sideways)."""
    return await pg.evaluate(
        "() => ({scroll: document.documentElement.scrollWidth, view: window.innerWidth})"
    )
