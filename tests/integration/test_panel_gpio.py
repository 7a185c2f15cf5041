"""The panel on gpiozero's mock pin factory (real gpiozero logic, real timing): the LED pins follow
each state's pattern, button holds of 0.5 s / 3 s / 10 s acknowledge, power off (a recorded action:
never the machine) and reopen the web setup; without GPIO the panel fails in /api/health in plain
words while the daemon serves."""

from __future__ import annotations

import asyncio
import glob
import itertools
import statistics
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from gpiozero import Device
from gpiozero.pins.mock import MockFactory

from bambu_edge.app import Daemon
from bambu_edge.bus import Event
from bambu_edge.config import Config, WebConfig
from bambu_edge.panel.component import PanelComponent
from bambu_edge.panel.config import PanelConfig, RgbPins
from bambu_edge.panel.patterns import PATTERNS
from bambu_edge.printers.base import PRINTER_EVENT, PrinterUpdate
from tests.integration.waiting import dashboard_tls, eventually
from tests.integration.web_stack import admin_auth, assert_failed_but_serving

PASSWORD = "correct horse battery"


@pytest.fixture
def mock_pins() -> Any:
    Device.pin_factory = MockFactory()
    yield Device.pin_factory
    Device.pin_factory.reset()
    Device.pin_factory = None


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=dashboard_tls())) as session:
        yield session


def _config(tmp_path: Path, panel: PanelConfig | None) -> Config:
    web = WebConfig(bind="127.0.0.1", https_port=0, http_port=None)
    return Config(data_dir=tmp_path / "data", web=web, sections={"panel": panel})


def _panel(d: Daemon) -> PanelComponent:
    comp = d.component("panel")
    assert isinstance(comp, PanelComponent)
    return comp


def _printer(d: Daemon, pid: str, link: str, state: str | None, hms: list[Any] | None = None) -> None:
    """What a printer's link publishes after a report (the panel reads only the bus)."""
    view = {"id": pid, "link": {"state": link}, "print": {"state": state, "job": "cube"}, "hms": hms or []}
    d.bus.publish(Event(PRINTER_EVENT, pid, PrinterUpdate(changes={"print": view["print"]}, view=view)))


def _durations(pin: Any) -> tuple[list[float], list[float]]:
    """(lit durations, dark durations) seen on the pin since its states were cleared. Each entry is
    (seconds the previous state lasted, new state); the first stretch began before the clear and
    the last one has not ended: both are left out."""
    states = pin.states
    lit, dark = [], []
    for prev, cur in itertools.pairwise(states[1:]):
        (lit if prev.state else dark).append(cur.timestamp)
    return lit, dark


async def _assert_blinks(pin: Any, name: str) -> None:
    pattern = PATTERNS[name]
    pin.clear_states()
    await asyncio.sleep(pattern.period_s * 2.5)
    lit, dark = _durations(pin)
    want_lit = [d for on, d in pattern.steps if on]
    want_dark = [d for on, d in pattern.steps if not on]
    assert lit and dark, f"{name}: the LED did not blink: {pin.states}"
    # Under load a step may run late, never early: compare the shortest and the median.
    assert min(lit) >= min(want_lit) - 0.02 and statistics.median(lit) <= max(want_lit) + 0.15, (name, lit)
    assert min(dark) >= min(want_dark) - 0.02 and statistics.median(dark) <= max(want_dark) + 0.15, (
        name,
        dark,
    )


async def test_led_pin_follows_each_state_pattern(
    tmp_path: Path, mock_pins: Any, http: aiohttp.ClientSession
) -> None:
    d = Daemon(_config(tmp_path, PanelConfig(led_gpio=18)))
    await d.start()
    try:
        assert d.health()["panel"] == {
            "state": "running",
            "optional": True,
            "error": None,
            "pattern": "ok",
            "led": True,
            "button": False,
        }
        pin = mock_pins.pin(18)
        await _assert_blinks(pin, "ok")  # no printers: all is well, with the heartbeat blip
        steps: list[tuple[str, str, str | None, list[Any] | None]] = [
            ("starting", "connecting", None, None),
            ("printing", "connected", "RUNNING", None),
            ("attention", "connected", "FINISH", None),
            ("error", "connected", "FINISH", [{"code": "0300_0100_0001_0007", "severity": "fatal"}]),
            ("error", "offline", None, None),
        ]
        for name, link, state, hms in steps:
            _printer(d, "x1c", link, state, hms)
            await eventually(lambda n=name: _panel(d).pattern.name == n, 5, f"pattern {name}")
            await _assert_blinks(pin, name)
        base = f"https://127.0.0.1:{d.web.https_port}"
        auth = await admin_auth(http, base, d, PASSWORD)
        async with http.get(base + "/api/panel", headers=auth) as r:
            body = await r.json()
        assert body["pattern"] == "error" and body["color"] == "#ff0000" and body["alerts"] == 1
        assert body["led"] is True and body["button"] is False
    finally:
        await d.stop()
    assert mock_pins.pin(18).state == 0  # left dark after the stop


async def test_rgb_led_shows_the_state_colour(tmp_path: Path, mock_pins: Any) -> None:
    d = Daemon(_config(tmp_path, PanelConfig(led_gpio=RgbPins(17, 27, 22))))
    await d.start()
    try:
        red, green, blue = (mock_pins.pin(n) for n in (17, 27, 22))
        _printer(d, "x1c", "connected", "FINISH")  # attention: amber (red + green)
        await eventually(lambda: _panel(d).pattern.name == "attention", 5, "attention")
        for p in (red, green, blue):
            p.clear_states()
        await asyncio.sleep(PATTERNS["attention"].period_s * 2)
        assert any(s.state for s in red.states) and any(s.state for s in green.states)
        assert not any(s.state for s in blue.states)
        _printer(d, "x1c", "connected", "RUNNING")  # printing: cyan (green + blue)
        await eventually(lambda: _panel(d).pattern.name == "printing", 5, "printing")
        for p in (red, green, blue):
            p.clear_states()
        await asyncio.sleep(PATTERNS["printing"].period_s * 1.5)
        assert any(s.state for s in green.states) and any(s.state for s in blue.states)
        assert not any(s.state for s in red.states)
    finally:
        await d.stop()


