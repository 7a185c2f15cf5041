"""Numbers out of a plug's JSON, never trusted. Pure."""

from __future__ import annotations

from typing import Any

from bambu_edge.printers import values


def num(v: Any, lo: float = 0.0, hi: float = 1e9) -> float | None:
    """A plug's reading (watts, watt-hours): printers/values.py's rules, non-negative by default."""
    return values.num(v, lo, hi)


def field(d: Any, *path: str | int) -> Any:
    """``d[path[0]][path[1]]...`` or None when any step is missing or of the wrong kind; unlike
    ``values.dig`` it also steps into lists (Shelly Gen1: ``meters[0].power``)."""
    for p in path:
        if isinstance(p, int):
            if not isinstance(d, list) or not -len(d) <= p < len(d):
                return None
        elif not isinstance(d, dict):
            return None
        else:
            d = d.get(p)
            continue
        d = d[p]
    return d
