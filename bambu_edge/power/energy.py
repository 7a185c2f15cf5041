"""Energy per print: the top-level ``energy:`` section and the arithmetic from meter readings. Pure."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from bambu_edge.config import ConfigNode, SectionSpec

# A plug's counter that went backwards was reset (or replaced) mid-print: nothing is measured.
MAX_PRINT_KWH = 1000.0


@dataclass(frozen=True)
class EnergyConfig:
    price_per_kwh: float | None = None
    currency: str | None = None


@dataclass(frozen=True)
class Energy:
    kwh: float
    cost: float | None  # at energy.price_per_kwh; None without a price


def _number(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        return None
    return float(v)


def used(start_wh: float | None, end_wh: float | None, price_per_kwh: float | None) -> Energy | None:
    """The energy between two readings of a plug's running total (Wh); None if not measured."""
    if start_wh is None or end_wh is None or end_wh < start_wh:
        return None
    kwh = (end_wh - start_wh) / 1000.0
    if kwh > MAX_PRINT_KWH:
        return None
    cost = None if price_per_kwh is None else round(kwh * price_per_kwh, 4)
    return Energy(round(kwh, 4), cost)


# After the plug could not be read at a print's end: read it again after these pauses (or when its
# circuit breaker lets a request out, if later), then give up: the record's energy stays unknown.
# Bounded, so what the printer draws idle after the print adds little: minutes of standby watts.
END_RETRY_S = (10.0, 30.0, 60.0, 120.0, 300.0)


@dataclass
class EndRetry:
    """When to read a print's end counter again after a reading failed."""

    pauses_s: tuple[float, ...] = END_RETRY_S
    failed: int = 0  # readings that failed so far

    def after_failure(self, now: float, breaker_wait_s: float = 0.0) -> float | None:
        """A reading failed at ``now``: when to try next, or None to give up."""
        self.failed += 1
        if self.failed > len(self.pauses_s):
            return None
        return now + max(self.pauses_s[self.failed - 1], breaker_wait_s)


def parse_energy(node: ConfigNode) -> EnergyConfig:
    s = node.mapping({"price_per_kwh", "currency"})
    price = s.data.get("price_per_kwh")
    if price is not None:
        p = _number(price)
        if p is None or p < 0 or p > 1000:
            raise s.err("price_per_kwh", "must be a price per kWh from 0, e.g. 0.30")
        price = p
    currency = s.str("currency")
    if currency is not None and (len(currency) > 8 or not currency.strip()):
        raise s.err("currency", "must be a short currency name, e.g. EUR")
    return EnergyConfig(price_per_kwh=price, currency=currency)


ENERGY_SECTION = SectionSpec("energy", parse_energy)