async def _hold(pin: Any, seconds: float) -> None:
    pin.drive_low()  # pressed: the button pulls the pin to ground
    await asyncio.sleep(seconds)
    pin.drive_high()


async def test_button_holds_acknowledge_power_off_and_reopen_setup(
    tmp_path: Path, mock_pins: Any, http: aiohttp.ClientSession
) -> None:
    d = Daemon(_config(tmp_path, PanelConfig(button_gpio=3, led_gpio=18)))
    await d.start()
    panel = _panel(d)
    powered_off: list[float] = []

    async def record_poweroff() -> None:
        powered_off.append(asyncio.get_running_loop().time())

    panel.actions.poweroff = record_poweroff
    button = mock_pins.pin(3)
    try:
        base = f"https://127.0.0.1:{d.web.https_port}"
        auth = await admin_auth(http, base, d, PASSWORD)
        await d.store.users.create("viewer", PASSWORD, "user")
        _printer(d, "x1c", "connected", "FINISH")
        await eventually(lambda: panel.pattern.name == "attention", 5, "attention")

        # 0.5 s: the alert is acknowledged; nothing else happens.
        await _hold(button, 0.5)
        await eventually(lambda: panel.pattern.name == "ok", 5, "acknowledged")
        assert panel.last_press == "short" and powered_off == [] and not d.store.setup.is_open()
        # A second short press with nothing to acknowledge blinks the status (one printer connected).
        await _hold(button, 0.3)
        await eventually(lambda: panel.pattern.name == "status", 5, "status shown")
        assert sum(1 for lit, _ in panel.pattern.steps if lit) == 1

        # 3 s: the Pi is powered off (recorded), and the LED said so while the button was held.
        button.drive_low()
        await eventually(lambda: panel.pattern.name == "hold_shutdown", 5, "shutdown armed")
        await asyncio.sleep(0.2)  # held a little past the 3 s threshold
        button.drive_high()
        await eventually(lambda: powered_off, 5, "power-off")
        assert panel.last_press == "shutdown" and len(powered_off) == 1 and not d.store.setup.is_open()

        # 10 s: the setup opens again; users and data stay; power-off is not called again.
        async with http.get(base + "/api/setup") as r:
            assert await r.json() == {"needs_admin": False}
        await _hold(button, 10.3)
        await eventually(lambda: panel.last_press == "setup", 5, "setup hold")
        assert len(powered_off) == 1
        async with http.get(base + "/api/setup") as r:
            assert await r.json() == {"needs_admin": True}
        assert [u.name for u in await d.store.users.list()] == ["admin", "viewer"]
    finally:
        await d.stop()

    # The flag outlives a restart, and the wizard sets a new password for the forgotten admin.
    d = Daemon(_config(tmp_path, None))
    await d.start()
    try:
        base = f"https://127.0.0.1:{d.web.https_port}"
        new = "a much newer passphrase"
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=dashboard_tls())) as fresh:
            async with fresh.post(
                base + "/api/setup/admin", json={"username": "viewer", "password": new}
            ) as r:
                assert r.status == 409  # not an admin: another name
            async with fresh.post(
                base + "/api/setup/admin", json={"username": "admin", "password": new}
            ) as r:
                assert r.status == 201
            async with fresh.get(base + "/api/setup") as r:
                assert await r.json() == {"needs_admin": False}  # closed once used
            async with fresh.post(base + "/api/setup/admin", json={"username": "eve", "password": new}) as r:
                assert r.status == 409
        assert await d.store.users.verify("admin", new) is not None
        assert await d.store.users.verify("viewer", PASSWORD) is not None
        # The old session of the admin ended with the new password.
        async with http.get(base + "/api/session", headers=auth) as r:
            assert r.status == 401
    finally:
        await d.stop()


async def test_button_hold_with_shutdown_off_does_not_power_off(tmp_path: Path, mock_pins: Any) -> None:
    d = Daemon(
        _config(
            tmp_path, PanelConfig(button_gpio=3, shutdown_hold=False, shutdown_hold_s=0.3, setup_hold_s=0.6)
        )
    )
    await d.start()
    panel = _panel(d)
    calls: list[int] = []

    async def record() -> None:
        calls.append(1)

    panel.actions.poweroff = record
    try:
        await _hold(mock_pins.pin(3), 0.45)
        await eventually(lambda: panel.last_press is not None, 5, "release")
        assert panel.last_press == "short" and calls == []
    finally:
        await d.stop()


@pytest.mark.skipif(bool(glob.glob("/dev/gpiochip*")), reason="this machine has GPIO")
async def test_without_gpio_the_panel_fails_in_health_and_the_daemon_serves(
    tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    assert Device.pin_factory is None
    d = Daemon(_config(tmp_path, PanelConfig(button_gpio=3, led_gpio=18)))
    await d.start()
    try:
        error = "no GPIO here (no /dev/gpiochip*): the button and LED need a Raspberry Pi's pins"
        await assert_failed_but_serving(http, d, "panel", error, "/api/panel", PASSWORD)
    finally:
        await d.stop()
