"""udev's device events on the event loop: a pyudev netlink monitor read through ``add_reader``
(no thread), plus the devices present at start as "add" events.

``source="udev"`` (the daemon) receives events after udev's rules ran, with the ``ID_*``
properties the classification needs; it needs a running udev (``/run/udev/control``).
``source="kernel"`` receives the kernel's raw uevents (no ``ID_*``), which works without udev.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Mapping
from typing import Any

from bambu_edge.component import ComponentError

SUBSYSTEMS = ("video4linux", "block")
UDEV_CONTROL = "/run/udev/control"
Handler = Callable[[str, Mapping[str, str]], None]


def _pyudev() -> Any:
    try:
        import pyudev
    except ImportError:
        raise ComponentError("the Python package pyudev is not installed") from None
    return pyudev


class UdevWatcher:
    def __init__(self, handler: Handler, *, source: str = "udev", subsystems: tuple[str, ...] = SUBSYSTEMS):
        self.handler = handler
        self.source = source
        self.subsystems = subsystems
        self._monitor: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> None:
        if self.source == "udev" and not os.path.exists(UDEV_CONTROL):
            raise ComponentError(
                "no udev here (no /run/udev/control): USB cameras and sticks are not noticed"
            )
        pyudev = _pyudev()
        try:
            context = pyudev.Context()
            monitor = pyudev.Monitor.from_netlink(context, source=self.source)
            for subsystem in self.subsystems:
                monitor.filter_by(subsystem)
            monitor.start()
        except (ImportError, OSError) as e:  # no libudev, or netlink refused
            raise ComponentError(f"cannot watch udev: {e}") from None
        self._monitor = monitor
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(monitor.fileno(), self._readable)
        if self.source == "udev":
            for subsystem in self.subsystems:
                for device in context.list_devices(subsystem=subsystem):
                    self.handler("add", dict(device.properties))

    def _readable(self) -> None:
        # Drain what is queued now; never wait (poll(0)) on the loop.
        while (device := self._monitor.poll(0)) is not None:
            self.handler(device.action or "change", dict(device.properties))

    def close(self) -> None:
        monitor, self._monitor = self._monitor, None
        if monitor is not None and self._loop is not None:
            self._loop.remove_reader(monitor.fileno())
            # pyudev has no close(): dropping the last reference frees the libudev monitor and its socket.
            del monitor
