"""Tolerant parsing of values from untrusted printer messages (pure, no I/O, never raises).

One set of rules for every reader of printer data (state folding, the print tracker, the
temperature history, the virtual printer): a value that does not parse, or is out of range, is
``None``; nothing is guessed. These sit on the hot path of every report, so they test ``type(v)``
instead of ``isinstance`` and try the common case first.
"""

from __future__ import annotations

from typing import Any

SAFE_INT = 2**53  # the largest integers a browser reads exactly
BIG = 1e12
MAX_TEXT = 1024


def num(v: Any, lo: float = -BIG, hi: float = BIG) -> float | None:
    """A finite float from a number or a numeric string ("26.2") within [lo, hi]; else None.

    -0.0 becomes 0.0: values that compare equal must serialise the same (view change sets).
    """
    t = type(v)
    if t is float:
        f = v
    elif t is int:
        if not -SAFE_INT < v < SAFE_INT:
            return None
        f = float(v)
    elif t is str and 0 < len(v) <= 32:
        try:
            f = float(v)
        except ValueError:
            return None
    else:
        return None
    return f + 0.0 if lo <= f <= hi else None  # NaN fails the comparison


def integer(v: Any, lo: int = 1 - SAFE_INT, hi: int = SAFE_INT - 1) -> int | None:
    """An int from an int, an integral float or a decimal string ("255", "2.0") within [lo, hi]."""
    t = type(v)
    if t is int:
        n = v
    elif t is float:
        if not v.is_integer() or not -BIG < v < BIG:
            return None
        n = int(v)
    elif t is str and 0 < len(v) <= 24:
        try:
            n = int(v, 10)
        except ValueError:
            f = num(v)
            if f is None or not f.is_integer():
                return None
            n = int(f)
    else:
        return None
    return n if lo <= n <= hi else None


def text(v: Any, limit: int = MAX_TEXT) -> str | None:
    """A non-empty string as sent; empty, over-long or non-string values are None."""
    return v if type(v) is str and 0 < len(v) <= limit else None


def dig(d: Any, *path: str) -> Any:
    """``d[path[0]][path[1]]...`` through dicts only; None where the path breaks."""
    for key in path:
        if type(d) is not dict:
            return None
        d = d.get(key)
    return d
