"""Power control at run time: one controller per printer with a ``power:`` setting.

Each controller talks to its switch one request at a time (its own lock) from its own task, so a
plug that hangs delays nobody else: its requests time out (plug_http.py) and it shows as
unreachable. The controllers hear the bus in the publisher's turn (printer views, history records,
the queue's wake requests) and never block it: anything that talks to a plug is a task.

* Poll: a metered plug every ``poll_s`` while a browser watches or the printer prints, every
  ``idle_poll_s`` otherwise (the queue needs to know which printers are off); a GPIO pin costs
  nothing to read. A change of state or watts is published as a ``power`` event.
* Auto-off (rules.py) is looked at on every tick, with the printer's newest view.
* Wake: the queue's ``power_wake`` request switches an off printer on; the dispatcher starts the job
  once the printer's link is connected and it reports ready (jobs/dispatch.py). Until that job has
  had its chance the queue holds the printer on (``Watch.held``, power/wakes.py: the one rule the
  wake and auto-off follow), and it does not switch the same printer on for the same job again
  before a back-off, so a job that cannot start there never cycles it off and on. Whenever a switch is
  seen going on, the printer's link is told to connect at once (``Watch.powered_on``), not after the
  reconnect backoff its failures while the printer was off have earned.
* Energy: the plug's counter is read when a print's record opens and when it ends; the difference
  (and its cost) goes on the record (HistoryService.set_energy). The start reading is also kept in
  the database (starts.py): after a restart mid-print it is the one used. An end reading that fails
  (a plug that times out, a dead one) is tried again from the plug's loop a few times, minutes apart
  and never while its circuit breaker is open (energy.EndRetry); if it never succeeds the record's
  energy stays unknown (null, not 0 kWh).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from bambu_edge.bus import Event, EventBus, Listener
from bambu_edge.power import energy
from bambu_edge.power.breaker import CircuitBreaker
from bambu_edge.power.driver import PowerDriver, Reading
from bambu_edge.power.energy import END_RETRY_S, EndRetry, EnergyConfig
from bambu_edge.power.events import POWER_EVENT, WAKE_EVENT, PowerState
from bambu_edge.power.gpio import GpioRelay
from bambu_edge.power.plug_http import PlugError, PlugHttp
from bambu_edge.power.rules import UNKNOWN, AutoOffTimer, PrinterFacts
from bambu_edge.power.setting import PowerSetting
from bambu_edge.power.shelly import ShellyPlug
from bambu_edge.power.starts import EnergyStarts
from bambu_edge.power.tasmota import TasmotaPlug
from bambu_edge.printers.bambu.protocol import ACTIVE_PRINT_STATES
from bambu_edge.printers.base import PRINTER_EVENT, PrinterUpdate, printer_logger
from bambu_edge.tasks import TaskSet

log = logging.getLogger(__name__)

API_DEADLINE_S = 9.0  # GET/POST .../power answer within 10 s, whatever the plug does
POLL_S = 10.0
IDLE_POLL_S = 60.0
TICK_S = 5.0
HISTORY_EVENT = "history"  # jobs/history_service.py (not imported: the history is optional)


def make_driver(
    setting: PowerSetting, pin_factory: Any = None, breaker: CircuitBreaker | None = None
) -> PowerDriver:
    """The driver for ``setting``; a GPIO pin is claimed here (gpiozero raises without a chip)."""
    if setting.kind == "gpio":
        assert setting.gpio is not None
        return GpioRelay(setting.gpio, setting.active_high, pin_factory)
    assert setting.url is not None
    http = PlugHttp(setting.url, username=setting.username, password=setting.password, breaker=breaker)
    return ShellyPlug(http) if setting.kind == "shelly" else TasmotaPlug(http)


# The view sections PrinterFacts.from_view reads (power/rules.py).
FACT_SECTIONS = frozenset({"link", "temps", "print"})


@dataclass
class PendingEnergy:
    """A print whose end counter could not be read yet."""

    record: Any
    start_wh: float
    retry: EndRetry
    next_at: float


@dataclass
class Watch:
    """What the service needs to know from the rest of the daemon, as callables (no imports)."""

    browsers: Callable[[], int] = lambda: 0  # WebSocket clients connected
    history: Callable[[], Any] = lambda: None  # the HistoryService, if running
    # The printer's mains just came on: its link should try now, not after its reconnect backoff.
    powered_on: Callable[[str], None] = lambda printer_id: None
    # The queue holds the printer on (power/wakes.py): auto-off waits.
    held: Callable[[str], bool] = lambda printer_id: False


class PlugController:
    def __init__(
        self,
        printer_id: str,
        setting: PowerSetting,
        driver: PowerDriver | None,
        open_error: str | None,
        publish: Callable[[str, PowerState], None],
        clock: Callable[[], float],
        powered_on: Callable[[str], None] = lambda printer_id: None,
        breaker: CircuitBreaker | None = None,
    ):
        self.printer_id = printer_id
        self.setting = setting
        self.driver = driver
        self.breaker = breaker  # a plug's (a GPIO relay has none)
        self.publish = publish
        self.clock = clock
        self.powered_on = powered_on
        self.log = printer_logger(__name__, printer_id)
        self.lock = asyncio.Lock()
        self.state = PowerState(setting.kind, None, None, False, open_error or "not read yet")
        self.energy_wh: float | None = None
        self.read_at = -float("inf")
        self.facts: PrinterFacts = UNKNOWN
        self.timer = AutoOffTimer(setting.auto_off) if setting.auto_off else None
        self.waking: asyncio.Task[Any] | None = None
        # Auto-off evaluations, and how many of them switched off: what the rule has looked at
        # can be told from what it has not seen yet (the tests wait on these, not on time).
        self.checks = 0
        self.auto_offs = 0
        self.pending: list[PendingEnergy] = []  # prints whose end counter is still to be read
        self.energy_measured = 0  # records given their energy
        self.energy_unknown = 0  # records left without (the plug could not be read)

    def _set(self, state: PowerState) -> PowerState:
        before = self.state
        self.state = state
        if state != before:
            if state.reachable != before.reachable or state.error != before.error:
                if state.reachable:
                    self.log.info("power switch reachable (%s)", "on" if state.on else "off")
                else:
                    self.log.warning("power switch unreachable: %s", state.error)
            self.publish(self.printer_id, state)
        if before.on is False and state.on is True:  # switched on, here or at the plug's button
            self._powered_on()
        return state

    def _powered_on(self) -> None:
        try:
            self.powered_on(self.printer_id)
        except Exception:
            self.log.exception("power: telling the printer's link failed")

    def _reading(self, r: Reading) -> PowerState:
        self.energy_wh = r.energy_wh
        watts = None if r.watts is None else round(r.watts, 1)
        return self._set(PowerState(self.setting.kind, r.on, watts, True, None))

    def _failed(self, error: str) -> PowerState:
        return self._set(PowerState(self.setting.kind, None, None, False, error))

    async def _do(self, call: Callable[[PowerDriver], Awaitable[Reading]]) -> PowerState:
        if self.driver is None:
            return self.state
        async with self.lock:
            try:
                reading = await call(self.driver)
            except PlugError as e:
                return self._failed(str(e))
            except OSError as e:  # a GPIO line that went away
                return self._failed(f"GPIO error: {e}")
            finally:
                self.read_at = self.clock()
            return self._reading(reading)

    async def refresh(self) -> PowerState:
        if self.lock.locked():
            # A request is under way (a poll, a switch): its answer is as fresh as a new one.
            async with self.lock:
                return self.state
        return await self._do(lambda d: d.read())

    async def switch(self, on: bool) -> PowerState:
        self.log.info("switching power %s", "on" if on else "off")
        was = self.state.on
        state = await self._do(lambda d: d.switch(on))
        if on and state.on is True and was is None:  # from unknown (unreachable): _set could not tell
            self._powered_on()
        if self.timer is not None:
            self.timer.since = None
        return state

    async def close(self) -> None:
        if self.driver is not None:
            await self.driver.close()


class PowerService:
    def __init__(
        self,
        printers: Mapping[str, PowerSetting],
        bus: EventBus,
        energy_config: EnergyConfig,
        tasks: TaskSet,
        watch: Watch | None = None,
        *,
        starts: EnergyStarts | None = None,  # None: start readings are kept in memory only
        pin_factory: Any = None,
        clock: Callable[[], float] = time.monotonic,
        poll_s: float = POLL_S,
        idle_poll_s: float = IDLE_POLL_S,
        tick_s: float = TICK_S,
        end_retry_s: tuple[float, ...] = END_RETRY_S,
    ):
        self.settings = dict(printers)
        self.bus = bus
        self.energy = energy_config
        self.tasks = tasks
        self.watch = watch or Watch()
        self.starts = starts
        self.pin_factory = pin_factory
        self.clock = clock
        self.poll_s, self.idle_poll_s, self.tick_s = poll_s, idle_poll_s, tick_s
        self.end_retry_s = end_retry_s
        self.controllers: dict[str, PlugController] = {}
        self._listener: Listener | None = None
        self._energy_starts: dict[str, asyncio.Task[float | None]] = {}  # record uid -> counter at start
        self._ending: set[str] = set()  # records whose energy is being worked out ("ended" may repeat)
        self._wakes: dict[str, asyncio.Event] = {}
        self._loops: list[asyncio.Task[None]] = []

    # --- lifecycle -----------------------------------------------------------------------------------

    def start(self) -> None:
        for pid, setting in self.settings.items():
            driver, error = None, None
            breaker = None if setting.kind == "gpio" else CircuitBreaker(clock=self.clock)
            try:
                driver = make_driver(setting, self.pin_factory, breaker)
            except Exception as e:  # gpiozero: no pin factory / GPIO chip, pin in use...
                error = f"GPIO {setting.gpio} cannot be used: {e}"
                log.error("power: printer %s: %s", pid, error)
            self.controllers[pid] = PlugController(
                pid, setting, driver, error, self._publish, self.clock, self.watch.powered_on, breaker
            )
        self._listener = self.bus.listen(PRINTER_EVENT, HISTORY_EVENT, WAKE_EVENT, callback=self._on_event)
        for ctrl in self.controllers.values():
            if ctrl.driver is not None:
                self._wakes[ctrl.printer_id] = asyncio.Event()
                self._loops.append(self.tasks.spawn(self._loop(ctrl), name=f"power-{ctrl.printer_id}"))

    async def stop(self) -> None:
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        loops, self._loops = self._loops, []
        await self.tasks.cancel(loops)  # before the plugs' sessions close under them
        for ctrl in self.controllers.values():
            with contextlib.suppress(Exception):
                await ctrl.close()

    @property
    def failures(self) -> dict[str, str]:
        """Printers whose switch could not even be opened (a GPIO pin without a chip)."""
        return {pid: c.state.error or "" for pid, c in self.controllers.items() if c.driver is None}

    def _publish(self, printer_id: str, state: PowerState) -> None:
        self.bus.publish(Event(POWER_EVENT, printer_id, state))

    # --- the per-plug loop ---------------------------------------------------------------------------

    def _poll_every(self, ctrl: PlugController) -> float:
        if ctrl.setting.kind == "gpio":
            return self.tick_s
        printing = ctrl.facts.gcode_state in ACTIVE_PRINT_STATES
        return self.poll_s if printing or self.watch.browsers() > 0 else self.idle_poll_s

    async def _loop(self, ctrl: PlugController) -> None:
        wake = self._wakes[ctrl.printer_id]
        while True:
            try:
                await self._retry_energy(ctrl)  # first: its reading serves as this tick's poll
                if self.clock() - ctrl.read_at >= self._poll_every(ctrl):
                    await ctrl.refresh()
                await self._auto_off(ctrl)
            except Exception:  # a bug must not end power control for this printer
                ctrl.log.exception("power: check failed")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.tick_s):
                    await wake.wait()
            wake.clear()

    async def _auto_off(self, ctrl: PlugController) -> None:
        if ctrl.timer is None:
            return
        held = self.watch.held(ctrl.printer_id)
        off = ctrl.timer.observe(ctrl.facts, ctrl.state.on, self.clock(), held)
        ctrl.checks += 1
        if off:
            ctrl.auto_offs += 1
            rule = ctrl.timer.rule
            ctrl.log.info(
                "switching off: idle %g min with the nozzle below %g °C", rule.idle_min, rule.below_nozzle_c
            )
            await ctrl.switch(False)

    # --- bus -----------------------------------------------------------------------------------------

    def _on_event(self, event: Event) -> None:
        ctrl = self.controllers.get(event.printer_id or "")
        if ctrl is None:
            return
        if event.kind == PRINTER_EVENT:
            update: PrinterUpdate = event.data
            if FACT_SECTIONS.isdisjoint(update.changes):
                return  # fans, AMS, Wi-Fi: nothing the power rules read
            before = ctrl.facts
            ctrl.facts = PrinterFacts.from_view(update.view)
            if ctrl.timer is not None and ctrl.facts != before:
                self._wakes.get(ctrl.printer_id, asyncio.Event()).set()
        elif event.kind == WAKE_EVENT:
            self._wake(ctrl)
        elif event.kind == HISTORY_EVENT:
            self._on_history(ctrl, event.data)

    def _wake(self, ctrl: PlugController) -> None:
        if ctrl.driver is None or ctrl.state.on is True or (ctrl.waking and not ctrl.waking.done()):
            return
        ctrl.log.info("the queue has a job for this printer: switching it on")
        ctrl.waking = self.tasks.spawn(ctrl.switch(True), name=f"power-wake-{ctrl.printer_id}")

    # --- energy per print ----------------------------------------------------------------------------

    def _on_history(self, ctrl: PlugController, change: Any) -> None:
        action, record = getattr(change, "action", None), getattr(change, "record", None)
        if record is None or ctrl.driver is None or ctrl.setting.kind == "gpio":
            return
        if action == "started" and record.uid not in self._energy_starts:
            self._energy_starts[record.uid] = self.tasks.spawn(
                self._start_reading(ctrl, record.uid), name=f"power-energy-{ctrl.printer_id}"
            )
        elif action == "ended" and record.uid not in self._ending:
            start = self._energy_starts.pop(record.uid, None)
            if start is None and self.starts is None:
                return  # not seen starting, and nothing kept from before a restart
            self._ending.add(record.uid)
            self.tasks.spawn(self._record_energy(ctrl, record, start), name=f"power-energy-{ctrl.printer_id}")

    async def _counter(self, ctrl: PlugController) -> float | None:
        state = await ctrl.refresh()
        return ctrl.energy_wh if state.reachable else None

    async def _start_reading(self, ctrl: PlugController, uid: str) -> float | None:
        start_wh = await self._counter(ctrl)
        if start_wh is not None and self.starts is not None:
            try:
                await self.starts.save(uid, start_wh)
            except sqlite3.Error as e:  # kept in memory still: only a restart would lose it
                ctrl.log.warning("power: the energy reading at the print's start was not saved: %s", e)
        return start_wh

    async def _saved_start(self, ctrl: PlugController, uid: str) -> float | None:
        if self.starts is None:
            return None
        try:
            return await self.starts.take(uid)
        except sqlite3.Error as e:
            ctrl.log.warning("power: the saved energy reading could not be read: %s", e)
            return None

    async def _record_energy(
        self, ctrl: PlugController, record: Any, start: asyncio.Task[float | None] | None
    ) -> None:
        try:
            in_memory = None if start is None else await start
            saved = await self._saved_start(ctrl, record.uid)  # taken either way: the row is done
            if start is None and saved is None:
                return  # a print power control never saw start (or one from before energy was kept)
            await self._measure(ctrl, record, in_memory if in_memory is not None else saved)
        finally:
            self._ending.discard(record.uid)

    async def _measure(self, ctrl: PlugController, record: Any, start_wh: float | None) -> None:
        if start_wh is None:
            ctrl.log.info(
                "no energy measured for print %s: no reading at its start", record.job or record.uid
            )
            return
        end_wh = await self._counter(ctrl)
        if end_wh is None:
            self._read_later(ctrl, PendingEnergy(record, start_wh, EndRetry(self.end_retry_s), 0.0))
            return
        await self._store_energy(ctrl, record, start_wh, end_wh)

    def _read_later(self, ctrl: PlugController, p: PendingEnergy) -> None:
        """The end reading failed (again): try later, or give up and leave the energy unknown."""
        breaker_wait = ctrl.breaker.retry_in() if ctrl.breaker is not None else 0.0
        next_at = p.retry.after_failure(self.clock(), breaker_wait)
        name = p.record.job or p.record.uid
        if next_at is None:
            ctrl.energy_unknown += 1
            ctrl.log.warning(
                "energy of print %s unknown: the plug could not be read at its end (%d tries: %s)",
                name,
                p.retry.failed,
                ctrl.state.error,
            )
            return
        p.next_at = next_at
        ctrl.pending.append(p)
        ctrl.log.info(
            "the plug could not be read at the end of print %s (%s): trying again in %.0f s",
            name,
            ctrl.state.error,
            next_at - self.clock(),
        )

    async def _retry_energy(self, ctrl: PlugController) -> None:
        due = [p for p in ctrl.pending if self.clock() >= p.next_at]
        for p in due:
            ctrl.pending.remove(p)
            end_wh = await self._counter(ctrl)
            if end_wh is None:
                self._read_later(ctrl, p)
            else:
                await self._store_energy(ctrl, p.record, p.start_wh, end_wh)

    async def _store_energy(self, ctrl: PlugController, record: Any, start_wh: float, end_wh: float) -> None:
        used = energy.used(start_wh, end_wh, self.energy.price_per_kwh)
        history = self.watch.history()
        if used is None or history is None or record.id is None:
            ctrl.energy_unknown += 1
            ctrl.log.info("no energy measured for print %s", record.job or record.uid)
            return
        await history.set_energy(record.id, used.kwh, used.cost)
        ctrl.energy_measured += 1
        ctrl.log.info("print %s used %.3f kWh", record.job or record.uid, used.kwh)

    # --- what the API calls --------------------------------------------------------------------------

    async def read(self, printer_id: str) -> PowerState:
        ctrl = self.controllers[printer_id]
        try:
            async with asyncio.timeout(API_DEADLINE_S):
                return await ctrl.refresh()
        except TimeoutError:
            return ctrl._failed(f"no answer within {API_DEADLINE_S:g} s")

    async def switch(self, printer_id: str, on: bool) -> PowerState:
        ctrl = self.controllers[printer_id]
        try:
            async with asyncio.timeout(API_DEADLINE_S):
                return await ctrl.switch(on)
        except TimeoutError:
            return ctrl._failed(f"no answer within {API_DEADLINE_S:g} s")
