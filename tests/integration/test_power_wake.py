"""The queue switching printers on, against auto-off: the real dispatcher and power service in-process,
a virtual P1S on mosquitto and a Shelly Gen2 plug on loopback that powers it (relay off: the printer
and its MQTT side are down). A printer switched on for a job that then cannot start there is not
switched off and on again in a loop; one switched on for a job is not switched off before the job has
had its chance. The plug's switch requests are counted."""

from __future__ import annotations

import hashlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bambu_edge.bus import EventBus
from bambu_edge.config import Config, PrinterConfig
from bambu_edge.files.threemf import read_3mf
from bambu_edge.jobs.dispatcher import Dispatcher
from bambu_edge.jobs.queue import QueueStore
from bambu_edge.power.energy import EnergyConfig
from bambu_edge.power.rules import PrinterFacts
from bambu_edge.power.service import PlugController, PowerService, Watch
from bambu_edge.power.setting import parse_power
from bambu_edge.printers.manager import PrinterManager
from bambu_edge.printers.virtual import VirtualPrinter
from bambu_edge.store.db import Store
from bambu_edge.tasks import TaskSet
from tests.conftest import ACCESS_CODE
from tests.factories.threemf import PlateSpec, make_3mf
from tests.integration.smart_plugs import ShellyGen2Plug
from tests.integration.waiting import eventually

pytestmark = pytest.mark.integration

SERIAL = "01P09C000000007"
BLACK_PLA = ("PLA", "#000000", 10.0)
ON = "/rpc/Switch.Set?id=0&on=true"
OFF = "/rpc/Switch.Set?id=0&on=false"
IDLE_MIN = 0.01  # 0.6 s of rest and the printer is switched off (unless the queue holds it)


@dataclass
class Rig:
    plug: ShellyGen2Plug
    vp: VirtualPrinter
    manager: PrinterManager
    queue: Dispatcher
    power: PowerService
    tmp: Path

    @property
    def ctrl(self) -> PlugController:
        return self.power.controllers["p1s"]

    def link_state(self) -> str:
        return self.manager.get("p1s").state.view()["link"]["state"]

    def switched(self) -> tuple[int, int]:
        """(switch-on requests, switch-off requests) the plug has had."""
        return self.plug.requests.count(ON), self.plug.requests.count(OFF)

    async def add_job(self, **job: Any) -> int:
        made = make_3mf(self.tmp / "cube.gcode.3mf", plates=[PlateSpec(filaments=[BLACK_PLA])])
        data = made.path.read_bytes()
        temp = self.queue.temp_path()
        temp.write_bytes(data)
        qf, _ = await self.queue.register_file(
            temp,
            name="cube.gcode.3mf",
            kind="3mf",
            size=len(data),
            sha256=hashlib.sha256(data).hexdigest(),
            md5=hashlib.md5(data).hexdigest(),
            meta=read_3mf(made.path),
        )
        return (await self.queue.create_job(file_id=qf.id, **job))["id"]

    async def job(self, job_id: int) -> dict[str, Any]:
        return await self.queue.job_view(job_id)

    async def switched_off_and_offline(self) -> None:
        await eventually(lambda: self.ctrl.state.on is False, timeout=10, what="plug off")
        await eventually(lambda: self.link_state() == "offline", timeout=15, what="printer offline")


@pytest.fixture
async def rig_factory(tmp_path, broker, closed_port) -> AsyncIterator[Callable[..., Any]]:
    """The printer starts on and connected; its storage port refuses connections (every upload
    fails), so a job for it cannot start there."""
    made: list[tuple[Rig, Store, TaskSet]] = []

    async def make(**queue_kw: Any) -> Rig:
        plug = ShellyGen2Plug(on=True)
        await plug.start()
        vp = VirtualPrinter(
            broker.host, broker.port, SERIAL, ACCESS_CODE, "P1S", str(broker.ca_path),
            report_hz=5, time_scale=0.001, held=True,
        )  # fmt: skip
        await vp.start()

        async def mains(on: bool) -> None:
            if on:
                broker.start()
                await vp.start()
            else:
                await vp.stop()
                broker.kill()

        plug.on_switch = mains
        power = {"shelly": plug.url, "auto_off": {"idle_min": IDLE_MIN, "below_nozzle_c": 300}}
        printer = PrinterConfig(
            id="p1s", name="P1S", type="bambu", host=broker.host, serial=SERIAL, access_code=ACCESS_CODE,
            mqtt_port=broker.port, ftps_port=closed_port, power=parse_power(power),
        )  # fmt: skip
        config = Config(data_dir=tmp_path / "data", printers=(printer,))
        store = Store(config)
        await store.start()
        bus = EventBus()
        manager = PrinterManager(config, bus, store.pins)
        await manager.start()
        queue_kw.setdefault("retry_delays", (2.0, 2.0))
        queue = Dispatcher(config, QueueStore(store.db), manager, bus, **queue_kw)
        await queue.start()
        tasks = TaskSet("power-wake-test")
        watch = Watch(
            powered_on=lambda pid: manager.get(pid).reconnect_now(),
            held=lambda pid: queue.power_hold(pid),  # as the power component wires it
        )
        svc = PowerService(
            {"p1s": printer.power}, bus, EnergyConfig(), tasks, watch, tick_s=0.05, idle_poll_s=0.5
        )
        svc.start()
        rig = Rig(plug, vp, manager, queue, svc, tmp_path)
        made.append((rig, store, tasks))
        await eventually(lambda: rig.link_state() == "connected", what="printer connected")
        rig.ctrl.facts = PrinterFacts.from_view(manager.get("p1s").state.view())
        # Switched off (it is idle): the printer goes offline and the queue knows it is off.
        assert (await svc.switch("p1s", False)).on is False
        await rig.switched_off_and_offline()
        await queue.set_bed("p1s", True)
        await eventually(
            lambda: queue.readiness()[0]["reason"] == "switched off (switched on when a job needs it)",
            what="off in the queue",
        )
        return rig

    try:
        yield make
    finally:
        for rig, store, tasks in made:
            rig.plug.on_switch = None
            await rig.power.stop()
            await tasks.close()
            await rig.queue.stop()
            await rig.manager.stop()
            await rig.vp.stop()
            await store.stop()
            await rig.plug.stop()


