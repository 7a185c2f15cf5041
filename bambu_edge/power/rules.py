"""When power control acts on its own, and when a user must confirm. Pure: the clock is a number
the caller (and the tests) pass in.

* Auto-off: a printer whose print has ended (or that never started one: IDLE), whose nozzle is
  below ``below_nozzle_c`` and whose link is connected, for ``idle_min`` minutes on end, is
  switched off. Printing, paused, preparing, unknown or offline (it may be printing with its Wi-Fi
  down, or updating its firmware): never, and the minutes start over; a switch found off (by hand,
  at the plug) too. A switch that cannot be read is not switched, but the minutes go on: it is
  switched off once it answers "on" again.
  Nor while the queue holds it on (``held``: switched on for a job that has not had its chance
  yet, or a queued print being sent to it; power/wakes.py): its minutes start when the hold ends.
* Switching off by hand needs ``confirm`` while a print may be under way (any gcode_state but
  IDLE, FINISH or FAILED on a connected printer); an offline printer may be switched off.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bambu_edge.power.setting import AutoOff
from bambu_edge.printers.bambu.protocol import NO_JOB_STATES


@dataclass(frozen=True, slots=True)
class PrinterFacts:
    link_state: str
    gcode_state: str | None
    nozzle_c: float | None

    @classmethod
    def from_view(cls, view: Mapping[str, Any]) -> PrinterFacts:
        nozzle = ((view.get("temps") or {}).get("nozzle") or {}).get("current")
        return cls(
            link_state=str((view.get("link") or {}).get("state") or "offline"),
            gcode_state=(view.get("print") or {}).get("state"),
            nozzle_c=float(nozzle)
            if isinstance(nozzle, int | float) and not isinstance(nozzle, bool)
            else None,
        )


UNKNOWN = PrinterFacts("offline", None, None)


def at_rest(facts: PrinterFacts, below_nozzle_c: float) -> bool:
    """Connected, no print under way, nozzle known to be cool."""
    return (
        facts.link_state == "connected"
        and facts.gcode_state in NO_JOB_STATES
        and facts.nozzle_c is not None
        and facts.nozzle_c < below_nozzle_c
    )


@dataclass
class AutoOffTimer:
    rule: AutoOff
    since: float | None = None  # when the printer came to rest (None: it is not at rest)

    def observe(self, facts: PrinterFacts, power_on: bool | None, now: float, held: bool = False) -> bool:
        """True when the printer is to be switched off now."""
        if held or power_on is False or not at_rest(facts, self.rule.below_nozzle_c):
            self.since = None
            return False
        if self.since is None:
            self.since = now
        # The minutes are the printer's: a switch that cannot be read now (None) keeps them, and is
        # switched off once it answers "on" again.
        return power_on is True and now - self.since >= self.rule.idle_min * 60.0

    def due_in(self, now: float) -> float | None:
        """Seconds until the switch-off, if the printer stays at rest."""
        if self.since is None:
            return None
        return max(self.since + self.rule.idle_min * 60.0 - now, 0.0)


def refuse_off(facts: PrinterFacts, confirm: bool) -> str | None:
    """Why switching off needs a confirmation (the 409's words), or None."""
    if confirm or facts.link_state != "connected" or facts.gcode_state in NO_JOB_STATES:
        return None
    state = facts.gcode_state or "not reported yet"
    return f"the printer may be printing (state {state}); send confirm: true to switch it off anyway"
