"""First run in real Chromium: the setup wizard on a fresh daemon (no user yet), then a printer added
in the dashboard that goes live and is still there after a restart.

Real parts: the daemon as a child process, mosquitto (TLS + password, certificate CN = the printer's
serial) with two virtual printers on it: one declared in the YAML config (read-only in the
dashboard) and one the user adds in the wizard.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bambu_edge.demo.broker import LocalBroker
from bambu_edge.printers.virtual import VirtualPrinter
from tests.conftest import ACCESS_CODE, SERIAL
from tests.integration.browser import PHONE, chromium, new_page, screenshot_on_failure, snap
from tests.integration.daemon_proc import DaemonProcess, NotifySocket, keep_port, printer_entry, write_config
from tests.integration.running_daemon import SERIAL_X1C

PASSWORD = "a long and fine password"
WRONG_CODE = "87654321"


class FreshDaemon:
    """A daemon with a config file (one printer) and an empty data directory; restartable."""

    def __init__(self, tmp_path: Path, broker: LocalBroker):
        self.tmp_path = tmp_path
        self.broker = broker
        self.cfg_path = tmp_path / "config.yaml"
        write_config(
            self.cfg_path, tmp_path / "data", [printer_entry(broker, SERIAL_X1C, ACCESS_CODE, "x1c")]
        )
        self.base = ""  # known once the daemon has started
        self.proc: DaemonProcess | None = None
        self.runs = 0
        self.output = ""

    async def start(self) -> None:
        self.runs += 1
        sock = NotifySocket(self.tmp_path / f"notify{self.runs}.sock")
        self.proc = DaemonProcess(
            self.cfg_path,
            env={"NOTIFY_SOCKET": str(sock.path)},
            log_path=self.tmp_path / f"daemon{self.runs}.log",
        )
        try:
            await asyncio.to_thread(sock.wait_for, "READY=1", 30)
        finally:
            sock.close()
        port = self.proc.https_port
        if not self.base:
            keep_port(self.cfg_path, port)
        self.base = f"https://127.0.0.1:{port}"

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop()
            self.output += self.proc.output
            self.proc = None


@pytest.fixture
async def fresh(tmp_path: Path, broker: LocalBroker) -> AsyncIterator[FreshDaemon]:
    printers = [
        VirtualPrinter(broker.host, broker.port, SERIAL_X1C, ACCESS_CODE, "X1C", str(broker.ca_path)),
        VirtualPrinter(
            broker.host, broker.port, SERIAL, ACCESS_CODE, "P1P", str(broker.ca_path), report_hz=2.0
        ),
    ]
    for vp in printers:
        await vp.start()
    daemon = FreshDaemon(tmp_path, broker)
    try:
        await daemon.start()
        yield daemon
    finally:
        daemon.stop()
        for vp in printers:
            await vp.stop()
    # (The test access code happens to be part of the test serial, which the log may name.)
    log = daemon.output.replace(SERIAL, "<serial>")
    assert ACCESS_CODE not in log and WRONG_CODE not in log
    assert "Traceback" not in daemon.output


async def test_setup_wizard_then_added_printer_goes_live_and_survives_a_restart(fresh: FreshDaemon) -> None:
    async with chromium() as browser:
        errors: list[str] = []
        pg = await new_page(browser, errors)
        async with screenshot_on_failure(pg, "setup-wizard"):
            await _wizard(pg, fresh)
            assert errors == []
        # Setting up from a phone works too: both steps fit 360 px, nothing scrolls sideways.
        phone = await new_page(browser, errors, viewport=PHONE, is_mobile=True, has_touch=True)
        async with screenshot_on_failure(phone, "setup-wizard-phone"):
            await phone.goto(fresh.base + "/#/login")
            await phone.fill("[data-testid=login-username]", "admin")
            await phone.fill("[data-testid=login-password]", PASSWORD)
            await phone.click("[data-testid=login-submit]")
            await phone.wait_for_selector("[data-testid=printer-card]", timeout=10_000)
            await phone.goto(fresh.base + "/#/setup")
            await phone.wait_for_selector(
                "[data-testid=wizard-step-printers] [data-testid=printer-row]", timeout=10_000
            )
            await phone.click("[data-testid=printer-ports] summary")
            await snap(phone, "wizard-phone-printers")
            assert await phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
            assert errors == []


async def _wizard(pg, d: FreshDaemon) -> None:
    # No user yet: whatever page is asked for, the wizard opens at its first step.
    await pg.goto(d.base + "/#/settings")
    await pg.wait_for_selector("[data-testid=wizard-step-admin]", timeout=10_000)
    await snap(pg, "wizard-1-admin")
    await pg.fill("[data-testid=setup-username]", "admin")
    await pg.fill("[data-testid=setup-password]", PASSWORD)
    await pg.fill("[data-testid=setup-password-confirm]", PASSWORD)
    await pg.click("[data-testid=setup-admin-submit]")
    step = pg.locator("[data-testid=wizard-step-printers]")
    await step.wait_for(timeout=10_000)
    assert "admin" in await pg.locator("#topbar").inner_text()

    await snap(pg, "wizard-2-printers")
    # The printer from the config file is listed, read-only: no edit or remove.
    yaml_row = step.locator("[data-testid=printer-row][data-printer-id=x1c]")
    await yaml_row.wait_for(timeout=10_000)
    assert await yaml_row.get_attribute("data-read-only") == "true"
    assert await yaml_row.locator("[data-testid=read-only]").is_visible()
    assert await yaml_row.locator("[data-testid=printer-edit], [data-testid=printer-remove]").count() == 0

    # Add the P1P: first with a mistyped access code, which the test step explains.
    form = step.locator("[data-testid=printer-form]")
    await form.locator("[data-testid=printer-name-input]").fill("Shelf P1P")
    await form.locator("[data-testid=printer-host-input]").fill(d.broker.host)
    await form.locator("[data-testid=printer-serial-input]").fill(SERIAL)
    await form.locator("[data-testid=printer-code-input]").fill(WRONG_CODE)
    await form.locator("[data-testid=printer-ports] summary").click()
    await form.locator("[data-testid=printer-mqtt-port-input]").fill(str(d.broker.port))
    await form.locator("[data-testid=printer-test]").click()
    result = form.locator("[data-testid=test-result]")
    await pg.wait_for_selector(
        "[data-testid=printer-form] [data-testid=test-result][data-state=auth_failed]", timeout=20_000
    )
    text = await result.inner_text()
    assert "Access code rejected" in text and "refused the access code" in text
    assert WRONG_CODE not in text

    await snap(pg, "wizard-3-auth-failed")
    await form.locator("[data-testid=printer-code-input]").fill(ACCESS_CODE)
    await form.locator("[data-testid=printer-test]").click()
    await pg.wait_for_selector(
        "[data-testid=printer-form] [data-testid=test-result][data-state=connected]", timeout=20_000
    )
    text = await result.inner_text()
    assert "Connected" in text and "accepted the access code" in text
    assert await form.locator("[data-testid=test-fingerprint]").inner_text()

    await snap(pg, "wizard-4-connected")
    await form.locator("[data-testid=printer-save]").click()
    added = step.locator("[data-testid=printer-row][data-printer-id=shelf-p1p]")
    await added.wait_for(timeout=10_000)
    assert await added.get_attribute("data-read-only") == "false"
    assert await added.locator("[data-testid=printer-edit]").count() == 1
    # The form is empty again for the next printer; the access code is not left on the page.
    assert await form.locator("[data-testid=printer-code-input]").input_value() == ""

    await snap(pg, "wizard-5-added")
    await step.locator("[data-testid=wizard-finish]").click()
    await pg.click("[data-testid=wizard-go-dashboard]")
    await _card_is_live(pg, "shelf-p1p")
    await _card_is_live(pg, "x1c")

    await snap(pg, "wizard-6-overview")
    # A restart: the printer comes back from the database, and the session is still valid.
    d.stop()
    await pg.wait_for_selector("[data-testid=live-indicator][data-live=false]", timeout=15_000)
    await d.start()
    await pg.reload()
    await _card_is_live(pg, "shelf-p1p")
    name = await pg.locator("[data-testid=printer-card][data-printer-id=shelf-p1p] .card-name").inner_text()
    assert name == "Shelf P1P"
    await snap(pg, "wizard-7-after-restart")

    # Settings lists both, and only the dashboard's printer can be changed; the printer page agrees.
    await pg.goto(d.base + "/#/settings/printers")
    rows = pg.locator("[data-testid=printers-panel] [data-testid=printer-row]")
    await pg.wait_for_selector("[data-testid=printers-panel] [data-printer-id=shelf-p1p]", timeout=10_000)
    assert [await r.get_attribute("data-printer-id") for r in await rows.all()] == ["x1c", "shelf-p1p"]
    assert [await r.get_attribute("data-read-only") for r in await rows.all()] == ["true", "false"]

    # Rename the dashboard's printer: the list and the card follow, the link comes back.
    ours = pg.locator("[data-testid=printers-panel] [data-printer-id=shelf-p1p]")
    await ours.locator("[data-testid=printer-edit]").click()
    edit = pg.locator("[data-testid=printer-edit-form]")
    assert await edit.locator("[data-testid=printer-host-input]").input_value() == d.broker.host
    assert await edit.locator("[data-testid=printer-mqtt-port-input]").input_value() == str(d.broker.port)
    assert await edit.locator("[data-testid=printer-code-input]").input_value() == ""  # never sent back
    await edit.locator("[data-testid=printer-name-input]").fill("Shelf P1P (left)")
    await edit.locator("[data-testid=printer-save]").click()
    await pg.wait_for_function(
        "() => document.querySelector('[data-testid=printers-panel] [data-printer-id=shelf-p1p]')"
        "?.textContent.includes('Shelf P1P (left)')",
        timeout=10_000,
    )
    await pg.goto(d.base + "/#/")
    await _card_is_live(pg, "shelf-p1p")
    name = await pg.locator("[data-testid=printer-card][data-printer-id=shelf-p1p] .card-name").inner_text()
    assert name == "Shelf P1P (left)"

    await pg.goto(d.base + "/#/printer/x1c")
    await pg.wait_for_selector("[data-testid=read-only]:visible", timeout=10_000)
    assert await pg.locator("[data-testid=printer-source]").inner_text() == "Config file (read-only here)"
    await snap(pg, "wizard-8-yaml-printer-page")

    # Remove it (after saying yes): gone from the list and from the overview.
    await pg.goto(d.base + "/#/settings/printers")
    await ours.locator("[data-testid=printer-remove]").click()
    await pg.click("[data-testid=confirm-dialog] [data-testid=confirm-ok]")
    await ours.wait_for(state="detached", timeout=10_000)
    await pg.goto(d.base + "/#/")
    await pg.wait_for_selector("[data-testid=printer-card][data-printer-id=x1c]", timeout=10_000)
    assert await pg.locator("[data-testid=printer-card][data-printer-id=shelf-p1p]").count() == 0


async def _card_is_live(pg, printer_id: str) -> None:
    card = f"[data-testid=printer-card][data-printer-id={printer_id}]"
    await pg.wait_for_selector(f"{card}[data-link-state=connected]", timeout=20_000)
    # Live numbers, not placeholders: the virtual printer's nozzle temperature is on the card.
    await pg.wait_for_function(
        f"() => (document.querySelector('{card} [data-testid=temp-nozzle]')?.dataset.current || '') !== ''",
        timeout=10_000,
    )
