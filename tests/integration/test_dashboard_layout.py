"""What the dashboard looks like in real Chromium: dark and light themes, and a 360 px phone.

Against the real daemon, mosquitto and a virtual X1C that is printing (a long job name, four AMS
units, so the cards are as full as they get). Screenshots are kept in test-artifacts/ on failure.
"""

from __future__ import annotations

import pytest

from tests.integration.browser import (
    BACKGROUND,
    PHONE,
    TEXT,
    chromium,
    new_page,
    no_sideways_scroll,
    screenshot_on_failure,
    snap,
)
from tests.integration.running_daemon import PASSWORD

# --bg of web/css/app.css, as the browser computes it.
LONG_JOB = "Gridfinity_baseplate_6x4_magnets_and_screws_v2_final_FINAL_0.2mm_PETG_4h12m"


async def _login(pg, base: str, route: str = "/") -> None:
    await pg.goto(base + route)
    await pg.fill("[data-testid=login-username]", "admin")
    await pg.fill("[data-testid=login-password]", PASSWORD)
    await pg.click("[data-testid=login-submit]")
    await pg.wait_for_selector("[data-testid=printer-card][data-link-state=connected]", timeout=15_000)


async def _colours(pg) -> dict[str, str]:
    return await pg.evaluate(
        """() => {
            const body = getComputedStyle(document.body);
            const card = document.querySelector('[data-testid=printer-card]');
            return {
                background: body.backgroundColor,
                text: body.color,
                card: card ? getComputedStyle(card).backgroundColor : null,
                name: card ? getComputedStyle(card.querySelector('.card-name')).color : null,
                scheme: getComputedStyle(document.documentElement).colorScheme,
            };
        }"""
    )


@pytest.mark.parametrize("scheme", ["light", "dark"])
async def test_theme_follows_the_system_and_the_toggle(spine, scheme: str) -> None:
    other = "dark" if scheme == "light" else "light"
    async with chromium() as browser:
        errors: list[str] = []
        pg = await new_page(browser, errors, color_scheme=scheme)
        async with screenshot_on_failure(pg, f"theme-{scheme}"):
            await _login(pg, spine["base"])
            c = await _colours(pg)
            await snap(pg, f"theme-{scheme}")
            # The system's choice is followed: page and text in that theme's colours, cards set off.
            assert (c["background"], c["text"]) == (BACKGROUND[scheme], TEXT[scheme]), c
            assert c["card"] not in (None, c["background"]) and c["name"] == TEXT[scheme]

            # The toggle switches to the other theme, and the choice outlives a reload.
            toggle = pg.locator("[data-testid=theme-toggle]")
            assert await toggle.get_attribute("data-theme") == scheme
            await toggle.click()
            c = await _colours(pg)
            assert (c["background"], c["text"], c["scheme"]) == (BACKGROUND[other], TEXT[other], other), c
            await pg.reload()
            await pg.wait_for_selector(
                "[data-testid=printer-card][data-link-state=connected]", timeout=15_000
            )
            assert (await _colours(pg))["background"] == BACKGROUND[other]
            assert await toggle.get_attribute("data-theme") == other
            await snap(pg, f"theme-{scheme}-toggled")
            assert errors == []


async def test_a_360_px_phone_needs_no_sideways_scrolling(spine) -> None:
    await spine["vp"].simulate_print(LONG_JOB, duration_s=600, layers=300, start_fraction=0.3)
    async with chromium() as browser:
        errors: list[str] = []
        pg = await new_page(browser, errors, viewport=PHONE, is_mobile=True, has_touch=True)
        async with screenshot_on_failure(pg, "phone"):
            await _login(pg, spine["base"])
            await pg.wait_for_function(
                "() => document.querySelector('[data-testid=print-state]')?.dataset.state === 'RUNNING'",
                timeout=15_000,
            )
            pages = {
                "overview": ("/#/", "[data-testid=printer-card] [data-testid=btn-pause]"),
                "printer": ("/#/printer/x1c", "[data-testid=link-panel]"),
                "settings": ("/#/settings/account", "[data-testid=password-form]"),
                "settings-printers": ("/#/settings/printers", "[data-testid=printer-row]"),
                "settings-tokens": ("/#/settings/tokens", "[data-testid=token-form]"),
                "history": ("/#/history", "[data-testid=history-row]"),
                "queue": ("/#/queue", "[data-testid=queue-printer]"),
                # No storage behind this printer: the error notice must fit as well.
                "printer-files": ("/#/printer/x1c/files", "[data-testid=files-error]"),
            }
            for name, (route, ready) in pages.items():
                await pg.goto(spine["base"] + route)
                await pg.wait_for_selector(ready, timeout=10_000)
                await pg.wait_for_timeout(300)  # let late content (chart, lists) lay out
                await snap(pg, f"phone-{name}")
                width = await no_sideways_scroll(pg)
                assert width["view"] == PHONE["width"]
                assert width["scroll"] <= width["view"], (name, width)
            # The long job name is cut with an ellipsis, not pushed off the screen.
            await pg.goto(spine["base"] + "/#/")
            job = pg.locator("[data-testid=printer-card] .job-name")
            await job.wait_for(timeout=10_000)
            box = await job.bounding_box()
            assert box is not None and box["x"] + box["width"] <= PHONE["width"]
            assert await job.evaluate("(e) => e.scrollWidth > e.clientWidth")  # it is really cut
            assert errors == []
