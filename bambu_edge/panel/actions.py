"""What the button's long holds do outside the daemon: power the Pi off, reopen the web setup.

Power-off goes through ``systemctl poweroff``, which asks logind over D-Bus: the service user needs
polkit's ``org.freedesktop.login1.power-off`` (etc/polkit-1/rules.d/50-bambu-edge.rules). Tests
replace ``Actions.poweroff`` with one that records the call.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from bambu_edge.component import ComponentError

log = logging.getLogger(__name__)


async def systemctl_poweroff() -> None:
    proc = await asyncio.create_subprocess_exec(
        "systemctl",
        "poweroff",
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await proc.communicate()
    if proc.returncode != 0:
        raise ComponentError(f"systemctl poweroff failed: {err.decode(errors='replace').strip()}")


@dataclass
class Actions:
    poweroff: Callable[[], Awaitable[None]] = systemctl_poweroff
