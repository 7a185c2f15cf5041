"""Energy per print when the plug cannot be read at the print's end: the real history service and
power service in-process, a virtual P1S on mosquitto (its print driven by the test), and a Shelly
Gen2 plug on loopback that fails requests on demand. Power's clock (its ticks, its retries, the
plug's circuit breaker) is driven by the test: the minutes between retries pass at once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from bambu_edge.bus import EventBus
from bambu_edge.config import Config, PrinterConfig
from bambu_edge.jobs.history_service import HistoryService
from bambu_edge.jobs.records import PrintRecord
from bambu_edge.power.energy import END_RETRY_S, EnergyConfig
from bambu_edge.power.service import PlugController, PowerService, Watch
from bambu_edge.power.setting import parse_power
from bambu_edge.power.starts import EnergyStarts
from bambu_edge.printers.manager import PrinterManager
from bambu_edge.printers.virtual import VirtualPrinter
from bambu_edge.store.db import Store
from bambu_edge.tasks import TaskSet
from tests.conftest import ACCESS_CODE
from tests.integration.smart_plugs import ShellyGen2Plug
from tests.integration.waiting import eventually

pytestmark = pytest.mark.integration

SERIAL = "01P09C000000008"
ATTEMPTS = 3  # requests per reading (plug_http.ATTEMPTS): one failed reading opens the breaker


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Rig:
    plug: ShellyGen2Plug
    vp: VirtualPrinter
    store: Store
    history: HistoryService
    power: PowerService
    clock: Clock
    requests_at_end: int = 0

    @property
    def ctrl(self) -> PlugController:
        return self.power.controllers["p1s"]

    async def _open_record(self) -> PrintRecord | None:
        records = await self.history.repo.open_records()
        return records[0] if records else None

    async def _start_saved(self, uid: str) -> bool:
        row = await self.store.db.fetchone("SELECT 1 FROM power_energy_start WHERE record_uid = ?", (uid,))
        return row is not None

    async def print_and_end(self, fail_requests: int) -> PrintRecord:
        """A print whose start reading succeeds; the plug fails ``fail_requests`` requests from
        just before the print ends. The record, once power control has tried its end reading."""
        await self.vp.simulate_print("Benchy", duration_s=25, layers=60)
        rec = await eventually(self._open_record, what="the record opened")
        await eventually(lambda: self._start_saved(rec.uid), what="the counter read at the start")
        self.plug.fail_next = fail_requests
        self.requests_at_end = len(self.plug.requests)
        tried = self.ctrl.energy_measured + self.ctrl.energy_unknown + len(self.ctrl.pending)
        await self.vp.finish(steps=5)
        await eventually(
            lambda: self.ctrl.energy_measured + self.ctrl.energy_unknown + len(self.ctrl.pending) > tried,
            what="the end reading tried",
        )
        return rec

    async def energy(self, record_id: int) -> tuple[float | None, float | None]:
        rec = await self.history.repo.get(record_id)
        assert rec is not None and rec.outcome == "success"
        return rec.energy_kwh, rec.energy_cost

    async def tick(self, seconds: float) -> None:
        """Move power's clock on, and wait until its loop has looked at the printer since."""
        self.clock.now += seconds
        seen = self.ctrl.checks
        await eventually(lambda: self.ctrl.checks > seen + 1, timeout=5, what="a power tick")


