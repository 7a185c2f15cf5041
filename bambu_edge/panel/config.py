"""The ``panel`` config section (DESIGN §3): ``null``, or the button's and the LED's GPIO pins.

``panel: {button_gpio: 3, led_gpio: 18}`` or ``led_gpio: {red: 17, green: 27, blue: 22}``; either
pin may be left out. The hold times and whether the 3 s hold may power the Pi off are settable.
"""

from __future__ import annotations

from dataclasses import dataclass

from bambu_edge.config import ConfigNode, SectionSpec

MAX_GPIO = 63  # BCM numbering: a Pi has 28 usable pins, the CM4/CM5 a few more


@dataclass(frozen=True)
class RgbPins:
    red: int
    green: int
    blue: int


@dataclass(frozen=True)
class PanelConfig:
    button_gpio: int | None = None
    led_gpio: int | RgbPins | None = None
    led_active_high: bool = True  # False: the LED's cathode is on the pin (lit when the pin is low)
    shutdown_hold: bool = True  # a hold of shutdown_hold_s powers the Pi off
    shutdown_hold_s: float = 3.0
    setup_hold_s: float = 10.0  # a hold this long reopens the web setup (forgotten password)


def _seconds(s, key: str, default: float) -> float:
    v = s.data.get(key, default)
    if isinstance(v, bool) or not isinstance(v, int | float) or not 0.1 <= v <= 60:
        raise s.err(key, "must be a number of seconds from 0.1 to 60")
    return float(v)


def parse_panel(node: ConfigNode) -> PanelConfig | None:
    if node.value is None:
        return None
    s = node.mapping(
        {"button_gpio", "led_gpio", "led_active_high", "shutdown_hold", "shutdown_hold_s", "setup_hold_s"}
    )
    button = s.int("button_gpio", None, lo=0, hi=MAX_GPIO, nullable=True)
    led: int | RgbPins | None
    if isinstance(s.data.get("led_gpio"), dict):
        rgb = s.node("led_gpio").mapping({"red", "green", "blue"})
        pins = {c: rgb.int(c, None, lo=0, hi=MAX_GPIO) for c in ("red", "green", "blue")}
        for colour, pin in pins.items():
            if pin is None:
                raise rgb.err(colour, "is required: an RGB LED names all three pins")
        led = RgbPins(**pins)  # type: ignore[arg-type]
    else:
        led = s.int("led_gpio", None, lo=0, hi=MAX_GPIO, nullable=True)
    if button is None and led is None:
        raise node.error("name button_gpio, led_gpio or both (or write panel: null)")
    used = [button] if button is not None else []
    used += [led.red, led.green, led.blue] if isinstance(led, RgbPins) else ([led] if led is not None else [])
    if len(set(used)) != len(used):
        raise node.error(f"a GPIO pin is used twice: {used}")
    shutdown_s = _seconds(s, "shutdown_hold_s", 3.0)
    setup_s = _seconds(s, "setup_hold_s", 10.0)
    if setup_s <= shutdown_s:
        raise s.err("setup_hold_s", f"must be longer than shutdown_hold_s ({shutdown_s:g} s)")
    return PanelConfig(
        button_gpio=button,
        led_gpio=led,
        led_active_high=s.bool("led_active_high", True),
        shutdown_hold=s.bool("shutdown_hold", True),
        shutdown_hold_s=shutdown_s,
        setup_hold_s=setup_s,
    )


PANEL_SECTION = SectionSpec("panel", parse_panel)
