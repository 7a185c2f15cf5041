"""What a print does over simulated time: heaters settling towards their targets, a job's progress
through preparing and printing at the speed profile's pace."""

from __future__ import annotations

import math
from dataclasses import dataclass

from bambu_edge.printers.bambu.protocol import FINISH, PREPARE, RUNNING


@dataclass
class Heater:
    current: float
    target: float
    ambient: float
    tau_heat_s: float
    tau_cool_s: float

    def step(self, dt: float) -> None:
        goal = max(self.target, self.ambient)
        tau = self.tau_heat_s if goal > self.current else self.tau_cool_s
        self.current += (goal - self.current) * (1.0 - math.exp(-dt / max(tau, 1e-3)))


@dataclass
class PrintJob:
    """One simulated print. ``work_s`` counts seconds at 100 % speed; ``duration_s`` includes preparing."""

    name: str
    duration_s: float
    layers: int
    gcode_file: str
    nozzle_target: float
    bed_target: float
    prepare_s: float
    work_s: float = 0.0
    state: str = PREPARE

    @classmethod
    def new(
        cls, name: str, duration_s: float, layers: int, gcode_file: str, nozzle: float, bed: float
    ) -> PrintJob:
        """Preparing (heating, levelling) takes a tenth of the print, between 0.05 s and a minute."""
        duration_s = max(float(duration_s), 0.1)
        prepare_s = min(max(duration_s * 0.1, 0.05), 60.0)
        return cls(name, duration_s, max(int(layers), 1), gcode_file, nozzle, bed, prepare_s)

    def advance(self, dt: float, speed_pct: float) -> None:
        if self.state == PREPARE:
            self.work_s += dt  # heating and levelling do not speed up with the speed profile
            if self.work_s >= self.prepare_s:
                self.state = RUNNING
        elif self.state == RUNNING:
            self.work_s += dt * speed_pct / 100.0
            if self.work_s >= self.duration_s:
                self.work_s = self.duration_s
                self.state = FINISH

    def seconds_left(self, speed_pct: float) -> float:
        """Simulated seconds until it finishes at this speed (preparing at its own pace)."""
        if self.state == FINISH:
            return 0.0
        preparing = max(self.prepare_s - self.work_s, 0.0)
        printing = self.duration_s - max(self.work_s, self.prepare_s)
        return preparing + max(printing, 0.0) * 100.0 / speed_pct

    @property
    def fraction(self) -> float:
        printing = max(self.duration_s - self.prepare_s, 1e-6)
        return min(max((self.work_s - self.prepare_s) / printing, 0.0), 1.0)

    def percent(self) -> int:
        return 100 if self.state == FINISH else min(int(self.fraction * 100), 99)

    def layer(self) -> int:
        if self.state == FINISH:
            return self.layers
        if self.state == PREPARE or self.work_s < self.prepare_s:
            return 0
        return min(max(math.ceil(self.fraction * self.layers), 1), self.layers)

    def remaining_min(self, speed_pct: float) -> int:
        if self.state == FINISH:
            return 0
        left = max(self.duration_s - max(self.work_s, self.prepare_s), 0.0)
        return math.ceil(left / (speed_pct / 100.0) / 60.0)
