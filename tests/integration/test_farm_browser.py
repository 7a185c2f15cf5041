"""The dashboard shows the whole farm in Chromium: the other unit's printer has a card marked with
its unit's name, and when that unit is killed the mark says it is gone while the unit's own
printer stays live."""

from __future__ import annotations

import pytest

from tests.integration.browser import chromium, login, new_page, screenshot_on_failure
from tests.integration.running_daemon import PASSWORD
from tests.integration.test_farm import farm_broker, two_units  # noqa: F401 - fixtures
from tests.integration.waiting import eventually

pytestmark = pytest.mark.integration


async def test_remote_printers_are_marked_with_their_unit(two_units) -> None:  # noqa: F811
    garage, attic = two_units
    async with chromium() as browser:
        errors: list[str] = []
        pg = await new_page(browser, errors)
        async with screenshot_on_failure(pg, "farm-cards"):
            await login(pg, garage.farm.https, PASSWORD, "/#/")
            remote = pg.locator("[data-testid=printer-card][data-printer-id=p1s-b]")
            local = pg.locator("[data-testid=printer-card][data-printer-id=x1c-a]")
            await remote.wait_for(timeout=30_000)
            await local.wait_for(timeout=30_000)
            mark = remote.locator("[data-testid=printer-node]")
            await eventually(
                lambda: _text_is(mark, "on Attic"), timeout=30, what="the remote card's unit mark"
            )
            assert not await local.locator("[data-testid=printer-node]").is_visible()

            attic.kill()
            await eventually(lambda: _text_is(mark, "Attic is gone"), timeout=30, what="the unit shown gone")
            assert "tone-bad" in (await mark.get_attribute("class") or "")
            await eventually(
                lambda: _attr(remote, "data-link-state", "offline"),
                timeout=10,
                what="the remote card offline",
            )
            assert await local.get_attribute("data-link-state") == "connected"
    # The remote printer's camera is not served here (404): that is the one console line allowed.
    assert [e for e in errors if "404" not in e] == []


async def _text_is(locator, text: str) -> bool:
    return (await locator.inner_text()).strip() == text


async def _attr(locator, name: str, value: str) -> bool:
    return await locator.get_attribute(name) == value
