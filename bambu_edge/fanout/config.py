"""``fanout: null`` (off) or ``{port: 8883, bind: 0.0.0.0}`` (DESIGN §3), with the knobs a busy
farm may want: how many requests a second each printer's clients may send (``rate``, ``burst``)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from bambu_edge.config import ConfigNode, SectionSpec


@dataclass(frozen=True)
class FanoutConfig:
    port: int = 8883
    bind: str = "0.0.0.0"
    rate: float = 2.0  # requests per second per printer, over all its clients
    burst: int = 10


def _rate(s, key: str, default: float, lo: float, hi: float) -> float:
    v = s.data.get(key, default)
    if isinstance(v, bool) or not isinstance(v, int | float) or not lo <= v <= hi:
        raise s.err(key, f"must be a number from {lo:g} to {hi:g}")
    return float(v)


def parse_fanout(node: ConfigNode) -> FanoutConfig | None:
    if node.value is None:
        return None
    s = node.mapping({"port", "bind", "rate", "burst"})
    bind = s.str("bind", "0.0.0.0") or "0.0.0.0"
    try:
        ipaddress.ip_address(bind)
    except ValueError:
        raise s.err("bind", f"must be an IP address, e.g. 0.0.0.0; got {bind!r}") from None
    return FanoutConfig(
        port=s.int("port", 8883, lo=0, hi=65535) or 0,
        bind=bind,
        rate=_rate(s, "rate", 2.0, 0.1, 100),
        burst=int(_rate(s, "burst", 10, 1, 1000)),
    )


FANOUT_SECTION = SectionSpec("fanout", parse_fanout)
