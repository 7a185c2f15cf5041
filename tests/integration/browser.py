"""Debian's Chromium through Playwright, for the dashboard tests (headless, no traffic off the host)."""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page, async_playwright

from tests.integration.daemon_proc import end_process

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


# What Playwright's own launch adds for a headless Chromium that matters to the pages under test.
SHARED_ARGS = [
    *CHROMIUM_ARGS,
    "--headless",
    "--hide-scrollbars",
    "--mute-audio",
    "--blink-settings=primaryHoverType=2,availableHoverTypes=2,primaryPointerType=4,availablePointerTypes=4",
    "--force-color-profile=srgb",
    "--disable-dev-shm-usage",
    "--disable-extensions",
    "--disable-background-timer-throttling",
    "--disable-backgrounding-occluded-windows",
    "--disable-renderer-backgrounding",
    "--password-store=basic",
    "--use-mock-keychain",
    "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",
]


class _SharedChromium:
    """One Chromium per test process (each xdist worker), started by the first browser test and
    ended when the process exits. Each test talks to it over the DevTools protocol from its own
    event loop, in browser contexts of its own (cookies, storage), closed when the test ends."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen[bytes] | None = None
        self.endpoint: str | None = None
        self.profile: str | None = None

    def url(self) -> str:
        if self.proc is not None and self.proc.poll() is None and self.endpoint:
            return self.endpoint
        self.close()
        self.profile = tempfile.mkdtemp(prefix="bambu-edge-chromium-")
        args = [CHROMIUM, *SHARED_ARGS, f"--user-data-dir={self.profile}", "about:blank"]
        if os.geteuid() == 0:
            args.insert(1, "--no-sandbox")  # Chromium refuses to run as root with its sandbox
        self.proc = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        assert self.proc.stderr is not None
        deadline = time.monotonic() + 30
        seen: list[str] = []
        while time.monotonic() < deadline:
            line = self.proc.stderr.readline().decode(errors="replace")
            if not line and self.proc.poll() is not None:
                break
            seen.append(line)
            if line.startswith("DevTools listening on "):
                self.endpoint = line.split(" on ", 1)[1].strip()
                # Keep reading its stderr, or a chatty Chromium blocks on a full pipe.
                threading.Thread(target=self._drain, daemon=True).start()
                return self.endpoint
        self.close()
        pytest.fail("Chromium did not start:\n" + "".join(seen[-20:]))

    def _drain(self) -> None:
        proc = self.proc
        if proc is not None and proc.stderr is not None:
            for _ in proc.stderr:
                pass

    def close(self) -> None:
        proc, self.proc, self.endpoint = self.proc, None, None
        if proc is not None:
            end_process(proc)
        if self.profile is not None:
            shutil.rmtree(self.profile, ignore_errors=True)
            self.profile = None


_SHARED = _SharedChromium()
atexit.register(_SHARED.close)


@contextlib.asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    """The test process's one Chromium; contexts made through it are closed when the block ends."""
    if not Path(CHROMIUM).exists():
        pytest.fail("Chromium is not installed: run `make test` (it installs it) or apt-get install chromium")
    async with async_playwright() as p:
        browser = await p.chromium.connect_over_cdp(_SHARED.url())
        try:
            yield browser
        finally:
            for ctx in browser.contexts[1:]:  # the first is Chromium's own default context
                with contextlib.suppress(Exception):
                    await ctx.close()
            await browser.close()  # disconnects; the shared Chromium runs on


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
