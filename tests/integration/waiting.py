"""What the integration tests share for talking to a running daemon: waiting for a condition, and a
TLS context for the dashboard's self-signed certificate."""

from __future__ import annotations

import asyncio
import inspect
import ssl
import time
from collections.abc import Callable
from typing import Any


async def eventually(
    fn: Callable[[], Any], timeout: float = 20.0, what: str = "condition", every: float = 0.1
) -> Any:
    """Call ``fn`` (plain or async) until it returns something truthy; fail with the last value."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = fn()
        if inspect.isawaitable(last):
            last = await last
        if last:
            return last
        await asyncio.sleep(every)
    raise AssertionError(f"timed out waiting for {what}; last: {last}")


def dashboard_tls() -> ssl.SSLContext:
    """The daemon makes its own self-signed dashboard certificate: the tests take it as it is."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx
