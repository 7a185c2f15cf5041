"""Power control's pure parts: the power: setting, auto-off with a clock the test drives, the 409
rule, energy per print, and the plug's circuit breaker."""

from __future__ import annotations

import pytest

from bambu_edge.config import ConfigError, parse_config
from bambu_edge.power import energy
from bambu_edge.power.breaker import CircuitBreaker
from bambu_edge.power.rules import AutoOffTimer, PrinterFacts, refuse_off
from bambu_edge.power.setting import AutoOff, PowerSetting, PowerSettingError, parse_power
from bambu_edge.power.shelly import gen1_reading, gen2_reading, generation
from bambu_edge.power.tasmota import energy_reading, power_state

IDLE_COOL = PrinterFacts("connected", "FINISH", 35.0)


# --- the setting ----------------------------------------------------------------------------------


def test_the_three_kinds_of_switch():
    assert parse_power({"gpio": 17}) == PowerSetting("gpio", gpio=17, active_high=True)
    assert parse_power({"gpio": 4, "active_high": False, "auto_off": {"idle_min": 0.5}}) == PowerSetting(
        "gpio", gpio=4, active_high=False, auto_off=AutoOff(0.5, 50.0)
    )
    s = parse_power({"shelly": "http://192.168.1.50/", "password": "pw"})
    assert (s.kind, s.url, s.username, s.password) == ("shelly", "http://192.168.1.50", "admin", "pw")
    t = parse_power({"tasmota": "http://plug.lan", "auto_off": {"idle_min": 10, "below_nozzle_c": 45}})
    assert t.auto_off == AutoOff(10.0, 45.0) and "pw" not in repr(s)


@pytest.mark.parametrize(
    ("value", "key"),
    [
        ({"gpio": 17, "shelly": "http://a"}, ""),
        ({}, ""),
        ({"gpio": "17"}, "gpio"),
        ({"gpio": 17, "username": "x"}, "username"),
        ({"shelly": "ftp://a"}, "shelly"),
        ({"tasmota": "http://u:p@a"}, "tasmota"),
        ({"gpio": 17, "auto_off": {"idle_min": 0}}, "auto_off.idle_min"),
        ({"gpio": 17, "auto_off": {"idle_min": 5, "below_nozzle_c": -3}}, "auto_off.below_nozzle_c"),
        ({"gpio": 17, "auto_off": {"idle_min": 5, "after": 3}}, "auto_off.after"),
    ],
)
def test_bad_settings_name_the_key(value, key):
    with pytest.raises(PowerSettingError) as e:
        parse_power(value)
    assert e.value.key == key


def test_a_bad_power_setting_stops_the_config_with_file_line_and_key():
    text = "printers:\n  - id: p1\n    host: 10.0.0.9\n    serial: ABCDEF123\n    access_code: '1'\n    power:\n      gpio: 17\n      auto_off: {idle_min: -1}\n"
    with pytest.raises(ConfigError) as e:
        parse_config(text, "config.yaml")
    assert e.value.key == "printers[0].power.auto_off.idle_min" and e.value.line == 8
    ok = parse_config(text.replace("-1", "2.5"), "config.yaml")
    assert ok.printers[0].power.auto_off == AutoOff(2.5, 50.0)


# --- auto-off ---------------------------------------------------------------------------------------


def test_finished_cool_and_idle_for_the_set_minutes_switches_off():
    t = AutoOffTimer(AutoOff(idle_min=10, below_nozzle_c=50))
    assert not t.observe(IDLE_COOL, True, now=1000.0)
    assert not t.observe(IDLE_COOL, True, now=1000.0 + 599)
    assert t.due_in(1000.0 + 599) == pytest.approx(1.0)
    assert t.observe(IDLE_COOL, True, now=1000.0 + 600)


def test_fractions_of_a_minute():
    t = AutoOffTimer(AutoOff(idle_min=0.5))
    assert not t.observe(IDLE_COOL, True, 0.0)
    assert t.observe(IDLE_COOL, True, 30.0)


@pytest.mark.parametrize("state", ["RUNNING", "PAUSE", "PREPARE", "SLICING", None])
def test_never_while_printing_paused_or_unknown(state):
    t = AutoOffTimer(AutoOff(idle_min=1))
    for minute in range(0, 600):
        assert not t.observe(PrinterFacts("connected", state, 20.0), True, minute * 60.0)


def test_a_hot_nozzle_an_offline_link_or_a_new_print_starts_the_minutes_over():
    t = AutoOffTimer(AutoOff(idle_min=10, below_nozzle_c=50))
    t.observe(IDLE_COOL, True, 0.0)
    assert not t.observe(PrinterFacts("connected", "FINISH", 50.0), True, 500.0)  # not below 50
    assert not t.observe(IDLE_COOL, True, 700.0)  # counts from 700 now
    assert not t.observe(PrinterFacts("offline", "FINISH", 20.0), True, 800.0)
    assert not t.observe(IDLE_COOL, True, 900.0)
    assert not t.observe(PrinterFacts("connected", "RUNNING", 20.0), True, 1000.0)
    assert not t.observe(IDLE_COOL, True, 1100.0)
    assert not t.observe(IDLE_COOL, True, 1699.0)
    assert t.observe(IDLE_COOL, True, 1700.0)


def test_an_unknown_nozzle_temperature_or_a_switch_already_off_does_nothing():
    t = AutoOffTimer(AutoOff(idle_min=1))
    assert not any(t.observe(PrinterFacts("connected", "IDLE", None), True, s * 10.0) for s in range(100))
    assert not any(t.observe(IDLE_COOL, False, s * 10.0) for s in range(100))
    assert not any(t.observe(IDLE_COOL, None, s * 10.0) for s in range(100))


