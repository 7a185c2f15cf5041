"""A printer's ``power:`` setting (DESIGN §3) and the top-level ``energy:`` section. Pure.

``power: {gpio: 17, active_high: true}`` or ``{shelly: "http://..."}`` or ``{tasmota: "http://..."}``,
each optionally with ``auto_off: {idle_min: 10, below_nozzle_c: 50}``; plugs take optional
``username`` / ``password``. ``energy: {price_per_kwh, currency}``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

KINDS = ("gpio", "shelly", "tasmota")
DEFAULT_BELOW_NOZZLE_C = 50.0
MAX_GPIO = 63


class PowerSettingError(ValueError):
    """A bad ``power:`` value; ``key`` names the sub-key at fault ("" for the mapping itself)."""

    def __init__(self, key: str, message: str):
        super().__init__(message)
        self.key = key


@dataclass(frozen=True)
class AutoOff:
    idle_min: float  # minutes, fractions allowed
    below_nozzle_c: float = DEFAULT_BELOW_NOZZLE_C


@dataclass(frozen=True)
class PowerSetting:
    kind: str  # gpio | shelly | tasmota
    gpio: int | None = None
    active_high: bool = True
    url: str | None = None  # a plug's base URL, without a trailing slash
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    auto_off: AutoOff | None = None


def _number(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        return None
    return float(v)


def _url(key: str, v: Any) -> str:
    if not isinstance(v, str) or not v.strip():
        raise PowerSettingError(key, 'must be the plug\'s address, e.g. "http://192.168.1.50"')
    parts = urlsplit(v.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise PowerSettingError(
            key, f'must be an http:// or https:// address, e.g. "http://192.168.1.50"; got {v!r}'
        )
    if parts.query or parts.fragment or parts.username or parts.password:
        raise PowerSettingError(key, "must be the plug's address only (credentials go in username/password)")
    return v.strip().rstrip("/")


def _auto_off(v: Any) -> AutoOff | None:
    if v is None:
        return None
    if not isinstance(v, Mapping):
        raise PowerSettingError("auto_off", "must be a mapping, e.g. {idle_min: 10, below_nozzle_c: 50}")
    unknown = sorted(set(v) - {"idle_min", "below_nozzle_c"})
    if unknown:
        raise PowerSettingError(f"auto_off.{unknown[0]}", "unknown key (allowed: below_nozzle_c, idle_min)")
    idle = _number(v.get("idle_min"))
    if idle is None or not 0 < idle <= 7 * 24 * 60:
        raise PowerSettingError("auto_off.idle_min", "must be minutes above 0, e.g. 10 (fractions allowed)")
    below = v.get("below_nozzle_c", DEFAULT_BELOW_NOZZLE_C)
    below_c = _number(below)
    if below_c is None or not 0 < below_c <= 400:
        raise PowerSettingError(
            "auto_off.below_nozzle_c", "must be a temperature in °C from 1 to 400, e.g. 50"
        )
    return AutoOff(idle, below_c)


def parse_power(v: Any) -> PowerSetting | None:
    """The ``power:`` mapping of one printer, checked; None when there is none."""
    if v is None:
        return None
    if not isinstance(v, Mapping):
        raise PowerSettingError("", 'must be a mapping, e.g. {gpio: 17} or {shelly: "http://192.168.1.50"}')
    kinds = [k for k in KINDS if k in v]
    if len(kinds) != 1:
        raise PowerSettingError("", "must name exactly one of gpio, shelly or tasmota")
    kind = kinds[0]
    allowed = {kind, "auto_off"} | ({"active_high"} if kind == "gpio" else {"username", "password"})
    unknown = sorted(set(v) - allowed)
    if unknown:
        raise PowerSettingError(unknown[0], f"unknown key (allowed: {', '.join(sorted(allowed))})")
    auto_off = _auto_off(v.get("auto_off"))
    if kind == "gpio":
        pin = v["gpio"]
        if isinstance(pin, bool) or not isinstance(pin, int) or not 0 <= pin <= MAX_GPIO:
            raise PowerSettingError("gpio", f"must be a BCM GPIO number from 0 to {MAX_GPIO}, e.g. 17")
        active_high = v.get("active_high", True)
        if not isinstance(active_high, bool):
            raise PowerSettingError("active_high", "must be true or false")
        return PowerSetting("gpio", gpio=pin, active_high=active_high, auto_off=auto_off)
    creds: dict[str, str | None] = {}
    for key in ("username", "password"):
        c = v.get(key)
        if c is not None and (not isinstance(c, str) or not c or not c.isprintable()):
            raise PowerSettingError(key, "must be a quoted string")
        creds[key] = c
    if creds["password"] is not None and kind == "shelly" and creds["username"] is None:
        creds["username"] = "admin"  # Gen2+ knows only "admin"; Gen1 defaults to it too
    return PowerSetting(
        kind,
        url=_url(kind, v[kind]),
        username=creds["username"],
        password=creds["password"],
        auto_off=auto_off,
    )
