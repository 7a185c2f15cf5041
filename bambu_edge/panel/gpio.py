"""Opening the panel's gpiozero devices, with a plain message when there is no GPIO to open."""

from __future__ import annotations

import glob
import os
from typing import Any

from bambu_edge.component import ComponentError
from bambu_edge.panel.config import PanelConfig, RgbPins


def _gpiozero() -> Any:
    try:
        import gpiozero
    except ImportError:
        raise ComponentError("the Python package gpiozero is not installed") from None
    return gpiozero


def check_gpio() -> None:
    """Refuse early, in plain words, on a machine without a GPIO chip (unless a pin factory was
    chosen: gpiozero's mock factory in tests and demos, or GPIOZERO_PIN_FACTORY)."""
    gpiozero = _gpiozero()
    chosen = gpiozero.Device.pin_factory is not None or os.environ.get("GPIOZERO_PIN_FACTORY")
    if not chosen and not glob.glob("/dev/gpiochip*"):
        raise ComponentError(
            "no GPIO here (no /dev/gpiochip*): the button and LED need a Raspberry Pi's pins"
        )


def _opened(what: str, make: Any) -> Any:
    gpiozero = _gpiozero()
    try:
        return make()
    except gpiozero.BadPinFactory:
        raise ComponentError(
            f"cannot open the {what}: no GPIO library works here (on a Pi, install python3-lgpio)"
        ) from None
    except (gpiozero.GPIOZeroError, OSError) as e:
        raise ComponentError(f"cannot open the {what}: {e}") from None


def open_button(cfg: PanelConfig) -> Any:
    gpiozero = _gpiozero()
    # Pulled up: the button connects the pin to ground (GPIO 3 + GND also wakes a halted Pi).
    return _opened(
        f"button on GPIO {cfg.button_gpio}",
        lambda: gpiozero.Button(cfg.button_gpio, pull_up=True, bounce_time=0.05),
    )


def open_led(cfg: PanelConfig) -> Any:
    gpiozero = _gpiozero()
    pins = cfg.led_gpio
    if isinstance(pins, RgbPins):
        return _opened(
            f"RGB LED on GPIO {pins.red}/{pins.green}/{pins.blue}",
            lambda: gpiozero.RGBLED(
                pins.red, pins.green, pins.blue, active_high=cfg.led_active_high, pwm=False
            ),
        )
    return _opened(f"LED on GPIO {pins}", lambda: gpiozero.LED(pins, active_high=cfg.led_active_high))
