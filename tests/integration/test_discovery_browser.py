"""Discovered printers in the dashboard: a real SSDP packet sent to the running daemon shows up in
the setup wizard and in Settings → Printers, and one click fills in the "add printer" form."""

from __future__ import annotations

import pytest

from tests.integration.browser import chromium, login, new_page, screenshot_on_failure
from tests.integration.running_daemon import PASSWORD, SERIAL_X1C
from tests.integration.test_discovery_ssdp import captured_packet, free_udp_ports, notify, send

PORTS = free_udp_ports(1)


@pytest.fixture
def spine_config() -> dict:
    return {"discovery": {"ssdp": True, "ssdp_ports": PORTS, "mdns": False, "ssdp_interface": "127.0.0.1"}}


async def _pick_fills_the_form(pg) -> None:
    found = pg.locator("[data-testid=discovered-row][data-serial='00M09C452703629']")
    await found.wait_for(timeout=15_000)
    # The configured printer is listed as added, without a button to add it again.
    mine = pg.locator(f"[data-testid=discovered-row][data-serial='{SERIAL_X1C}']")
    await mine.locator("[data-testid=discovered-configured]").wait_for(timeout=15_000)
    assert await mine.locator("[data-testid=discovered-use]").count() == 0
    assert "3DP-00M-629" in await found.inner_text() and "192.168.1.68" in await found.inner_text()

    await found.locator("[data-testid=discovered-use]").click()
    form = pg.locator("[data-testid=printer-form]")
    assert await form.locator("[data-testid=printer-host-input]").input_value() == "192.168.1.68"
    assert await form.locator("[data-testid=printer-serial-input]").input_value() == "00M09C452703629"
    assert await form.locator("[data-testid=printer-model-input]").input_value() == "X1C"
    assert await form.locator("[data-testid=printer-name-input]").input_value() == "3DP-00M-629"
    # What the announcement cannot tell is next: the access code.
    assert await pg.evaluate("document.activeElement.dataset.testid") == "printer-code-input"


async def test_discovered_printers_fill_the_add_printer_form(spine: dict) -> None:
    send(captured_packet(), PORTS[0])
    send(notify(SERIAL_X1C, "DevName.bambu.com: Left", model="BL-P001"), PORTS[0])
    async with chromium() as browser:
        errors: list[str] = []
        pg = await new_page(browser, errors)
        async with screenshot_on_failure(pg, "discovery-settings"):
            await login(pg, spine["base"], PASSWORD, "/#/settings/printers")
            await _pick_fills_the_form(pg)
        async with screenshot_on_failure(pg, "discovery-wizard"):
            await pg.goto(spine["base"] + "/#/setup")
            await pg.locator("[data-testid=wizard-step-printers]").wait_for(timeout=10_000)
            await _pick_fills_the_form(pg)
        assert errors == []
