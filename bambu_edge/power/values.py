"""Numbers out of a plug's JSON, never trusted. Pure."""

from __future__ import annotations

import math
from typing import Any


def num(v: Any, lo: float = 0.0, hi: float = 1e9) -> float | None:
    if isinstance(v, str):
        try:
            v = float(v)
        except ValueError:
            return None
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        return None
    return float(v) if lo <= v <= hi else None


def field(d: Any, *path: str | int) -> Any:
    """``d[path[0]][path[1]]...`` or None when any step is missing or of the wrong kind."""
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
