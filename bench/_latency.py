"""Shared by the latency benches (ws_latency, farm_latency): printers that publish reports whose
nozzle temperature is a unique stamp, the plain MQTT subscriber that is their baseline, and reading
the stamp back out of a dashboard's WebSocket frame."""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Callable
from typing import Any

import aiomqtt
import orjson

CODE = "12345678"

# (printer id "p<i>", nozzle stamp) -> when it was published (time.perf_counter())
Sent = dict[tuple[str, float], float]


def frame_nozzle(frame: dict[str, Any]) -> Any:
    """The nozzle temperature a ``printer`` frame's changes carry, if any."""
    return (((frame.get("changes") or {}).get("temps") or {}).get("nozzle") or {}).get("current")


async def stamped_printer(
    host: str,
    port: int,
    ctx: ssl.SSLContext,
    i: int,
    serial: str,
    hz: float,
    printers: int,
    sent: Sent,
    stop: asyncio.Event,
    extra: Callable[[int], dict[str, Any]] | None = None,
) -> None:
    """Printer ``p<i>``: a push_status delta at ``hz`` with a unique nozzle value, plus the fields
    ``extra(n)`` gives for the n-th report; the publishers are spread over the period."""
    async with aiomqtt.Client(host, port, username="bblp", password=CODE, tls_context=ctx) as c:
        n = 0
        await asyncio.sleep(i / (printers * hz))
        while not stop.is_set():
            n += 1
            value = 200.0 + n / 1000 + i / 1e6
            body = {**(extra(n) if extra else {}), "nozzle_temper": value}
            msg = {"print": {**body, "command": "push_status", "msg": 1}}
            sent[(f"p{i}", value)] = time.perf_counter()
            await c.publish(f"device/{serial}/report", orjson.dumps(msg))
            await asyncio.sleep(1 / hz)


async def mqtt_baseline(
    host: str,
    port: int,
    ctx: ssl.SSLContext,
    serials: list[str],
    sent: Sent,
    out: list[float],
    ready: asyncio.Event,
) -> None:
    """The broker round trip the daemon cannot avoid: the same reports read back by a plain
    subscriber, their delays appended to ``out``."""
    async with aiomqtt.Client(host, port, username="bblp", password=CODE, tls_context=ctx) as c:
        await c.subscribe("device/+/report")
        ready.set()
        async for m in c.messages:
            now = time.perf_counter()
            body = orjson.loads(m.payload)["print"]
            pid = f"p{serials.index(str(m.topic).split('/')[1])}"
            t0 = sent.get((pid, body.get("nozzle_temper")))
            if t0 is not None:
                out.append(now - t0)