def test_a_switch_that_cannot_be_read_keeps_the_minutes_and_is_switched_off_once_it_answers():
    t = AutoOffTimer(AutoOff(idle_min=10))
    assert not t.observe(IDLE_COOL, True, 0.0)
    assert not t.observe(IDLE_COOL, None, 300.0)  # the plug does not answer
    assert not t.observe(IDLE_COOL, None, 3600.0)  # minutes up, but nothing is switched blind
    assert t.observe(IDLE_COOL, True, 3700.0)  # it answers "on": off now, not ten minutes on


def test_a_switch_found_off_starts_the_minutes_over_when_it_is_on_again():
    t = AutoOffTimer(AutoOff(idle_min=10))
    assert not t.observe(IDLE_COOL, True, 0.0)
    assert not t.observe(IDLE_COOL, False, 500.0)  # switched off at the plug
    assert not t.observe(IDLE_COOL, True, 700.0)  # and on again: counts from 700
    assert not t.observe(IDLE_COOL, True, 1299.0)
    assert t.observe(IDLE_COOL, True, 1300.0)


def test_switching_off_by_hand_needs_confirm_while_a_print_may_run():
    for state in ("RUNNING", "PAUSE", "PREPARE", None):
        facts = PrinterFacts("connected", state, 200.0)
        assert "confirm" in refuse_off(facts, confirm=False)
        assert refuse_off(facts, confirm=True) is None
    for state in ("IDLE", "FINISH", "FAILED"):
        assert refuse_off(PrinterFacts("connected", state, 200.0), confirm=False) is None
    assert refuse_off(PrinterFacts("offline", "RUNNING", 200.0), confirm=False) is None


def test_facts_from_a_printer_view():
    view = {
        "link": {"state": "connected"},
        "print": {"state": "FINISH"},
        "temps": {"nozzle": {"current": 41.5}},
    }
    assert PrinterFacts.from_view(view) == PrinterFacts("connected", "FINISH", 41.5)
    assert PrinterFacts.from_view({}) == PrinterFacts("offline", None, None)


# --- energy -----------------------------------------------------------------------------------------


def test_energy_between_two_counter_readings_and_its_cost():
    assert energy.used(1000.0, 1850.0, 0.30) == energy.Energy(0.85, 0.255)
    assert energy.used(1000.0, 1850.0, None) == energy.Energy(0.85, None)
    assert energy.used(None, 1850.0, 0.3) is None
    assert energy.used(1850.0, 10.0, 0.3) is None  # the counter was reset mid-print


def test_a_failed_end_reading_is_tried_again_after_each_pause_or_the_breaker_then_given_up():
    retry = energy.EndRetry((10.0, 30.0, 60.0))
    assert retry.after_failure(100.0) == 110.0
    assert retry.after_failure(110.0, breaker_wait_s=80.0) == 190.0  # the breaker is open longer
    assert retry.after_failure(190.0, breaker_wait_s=5.0) == 250.0
    assert retry.after_failure(250.0) is None and retry.failed == 4  # given up: energy unknown
    assert sum(energy.END_RETRY_S) <= 10 * 60  # what the printer draws idle meanwhile stays small


def test_energy_section():
    cfg = parse_config("energy: {price_per_kwh: 0.32, currency: EUR}\n", sections=[energy.ENERGY_SECTION])
    assert cfg.section("energy") == energy.EnergyConfig(0.32, "EUR")
    with pytest.raises(ConfigError, match="price_per_kwh"):
        parse_config("energy: {price_per_kwh: cheap}\n", sections=[energy.ENERGY_SECTION])


# --- the plugs' answers -------------------------------------------------------------------------------


def test_shelly_answers():
    assert generation({"type": "SHPLG-S", "mac": "A4CF12F4"}) == 1
    assert generation({"id": "shellyplugus-1", "gen": 2}) == 2
    assert generation({"gen": 3}) == 3
    g1 = gen1_reading({"relays": [{"ison": True}], "meters": [{"power": 120.5, "total": 6000}]})
    assert (g1.on, g1.watts, g1.energy_wh) == (True, 120.5, 100.0)  # 6000 watt-minutes = 100 Wh
    g2 = gen2_reading({"id": 0, "output": False, "apower": 0.0, "aenergy": {"total": 1234.5}})
    assert (g2.on, g2.watts, g2.energy_wh) == (False, 0.0, 1234.5)
    assert gen2_reading({"output": "yes", "apower": "x"}).on is None


def test_tasmota_answers():
    assert power_state({"POWER": "ON"}) is True and power_state({"POWER1": "OFF"}) is False
    assert power_state({"Command": "Unknown"}) is None
    r = energy_reading(True, {"StatusSNS": {"ENERGY": {"Total": 1.25, "Power": 87}}})
    assert (r.on, r.watts, r.energy_wh) == (True, 87.0, 1250.0)


# --- the breaker ---------------------------------------------------------------------------------


def test_the_breaker_leaves_a_dead_plug_alone_then_tries_again():
    now = [0.0]
    b = CircuitBreaker(threshold=3, clock=lambda: now[0])
    b.backoff.rng = lambda: 0.0  # no jitter: the first wait is the whole 10 s
    for _ in range(2):
        b.failure()
        assert b.allow()
    b.failure()
    assert not b.allow() and b.retry_in() == pytest.approx(10.0)
    now[0] = 10.0
    assert b.allow()  # one try
    b.failure()
    assert not b.allow() and b.retry_in() == pytest.approx(20.0)  # longer each time
    now[0] = 30.0
    b.success()
    assert b.allow() and b.failures == 0
