"""The updates component: ``GET /api/version`` with what apt knows about the bambu-edge package.

It asks ``apt-cache policy bambu-edge`` (local lists only, as apt's own daily ``apt update``
left them) at most once per ``CHECK_INTERVAL_S``; one child at a time however many browsers ask.
Where there is no apt (a source checkout on another system) or apt fails, the answer says so
in ``error`` and the dashboard shows only the running version.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import time
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from bambu_edge import __version__
from bambu_edge.component import Component
from bambu_edge.updates.apt_policy import Policy, parse_policy
from bambu_edge.web.api_auth import json_response
from bambu_edge.web.openapi import documented

log = logging.getLogger(__name__)

PACKAGE = "bambu-edge"
CHECK_INTERVAL_S = 600.0
APT_TIMEOUT_S = 30.0  # a Pi with a cold page cache and big lists is slow; never an endless wait

VERSION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "version": {"type": "string", "description": "the running daemon's version"},
        "package": {
            "type": "object",
            "properties": {
                "name": {"type": "string"},
                "installed": {
                    "type": ["string", "null"],
                    "description": "null: not installed from a package",
                },
                "candidate": {"type": ["string", "null"], "description": "what `apt upgrade` would install"},
                "update_available": {"type": "boolean"},
                "checked_at": {"type": ["number", "null"]},
                "error": {"type": ["string", "null"]},
            },
        },
    },
}


@dataclass(frozen=True, slots=True)
class Check:
    policy: Policy
    checked_at: float | None
    error: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": PACKAGE,
            "installed": self.policy.installed,
            "candidate": self.policy.candidate,
            "update_available": self.policy.update_available,
            "checked_at": self.checked_at,
            "error": self.error,
        }


class UpdatesComponent(Component):
    name = "updates"
    optional = True

    def __init__(self, ctx: Any):
        super().__init__(ctx)
        self._last: Check | None = None
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        """Nothing to start: apt is asked when a browser asks."""

    async def stop(self) -> None:
        """Nothing to stop: a running apt-cache child belongs to the task set, which reaps it."""

    async def check(self) -> Check:
        async with self._lock:
            last = self._last
            if last is None or last.checked_at is None or time.time() - last.checked_at >= CHECK_INTERVAL_S:
                self._last = await self._ask_apt()
            return self._last

    async def _ask_apt(self) -> Check:
        apt_cache = shutil.which("apt-cache")
        if apt_cache is None:
            return Check(Policy(None, None), None, "apt-cache not found: not a Debian system")
        env = {**os.environ, "LC_ALL": "C"}  # apt translates its labels
        proc = await self.ctx.tasks.spawn_process(
            apt_cache,
            "policy",
            PACKAGE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
        )
        try:
            out, err = await asyncio.wait_for(proc.communicate(), APT_TIMEOUT_S)
        except TimeoutError:
            await self.ctx.tasks.stop_process(proc)
            return Check(
                Policy(None, None), time.time(), f"apt-cache policy took longer than {APT_TIMEOUT_S:.0f} s"
            )
        now = time.time()
        if proc.returncode != 0:
            message = err.decode(errors="replace").strip().splitlines()
            log.warning(
                "apt-cache policy %s failed: %s", PACKAGE, message[-1] if message else proc.returncode
            )
            return Check(
                Policy(None, None),
                now,
                f"apt-cache policy failed ({message[-1] if message else proc.returncode})",
            )
        return Check(parse_policy(out.decode(errors="replace"), PACKAGE), now, None)

    def routes(self) -> list[web.RouteDef]:
        return routes(lambda: self.ctx.registry.running(self.name))

    def health(self) -> dict[str, Any]:
        last = self._last
        return {"update_available": bool(last and last.policy.update_available)}


def routes(updates: Any) -> list[web.RouteDef]:
    """``updates()`` is the running UpdatesComponent, or None (then only the running version)."""

    @documented(response=VERSION_SCHEMA)
    async def get_version(request: web.Request) -> web.Response:
        """The running version, and the bambu-edge package: the version installed, apt's
        candidate from the configured apt sources (as of apt's last `apt update`), and whether
        that is an update (`apt upgrade` installs it). Checked at most every 10 minutes."""
        current = updates()
        package = (await current.check()).to_json() if current is not None else None
        return json_response({"version": __version__, "package": package})

    return [web.get("/api/version", get_version)]
