"""A relay on a GPIO pin (gpiozero ``OutputDevice``), active high or low. The pin is the state:
reachable as long as the pin could be claimed; no meter."""

from __future__ import annotations

import warnings
from typing import Any

from bambu_edge.power.driver import Reading


class GpioRelay:
    kind = "gpio"

    def __init__(self, pin: int, active_high: bool = True, pin_factory: Any = None):
        # Imported here: a unit without any GPIO relay does not load gpiozero.
        from gpiozero import OutputDevice, PinFactoryFallback

        with warnings.catch_warnings():
            # Each factory gpiozero tries in turn warns; the error at the end says all that matters.
            warnings.simplefilter("ignore", PinFactoryFallback)
            # initial_value=None: a restart of the daemon leaves a printing printer as it is.
            self.device = OutputDevice(
                pin, active_high=active_high, initial_value=None, pin_factory=pin_factory
            )

    async def read(self) -> Reading:
        return Reading(on=bool(self.device.value))

    async def switch(self, on: bool) -> Reading:
        if on:
            self.device.on()
        else:
            self.device.off()
        return await self.read()

    async def close(self) -> None:
        self.device.close()