async def test_a_job_that_cannot_start_on_the_woken_printer_does_not_cycle_its_power(rig_factory):
    rig = await rig_factory()
    job = await rig.add_job()
    # Switched on for the job; online, the upload fails, and again after each retry (2 s apart,
    # each longer than the 0.6 s of rest after which auto-off would switch it off).
    await eventually(lambda: rig.switched() == (1, 1), timeout=10, what="switched on for the job")
    await eventually(lambda: rig.link_state() == "connected", timeout=20, what="online again")

    async def failed_or_cycled() -> Any:
        if rig.switched() != (1, 1):
            return f"switched (on, off) {rig.switched()} times"
        j = await rig.job(job)
        return j if j["state"] == "failed" else None

    # Held on through all three attempts: one switch-on, no switch-off in between.
    j = await eventually(failed_or_cycled, timeout=30, what="the job failed")
    assert rig.switched() == (1, 1) and rig.ctrl.auto_offs == 0, j
    assert j["attempts"] == 3 and "(gave up after 3 attempts)" in j["last_error"]
    # Given up: auto-off switches it off after its minutes of rest, and nothing switches it on again.
    await rig.switched_off_and_offline()
    assert rig.switched() == (1, 2) and rig.ctrl.auto_offs == 1
    decision = await rig.queue.evaluate()
    assert decision.wake == {} and rig.queue.wakes.holds == {}
    assert rig.switched() == (1, 2)


async def test_a_woken_printer_is_not_switched_off_before_its_job_had_its_chance(rig_factory):
    # Uploads wait a long time between attempts: the printer rests for minutes of auto-off's rule.
    rig = await rig_factory(retry_delays=(3600.0, 3600.0))
    job = await rig.add_job()
    await eventually(lambda: rig.switched() == (1, 1), timeout=10, what="switched on for the job")
    j = await eventually(
        lambda: _waiting_to_retry(rig, job), timeout=30, what="the first upload failed, a retry waits"
    )
    assert j["attempts"] == 1
    # At rest, connected, cool: auto-off would switch it off now, but the queue holds it on.
    for _ in range(3):
        seen = rig.ctrl.checks
        await eventually(lambda s=seen: rig.ctrl.checks > s + 5, timeout=5, what="auto-off checks")
    assert rig.ctrl.timer is not None and rig.ctrl.timer.since is None
    assert rig.link_state() == "connected" and rig.switched() == (1, 1) and rig.ctrl.auto_offs == 0
    assert rig.queue.power_hold("p1s")
    # The job is removed: given up there. The printer is switched off after its rest, and stays off.
    await rig.queue.remove_job(job)
    await rig.switched_off_and_offline()
    assert rig.switched() == (1, 2) and not rig.queue.power_hold("p1s")
    assert (await rig.queue.evaluate()).wake == {} and rig.switched() == (1, 2)


async def _waiting_to_retry(rig: Rig, job_id: int) -> dict | None:
    j = await rig.job(job_id)
    return j if any(r.startswith("trying again in ") for r in j["reasons"]) else None


class Clock:
    """The dispatcher's wall clock, moved on by the test (retries and back-offs of minutes)."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


async def test_switched_off_by_hand_before_its_job_started_it_is_not_switched_on_again_at_once(
    rig_factory,
):
    clock = Clock()
    rig = await rig_factory(retry_delays=(60.0, 60.0), clock=clock)
    job = await rig.add_job()
    await eventually(lambda: rig.switched() == (1, 1), timeout=10, what="switched on for the job")
    await eventually(lambda: _waiting_to_retry(rig, job), timeout=30, what="a retry waits")
    # The user switches it off with the plug's own button; the next poll reads it back.
    await rig.plug.set_relay(False)
    await rig.switched_off_and_offline()
    assert rig.switched() == (1, 1)  # read back, not switched by bambu-edge
    # The retry's minute is over: the queue wants the printer again. But it was switched on for this
    # job once and went off before the job started there: not again for 15 minutes, and the job
    # says so.
    clock.now += 61
    decision = await rig.queue.evaluate()
    assert decision.wake == {"p1s": job} and rig.switched() == (1, 1)
    assert (
        "P1S: was switched on for this job and it did not start there; switched on again in 14 min"
        in (decision.reasons[job])
    )
    # The back-off is over: switched on for it again.
    clock.now += 14 * 60
    await rig.queue.evaluate()
    await eventually(lambda: rig.switched() == (2, 1), timeout=10, what="switched on again")