@pytest.fixture
async def rig(tmp_path, broker) -> AsyncIterator[Rig]:
    plug = ShellyGen2Plug(on=True, watts=180.0, wh_per_s=50.0)
    await plug.start()
    vp = VirtualPrinter(
        broker.host, broker.port, SERIAL, ACCESS_CODE, "P1S", str(broker.ca_path),
        report_hz=5, held=True,
    )  # fmt: skip
    await vp.start()
    setting = parse_power({"shelly": plug.url, "auto_off": {"idle_min": 600}})  # checked, never due
    printer = PrinterConfig(
        id="p1s", name="P1S", type="bambu", host=broker.host, serial=SERIAL, access_code=ACCESS_CODE,
        mqtt_port=broker.port, power=setting,
    )  # fmt: skip
    config = Config(data_dir=tmp_path / "data", printers=(printer,))
    store = Store(config)
    await store.start()
    bus = EventBus()
    manager = PrinterManager(config, bus, store.pins)
    await manager.start()
    tasks = TaskSet("power-energy-test")
    history = HistoryService(store, manager, bus, tasks=tasks)
    await history.start()
    clock = Clock()
    power = PowerService(
        {"p1s": setting}, bus, EnergyConfig(0.30, "EUR"), tasks, Watch(history=lambda: history),
        starts=EnergyStarts(store.db), clock=clock, tick_s=0.05,
    )  # fmt: skip
    power.start()
    link = manager.get("p1s")
    await eventually(lambda: link.state.view()["print"]["state"] is not None, what="first report")
    try:
        yield Rig(plug, vp, store, history, power, clock)
    finally:
        await power.stop()
        await history.stop()
        await manager.stop()
        await tasks.close()
        await vp.stop()
        await store.stop()
        await plug.stop()


async def test_an_end_reading_that_failed_is_tried_again_and_fills_in_the_energy(rig: Rig):
    rec = await rig.print_and_end(fail_requests=ATTEMPTS)
    assert len(rig.ctrl.pending) == 1 and rig.plug.fail_next == 0
    assert not rig.ctrl.state.reachable
    assert await rig.energy(rec.id) == (None, None)  # not measured yet: unknown, never 0
    # Not before its pause (and the plug's breaker) is over.
    await rig.tick(END_RETRY_S[0] / 2)
    assert len(rig.ctrl.pending) == 1 and rig.ctrl.energy_measured == 0
    await rig.tick(60)  # the breaker waits 10 s (jitter: up to 12 s) after a failed reading
    await eventually(lambda: rig.ctrl.energy_measured == 1, timeout=5, what="energy measured")
    kwh, cost = await rig.energy(rec.id)
    assert kwh is not None and kwh > 0 and cost == pytest.approx(kwh * 0.30, abs=1e-3)
    assert rig.ctrl.pending == [] and rig.ctrl.energy_unknown == 0


async def test_a_plug_that_never_answers_leaves_the_energy_unknown_after_bounded_tries(rig: Rig):
    rec = await rig.print_and_end(fail_requests=10**6)
    (pending,) = rig.ctrl.pending
    assert pending.retry.failed == 1
    for failed in range(2, len(END_RETRY_S) + 1):
        # Each try waits for its pause and the breaker (doubling from 10 s, up to 5 min + jitter).
        await rig.tick(400)
        assert pending.retry.failed == failed and rig.ctrl.pending == [pending]
    await rig.tick(400)
    assert pending.retry.failed == len(END_RETRY_S) + 1
    assert rig.ctrl.energy_unknown == 1 and rig.ctrl.pending == [] and rig.ctrl.energy_measured == 0
    assert await rig.energy(rec.id) == (None, None)  # unknown: null, not 0 kWh
    # Bounded: the reading at the end and one per pause, each its few attempts; no other request.
    # Bounded: the reading at the end and one per pause, each its few attempts at most (fewer while
    # the breaker stays open after a failure); nothing more once given up.
    sent = len(rig.plug.requests) - rig.requests_at_end
    assert len(END_RETRY_S) + 1 <= sent <= ATTEMPTS * (len(END_RETRY_S) + 1)
    # Given up for good: the plug answering again later changes nothing.
    rig.plug.fail_next = 0
    await rig.tick(400)
    assert rig.ctrl.state.reachable and await rig.energy(rec.id) == (None, None)
    assert rig.ctrl.energy_unknown == 1 and rig.ctrl.energy_measured == 0 and rig.ctrl.pending == []
