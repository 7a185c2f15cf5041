"""Turning the text values slicers write into numbers and colours, defensively (pure, no I/O).

Every parser returns None for anything it does not recognise or that is out of a sane range; a
value a file does not carry (or carries broken) is never guessed.
"""

from __future__ import annotations

import math
import re

MAX_PRINT_S = 60 * 24 * 3600  # 60 days: beyond that an estimate is nonsense
MAX_LAYERS = 1_000_000
MAX_GRAMS = 100_000.0
MAX_METERS = 1_000_000.0
NOZZLE_RANGE = (0.05, 3.0)
MAX_VALUE_CHARS = 256  # a single value; longer ones are not ours to parse

_HEX = re.compile(r"^#?([0-9A-Fa-f]{6})([0-9A-Fa-f]{2})?$")
_DURATION_PART = re.compile(r"(\d{1,9})\s*([dhms])", re.I)
_DURATION_FULL = re.compile(r"^\s*(?:\d{1,9}\s*[dhms]\s*)+$", re.I)
_UNIT_S = {"d": 86400, "h": 3600, "m": 60, "s": 1}


def parse_float(text: object, lo: float = 0.0, hi: float = math.inf) -> float | None:
    if not isinstance(text, str | int | float) or isinstance(text, bool):
        return None
    if isinstance(text, str):
        text = text.strip()
        if not text or len(text) > 64:
            return None
    try:
        value = float(text)
    except (TypeError, ValueError, OverflowError):
        return None
    if not math.isfinite(value) or not lo <= value <= hi:
        return None
    return value


def parse_int(text: object, lo: int = 0, hi: int = 2**31) -> int | None:
    value = parse_float(text, lo, hi)
    if value is None:
        return None
    return round(value)


def parse_duration(text: object) -> int | None:
    """Seconds from a slicer duration: "1d 2h 3m 4s", "11m 27s", "45s"."""
    if not isinstance(text, str) or len(text) > 64 or not _DURATION_FULL.match(text):
        return None
    total = sum(int(n) * _UNIT_S[u.lower()] for n, u in _DURATION_PART.findall(text))
    return total if 0 <= total <= MAX_PRINT_S else None


def normalize_color(text: object) -> str | None:
    """ "#RRGGBBAA", upper case; the slicer's "#RRGGBB" gets alpha FF. None if not a colour."""
    if not isinstance(text, str):
        return None
    m = _HEX.match(text.strip())
    if not m:
        return None
    return f"#{m[1].upper()}{(m[2] or 'FF').upper()}"


def clean_text(text: object, max_chars: int = 128) -> str | None:
    """A short printable string from a file, or None (empty, too long, or not text)."""
    if not isinstance(text, str):
        return None
    text = "".join(c for c in text.strip() if c.isprintable())
    if not text or len(text) > max_chars:
        return text[:max_chars] if text else None
    return text


def split_values(text: str, separators: str = ";,") -> list[str]:
    """ "PLA;PETG", "0.4,0.4", '"A";"B"' -> items, quotes stripped."""
    if len(text) > 64 * MAX_VALUE_CHARS:
        return []
    items = re.split("[" + re.escape(separators) + "]", text)
    return [item.strip().strip('"').strip() for item in items]
