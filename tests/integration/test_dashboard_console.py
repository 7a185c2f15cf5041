"""The dashboard in real Chromium against the real daemon: a page that nobody has logged in to yet
runs without a single console error (the session probe answers 200, not 401), and the printer list
in Settings is fetched from the unit once, not again when the live snapshot comes in."""

from __future__ import annotations

import urllib.parse
from typing import Any

from playwright.async_api import ConsoleMessage, Page, Request, WebSocketRoute

from tests.integration.browser import chromium, login, new_page, screenshot_on_failure
from tests.integration.running_daemon import PASSWORD


def watch_console(pg: Page) -> list[str]:
    """Every console error of the page (new_page's list has script errors and CSP violations)."""
    seen: list[str] = []

    def on_console(m: ConsoleMessage) -> None:
        if m.type == "error":
            seen.append(f"{m.text} ({m.location.get('url', '')})")

    pg.on("console", on_console)
    return seen


def api_calls(pg: Page, path: str) -> list[str]:
    """The page's GET requests to ``path`` (the URL's path, exactly)."""
    calls: list[str] = []

    def on_request(r: Request) -> None:
        if r.method == "GET" and urllib.parse.urlsplit(r.url).path == path:
            calls.append(r.url)

    pg.on("request", on_request)
    return calls


async def test_a_fresh_page_before_login_logs_no_console_error(spine: dict) -> None:
    base = spine["base"]
    async with chromium() as browser:
        for route in ("/", "/#/settings", "/#/printer/x1c", "/#/login"):
            errors: list[str] = []
            pg = await new_page(browser, errors)  # its own context: no cookie, nothing cached
            console = watch_console(pg)
            probes = api_calls(pg, "/api/auth/status")
            async with screenshot_on_failure(pg, "fresh-console"):
                await pg.goto(base + route)
                await pg.wait_for_selector("[data-testid=login-form]", timeout=10_000)
                await pg.wait_for_load_state("networkidle")
                assert console == [] and errors == [], route
                assert len(probes) == 1  # it asked who is logged in, and heard "nobody" (a 200)
        # Logging in from there: still nothing in the console.
        async with screenshot_on_failure(pg, "fresh-console-login"):
            await login(pg, base, PASSWORD)
            await pg.wait_for_load_state("networkidle")
            assert console == [] and errors == []


async def test_settings_fetches_the_printer_list_once(spine: dict) -> None:
    base = spine["base"]
    async with chromium() as browser:
        errors: list[str] = []
        pg = await new_page(browser, errors)
        console = watch_console(pg)
        async with screenshot_on_failure(pg, "printer-list-once"):
            await login(pg, base, PASSWORD, route="/#/settings/printers")
            # From the next load on, the WebSocket's frames are held until the list is on screen, so
            # the snapshot surely arrives after the page fetched the list (the order that fetched it
            # twice). The frames are the daemon's own, only later.
            held: list[tuple[WebSocketRoute, Any]] = []
            gate = {"open": False}

            def hold(ws: WebSocketRoute) -> None:
                server = ws.connect_to_server()

                def relay(message: Any) -> None:
                    if gate["open"]:
                        ws.send(message)
                    else:
                        held.append((ws, message))

                server.on_message(relay)

            await pg.route_web_socket("**/api/ws", hold)
            fetches = api_calls(pg, "/api/printers")
            await pg.reload()
            row = "[data-testid=printer-row][data-printer-id=x1c][data-read-only=true]"
            await pg.wait_for_selector(row, timeout=10_000)
            assert await pg.locator("[data-testid=live-indicator][data-live=true]").count() == 0
            assert len(fetches) == 1
            gate["open"] = True
            for ws, message in held:
                ws.send(message)
            await pg.wait_for_selector("[data-testid=live-indicator][data-live=true]", timeout=10_000)
            await pg.wait_for_load_state("networkidle")
            # Repainted from the live snapshot (link state and all), not fetched again.
            live_badge = f"{row} [data-testid=link-state][data-state=connected]"
            await pg.wait_for_selector(live_badge, timeout=10_000)
            assert len(fetches) == 1, fetches
            assert await pg.locator("[data-testid=printer-row]").count() == 1
            assert console == [] and errors == []
