"""Power control against real peers: Shelly Gen1, Shelly Gen2 and Tasmota plugs played by aiohttp
servers on loopback (tests/integration/smart_plugs.py), and gpiozero's mock pin factory for a GPIO
relay. A plug that hangs shows as unreachable within the API's 10 s and slows no other plug;
auto-off switches a finished, cool, idle printer off on a clock the test drives, never a printing one.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from gpiozero.pins.mock import MockFactory

from bambu_edge.bus import Event, EventBus
from bambu_edge.power.energy import EnergyConfig
from bambu_edge.power.events import POWER_EVENT, WAKE_EVENT, WakeRequest
from bambu_edge.power.service import PlugController, PowerService, Watch
from bambu_edge.power.setting import parse_power
from bambu_edge.printers.backoff import Backoff
from bambu_edge.printers.base import PRINTER_EVENT, PrinterUpdate
from bambu_edge.tasks import TaskSet
from tests.integration.links import make_link
from tests.integration.smart_plugs import ShellyGen1Plug, ShellyGen2Plug, SmartPlug, TasmotaPlug
from tests.integration.waiting import eventually

pytestmark = pytest.mark.integration


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def plugs() -> AsyncIterator[list[SmartPlug]]:
    started: list[SmartPlug] = []
    yield started
    for p in started:
        p.hang = False
        await p.stop()


async def serve(plugs: list[SmartPlug], plug: SmartPlug) -> SmartPlug:
    await plug.start()
    plugs.append(plug)
    return plug


@pytest.fixture
async def power() -> AsyncIterator[object]:
    services: list[tuple[PowerService, TaskSet]] = []

    def make(
        settings: dict, *, clock=time.monotonic, pin_factory=None, tick_s: float = 5.0, watch=None
    ) -> PowerService:
        tasks = TaskSet("power-test")
        svc = PowerService(
            {pid: parse_power(v) for pid, v in settings.items()},
            EventBus(),
            EnergyConfig(0.30, "EUR"),
            tasks,
            watch,
            pin_factory=pin_factory,
            clock=clock,
            tick_s=tick_s,
        )
        svc.start()
        services.append((svc, tasks))
        return svc

    yield make
    for svc, tasks in services:
        await svc.stop()
        await tasks.close()


async def checked(ctrl: PlugController) -> None:
    """Until the auto-off rule has looked at the printer after what the test just changed (the
    clock, a report): a check that ends after this call began has seen it."""
    seen = ctrl.checks
    await eventually(lambda: ctrl.checks > seen, timeout=5, what="an auto-off check")


def view(state: str, nozzle: float, link: str = "connected") -> dict:
    return {"link": {"state": link}, "print": {"state": state}, "temps": {"nozzle": {"current": nozzle}}}


# --- the plugs ------------------------------------------------------------------------------------


async def test_shelly_gen1_with_a_password_switches_and_meters(plugs, power):
    plug = await serve(plugs, ShellyGen1Plug(watts=212.5, wh_per_s=60.0, username="admin", password="s3cret"))
    svc = power({"p": {"shelly": plug.url, "password": "s3cret"}})
    state = await svc.read("p")
    assert state.to_json() == {"kind": "shelly", "on": False, "watts": 0.0, "reachable": True, "error": None}
    state = await svc.switch("p", True)
    assert plug.on and (state.on, state.watts, state.reachable) == (True, 212.5, True)
    assert "/relay/0?turn=on" in plug.requests
    await asyncio.sleep(0.3)
    await svc.read("p")
    assert svc.controllers["p"].energy_wh > 0  # watt-minutes, read as Wh

    wrong = power({"p": {"shelly": plug.url, "password": "guess"}})
    state = await wrong.read("p")
    assert not state.reachable and "password" in state.error


async def test_shelly_gen2_rpc(plugs, power):
    plug = await serve(plugs, ShellyGen2Plug(gen=3, on=True, watts=95.0))
    svc = power({"p": {"shelly": plug.url}})
    assert (await svc.read("p")).to_json() == {
        "kind": "shelly",
        "on": True,
        "watts": 95.0,
        "reachable": True,
        "error": None,
    }
    state = await svc.switch("p", False)
    assert not plug.on and state.on is False and state.watts == 0.0
    assert "/rpc/Switch.Set?id=0&on=false" in plug.requests
    assert plug.requests[0] == "/shelly"  # the generation is asked once
    assert plug.requests.count("/shelly") == 1


async def test_tasmota_with_user_and_password(plugs, power):
    plug = await serve(plugs, TasmotaPlug(watts=130.0, username="admin", password="pw"))
    svc = power({"p": {"tasmota": plug.url, "username": "admin", "password": "pw"}})
    state = await svc.switch("p", True)
    assert plug.on and (state.on, state.watts) == (True, 130.0)
    assert "/cm?user=admin&password=pw&cmnd=Power%20On" in plug.requests
    assert "/cm?user=admin&password=pw&cmnd=Status%208" in plug.requests
    assert (await svc.switch("p", False)).on is False and not plug.on

    unauthorised = power({"p": {"tasmota": plug.url}})
    state = await unauthorised.read("p")
    assert not state.reachable and "Need user" in state.error


async def test_a_plug_that_hangs_is_unreachable_in_time_and_slows_nothing_else(plugs, power):
    dead = await serve(plugs, ShellyGen2Plug())
    dead.hang = True
    alive = await serve(plugs, TasmotaPlug(on=True))
    svc = power({"dead": {"shelly": dead.url}, "alive": {"tasmota": alive.url}})

    t0 = time.monotonic()
    slow = asyncio.create_task(svc.read("dead"))
    await asyncio.sleep(0.5)  # the dead plug's request is under way
    for _ in range(5):
        t = time.monotonic()
        assert (await svc.read("alive")).on is True
        assert time.monotonic() - t < 1.0
    state = await slow
    assert time.monotonic() - t0 < 10.0
    assert state.to_json()["reachable"] is False and "no answer" in state.error
    # The breaker now leaves it alone: the next caller hears "unreachable" at once.
    t = time.monotonic()
    state = await svc.read("dead")
    assert time.monotonic() - t < 0.5 and not state.reachable and "trying again" in state.error


async def test_a_refused_connection_is_unreachable(power):
    svc = power({"p": {"shelly": "http://127.0.0.1:9"}})  # discard port: nothing listens
    state = await svc.read("p")
    assert not state.reachable and "cannot connect" in state.error


# --- GPIO ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("active_high", "on_level"), [(True, True), (False, False)])
async def test_gpio_relay_active_high_and_low(power, active_high, on_level):
    factory = MockFactory()
    pin = factory.pin(17)
    svc = power({"p": {"gpio": 17, "active_high": active_high}}, pin_factory=factory)
    assert (await svc.switch("p", True)).on is True
    assert pin.state is on_level
    off = await svc.switch("p", False)
    assert off.to_json() == {"kind": "gpio", "on": False, "watts": None, "reachable": True, "error": None}
    assert pin.state is (not on_level)


async def test_a_gpio_pin_that_cannot_be_claimed_is_reported(power):
    factory = MockFactory()
    svc = power({"a": {"gpio": 17}, "b": {"gpio": 17}}, pin_factory=factory)  # two relays, one pin
    assert set(svc.failures) == {"b"} and "GPIO 17" in svc.failures["b"]
    assert (await svc.read("b")).reachable is False


# --- the rules at run time ----------------------------------------------------------------------------


async def test_finished_cool_idle_printer_is_switched_off_on_the_driven_clock(power):
    factory = MockFactory()
    clock = Clock()
    svc = power(
        {"p": {"gpio": 5, "auto_off": {"idle_min": 10, "below_nozzle_c": 50}}},
        clock=clock,
        pin_factory=factory,
        tick_s=0.05,
    )
    events: list = []
    svc.bus.listen(POWER_EVENT, callback=events.append)
    await svc.switch("p", True)

    def report(state: str, nozzle: float) -> None:
        v = view(state, nozzle)  # as a link publishes it: the sections that changed, and the view
        changes = {"print": v["print"], "temps": v["temps"]}
        svc.bus.publish(Event(PRINTER_EVENT, "p", PrinterUpdate(changes, v, report=True)))

    ctrl = svc.controllers["p"]
    # Preparing, printing, paused for hours (a long pause lets the nozzle cool): never off.
    for state, nozzle in (("PREPARE", 30.0), ("RUNNING", 220.0), ("PAUSE", 40.0), ("RUNNING", 220.0)):
        report(state, nozzle)
        for _ in range(4):
            clock.now += 3600
            await checked(ctrl)
    assert factory.pin(5).state is True and ctrl.auto_offs == 0
    # Finished but hot: the minutes do not start.
    report("FINISH", 180.0)
    clock.now += 3600
    await checked(ctrl)
    assert factory.pin(5).state is True and ctrl.auto_offs == 0
    # Cool: off after 10 minutes, not before.
    report("FINISH", 45.0)
    await checked(ctrl)
    clock.now += 9 * 60
    await checked(ctrl)
    assert factory.pin(5).state is True and ctrl.auto_offs == 0
    clock.now += 60
    await eventually(lambda: factory.pin(5).state is False, timeout=5, what="switched off")
    assert events[-1].data.on is False and ctrl.auto_offs == 1


SWITCH_OFF = "/rpc/Switch.Set?id=0&on=false"


def report(svc: PowerService, state: str, nozzle: float, link: str = "connected") -> None:
    """A printer report as its link publishes it (the link, the print and the temperatures)."""
    v = view(state, nozzle, link)
    svc.bus.publish(Event(PRINTER_EVENT, "p", PrinterUpdate(dict(v), v, report=True)))


async def resting_under_auto_off(
    plugs: list[SmartPlug], power: Any
) -> tuple[SmartPlug, PowerService, PlugController, Clock]:
    """A Shelly plug (on) with auto-off after 10 min; the printer finished and cool for 9 of them."""
    plug = await serve(plugs, ShellyGen2Plug(on=True))
    clock = Clock()
    svc = power({"p": {"shelly": plug.url, "auto_off": {"idle_min": 10}}}, clock=clock, tick_s=0.05)
    ctrl = svc.controllers["p"]
    report(svc, "FINISH", 30.0)
    await checked(ctrl)
    clock.now += 9 * 60
    await checked(ctrl)
    assert plug.on and ctrl.auto_offs == 0
    return plug, svc, ctrl, clock


async def test_a_printer_offline_when_its_minutes_are_up_is_not_switched_off(plugs, power):
    plug, svc, ctrl, clock = await resting_under_auto_off(plugs, power)
    # Its link goes down a minute before (Wi-Fi, a firmware update): it may be printing for all we
    # know, so it is not switched off, however long it stays away.
    report(svc, "FINISH", 30.0, link="offline")
    for _ in range(3):
        clock.now += 3600
        await checked(ctrl)
    assert plug.on and SWITCH_OFF not in plug.requests and ctrl.auto_offs == 0
    # Back and still at rest: its minutes start over.
    report(svc, "IDLE", 28.0)
    await checked(ctrl)
    clock.now += 9 * 60
    await checked(ctrl)
    assert plug.on and ctrl.auto_offs == 0
    clock.now += 60
    await eventually(lambda: not plug.on, timeout=5, what="switched off")
    assert plug.requests.count(SWITCH_OFF) == 1


async def test_a_plug_switched_by_hand_is_read_back_and_auto_off_follows_it(plugs, power):
    plug, _, ctrl, clock = await resting_under_auto_off(plugs, power)
    # Switched off at the plug's own button: the next poll reads it back; nothing is sent to it.
    await plug.set_relay(False)
    clock.now += 61
    await eventually(lambda: ctrl.state.on is False, timeout=5, what="read back off")
    for _ in range(3):
        clock.now += 3600
        await checked(ctrl)
    assert not any(r.startswith("/rpc/Switch.Set") for r in plug.requests) and ctrl.auto_offs == 0
    # On again at the plug, the printer at rest: switched off after its full minutes, once.
    await plug.set_relay(True)
    clock.now += 61
    await eventually(lambda: ctrl.state.on is True, timeout=5, what="read back on")
    await checked(ctrl)
    clock.now += 9 * 60
    await checked(ctrl)
    assert plug.on and ctrl.auto_offs == 0
    clock.now += 60
    await eventually(lambda: not plug.on, timeout=5, what="switched off")
    assert plug.requests.count(SWITCH_OFF) == 1 and ctrl.auto_offs == 1


async def test_a_plug_unreadable_when_the_minutes_are_up_is_switched_off_once_it_answers(plugs, power):
    plug, _, ctrl, clock = await resting_under_auto_off(plugs, power)
    plug.fail_next = 10**6  # its Wi-Fi drops
    for _ in range(2):
        clock.now += 3600
        await checked(ctrl)
    assert not ctrl.state.reachable and ctrl.state.on is None
    assert plug.on and SWITCH_OFF not in plug.requests and ctrl.auto_offs == 0  # nothing switched blind
    # It answers again ("on"), past its breaker's wait: off at once, not ten more minutes.
    plug.fail_next = 0
    clock.now += 400
    await eventually(lambda: not plug.on, timeout=5, what="switched off")
    assert plug.requests.count(SWITCH_OFF) == 1 and ctrl.auto_offs == 1


async def test_a_wake_request_switches_an_off_printer_on(plugs, power):
    plug = await serve(plugs, ShellyGen2Plug(on=False))
    svc = power({"p": {"shelly": plug.url}})
    await svc.read("p")
    svc.bus.publish(Event(WAKE_EVENT, "p", WakeRequest(7)))
    svc.bus.publish(Event(WAKE_EVENT, "p", WakeRequest(7)))  # a repeat changes nothing
    await eventually(lambda: plug.on, timeout=5, what="plug on")
    assert plug.requests.count("/rpc/Switch.Set?id=0&on=true") == 1


@pytest.mark.parametrize("how", ["by hand", "for the queue", "at the plug"])
async def test_switched_on_the_printer_link_reconnects_at_once_not_after_its_backoff(
    plugs, power, broker, pins, how
):
    # The printer's link has been failing long enough to wait a minute between tries.
    link = make_link(broker, pins, backoff=Backoff(initial=60.0, cap=60.0, jitter=0.0))
    plug = await serve(plugs, ShellyGen2Plug(on=True))

    async def mains(on: bool) -> None:  # the plug powers the printer (its MQTT side)
        broker.start() if on else broker.kill()

    plug.on_switch = mains
    links = {"p1": link}  # what the component's hook finds through the printers' manager
    svc = power({"p1": {"shelly": plug.url}}, watch=Watch(powered_on=lambda pid: links[pid].reconnect_now()))
    await link.start()
    try:
        await eventually(lambda: link.link_state == "connected", timeout=10, what="connected")
        await svc.switch("p1", False)
        await eventually(lambda: link.link_state == "offline", timeout=10, what="offline")
        attempts = link.connect_attempts
        t0 = time.monotonic()
        if how == "by hand":
            assert (await svc.switch("p1", True)).on is True
        elif how == "for the queue":
            svc.bus.publish(Event(WAKE_EVENT, "p1", WakeRequest(7)))
        else:  # its own button; the next poll sees it
            await plug.set_relay(True)
            assert (await svc.read("p1")).on is True
        await eventually(lambda: link.link_state == "connected", timeout=10, what="online after power-on")
        assert time.monotonic() - t0 < 3  # not the minute the backoff asked for
        assert link.connect_attempts == attempts + 1
    finally:
        plug.on_switch = None
        await link.stop()


# --- the component ------------------------------------------------------------------------------


async def test_without_a_gpio_chip_power_fails_visibly_and_the_rest_runs(tmp_path):
    from bambu_edge.app import Daemon
    from bambu_edge.config import Config, PrinterConfig, WebConfig
    from bambu_edge.discovery.config import DiscoveryConfig

    printer = PrinterConfig(
        id="p1", name="P1", type="bambu", host="127.0.0.1", serial="01P00A000000001",
        access_code="12345678", mqtt_port=9, power=parse_power({"gpio": 17}),
    )  # fmt: skip
    config = Config(
        data_dir=tmp_path / "data",
        web=WebConfig(bind="127.0.0.1", https_port=0, http_port=None),
        printers=(printer,),
        sections={"discovery": DiscoveryConfig(ssdp=False, mdns=False)},
    )
    d = Daemon(config)
    await d.start()
    try:
        health = d.health()
        assert health["power"]["state"] == "failed" and health["power"]["optional"] is True
        assert health["power"]["error"].startswith("p1: GPIO 17 cannot be used")
        assert health["web"]["state"] == health["printers"]["state"] == health["queue"]["state"] == "running"
    finally:
        await d.stop()
