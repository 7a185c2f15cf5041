"""The panel's pure parts: its config section, the state the LED shows for what the printers do,
acknowledging alerts, and how long a hold must be for each action."""

from __future__ import annotations

from typing import Any

import pytest

from bambu_edge.config import ConfigError, parse_config
from bambu_edge.panel.button import classify_press
from bambu_edge.panel.config import PANEL_SECTION, PanelConfig, RgbPins
from bambu_edge.panel.patterns import PATTERNS, PanelModel, status_pattern


def _panel(text: str) -> PanelConfig | None:
    return parse_config(text, "c.yaml", env={}, sections=[PANEL_SECTION]).section("panel")


def test_panel_config_single_rgb_and_null() -> None:
    assert _panel("panel: null") is None
    assert _panel("data_dir: /tmp/x") is None
    assert _panel("panel: {button_gpio: 3, led_gpio: 18}") == PanelConfig(button_gpio=3, led_gpio=18)
    rgb = _panel("panel: {button_gpio: 3, led_gpio: {red: 17, green: 27, blue: 22}, shutdown_hold: false}")
    assert rgb == PanelConfig(button_gpio=3, led_gpio=RgbPins(17, 27, 22), shutdown_hold=False)
    assert rgb.shutdown_hold_s == 3.0 and rgb.setup_hold_s == 10.0


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("panel: {button_gpio: 99}", "c.yaml:1: panel.button_gpio: must be from 0 to 63"),
        ("panel: {led_gpio: {red: 17, green: 27}}", "panel.led_gpio.blue: is required"),
        ("panel:\n  button_gpio: 3\n  led_gpio: 3\n", "a GPIO pin is used twice"),
        (
            "panel: {button_gpio: 3, setup_hold_s: 2}",
            "panel.setup_hold_s: must be longer than shutdown_hold_s",
        ),
        ("panel: {button_gpio: 3, blink: true}", "panel.blink: unknown key"),
        ("panel: {shutdown_hold: true}", "name button_gpio, led_gpio or both"),
    ],
)
def test_bad_panel_config_names_the_key(text: str, where: str) -> None:
    with pytest.raises(ConfigError) as e:
        _panel(text)
    assert where in str(e.value)


def view(
    link: str = "connected", state: str | None = "IDLE", hms: list[Any] | None = None, job: str = "cube"
) -> dict:
    return {"link": {"state": link}, "print": {"state": state, "job": job}, "hms": hms or []}


def test_starting_until_every_link_has_settled() -> None:
    m = PanelModel()
    assert m.summary().state == "ok"  # no printers: nothing to wait for
    m.update_view("a", view(link="connecting", state=None))
    m.update_view("b", view())
    assert m.summary().state == "starting"
    m.update_view("a", view())
    assert m.summary().state == "ok"


def test_printing_attention_and_error_by_priority() -> None:
    m = PanelModel()
    m.update_view("a", view(state="RUNNING"))
    m.update_view("b", view())
    assert m.summary().state == "printing"
    m.update_view("b", view(state="FINISH"))
    assert m.summary().state == "attention"  # the bed on b wants clearing
    m.update_view("b", view(state="FINISH", hms=[{"code": "0300_0100_0001_0007", "severity": "fatal"}]))
    assert m.summary().state == "error"
    m.update_view("b", view(state="FINISH", hms=[{"code": "0300_0100_0003_0008", "severity": "common"}]))
    assert m.summary().state == "attention"  # a mere notice is not an error


@pytest.mark.parametrize("link", ["offline", "auth_failed", "tls_mismatch"])
def test_an_unreachable_printer_is_an_error(link: str) -> None:
    m = PanelModel()
    m.update_view("a", view(link=link, state=None))
    m.update_view("b", view(state="RUNNING"))
    s = m.summary()
    assert s.state == "error" and s.alerts == {f"a:link:{link}"} and s.connected == 1


def test_a_failed_print_is_an_error_and_a_paused_one_wants_attention() -> None:
    m = PanelModel()
    m.update_view("a", view(state="FAILED"))
    assert m.summary().state == "error"
    m.update_view("a", view(state="PAUSE"))
    assert m.summary().state == "attention"


def test_the_queue_marking_the_bed_clear_ends_the_attention() -> None:
    m = PanelModel()
    m.update_view("a", view(state="FINISH"))
    m.set_bed("a", False)
    assert m.summary().state == "attention"
    m.set_bed("a", True)
    assert m.summary().state == "ok"


def test_a_short_press_acknowledges_until_the_alert_clears_and_comes_back() -> None:
    m = PanelModel()
    m.update_view("a", view(state="FINISH", job="cube"))
    assert m.acknowledge() is True
    assert m.summary().state == "ok" and m.summary().alerts == frozenset()
    assert m.acknowledge() is False  # nothing new: the press shows status instead
    m.update_view("a", view(state="FAILED", job="cube"))  # a new alert shows at once
    assert m.summary().state == "error"
    m.acknowledge()
    m.update_view("a", view(state="RUNNING", job="vase"))
    assert m.summary().state == "printing"
    m.update_view("a", view(state="FAILED", job="cube"))  # cleared, then back: shown again
    assert m.summary().state == "error"


def test_a_removed_printer_no_longer_counts() -> None:
    m = PanelModel()
    m.update_view("a", view(link="offline", state=None))
    m.remove("a")
    assert m.summary().state == "ok"


def test_untrusted_views_do_not_break_the_fold() -> None:
    m = PanelModel()
    m.update_view("a", {"link": "up", "print": None, "hms": "many"})
    m.update_view(
        "b", {"link": {"state": "connected"}, "print": {"state": 7}, "hms": [None, {"severity": 3}]}
    )
    assert m.summary().state == "starting"  # a's link is unknown: not settled


def test_every_pattern_blinks_so_a_frozen_loop_shows() -> None:
    for p in PATTERNS.values():
        assert {lit for lit, _ in p.steps} == {True, False}, p.name
        assert 0 < p.period_s <= 3.0, p.name
    names = ("starting", "ok", "printing", "attention", "error")
    assert len({(PATTERNS[n].color, PATTERNS[n].steps) for n in names}) == 5  # all distinct
    assert PATTERNS["error"].to_json()["color"] == "#ff0000"
    assert PATTERNS["ok"].to_json() == {
        "pattern": "ok",
        "color": "#00ff00",
        "steps": [[True, 2.85], [False, 0.15]],
    }


def test_status_press_blinks_once_per_connected_printer() -> None:
    p = status_pattern(PATTERNS["printing"], 3)
    assert sum(1 for lit, _ in p.steps if lit) == 3 and p.color == PATTERNS["printing"].color


@pytest.mark.parametrize(
    ("held", "enabled", "want"),
    [
        (0.5, True, "short"),
        (2.99, True, "short"),
        (3.0, True, "shutdown"),
        (9.9, True, "shutdown"),
        (10.0, True, "setup"),
        (5.0, False, "short"),
        (12.0, False, "setup"),
    ],
)
def test_hold_length_picks_the_action(held: float, enabled: bool, want: str) -> None:
    assert classify_press(held, 3.0, 10.0, enabled) == want
