"""USB devices as a component: cameras and sticks listed at ``GET /api/usb/devices`` and announced
as ``usb`` events; a stick's print files imported into the queue on request.

A stick is found mounted by the system (see mounts.py): after it appears, its mount is looked for
every MOUNT_POLL_S for MOUNT_WAIT_S. A stick with a ``bambu-edge/`` folder can take a backup
(bambu_edge/backup): written there atomically, refused in plain words when the stick is read-only
or full.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from aiohttp import web

from bambu_edge.backup.api import api_error
from bambu_edge.backup.cli import node_id
from bambu_edge.backup.manifest import BackupError
from bambu_edge.backup.writer import backup_name, write_backup_file
from bambu_edge.bus import Event
from bambu_edge.component import Component, Context
from bambu_edge.jobs.components import QueueComponent
from bambu_edge.usb import api
from bambu_edge.usb.devices import UsbDevice, classify
from bambu_edge.usb.monitor import UdevWatcher
from bambu_edge.usb.mounts import find_mount
from bambu_edge.usb.stick import StickFile, find_folder, import_file, list_print_files
from bambu_edge.web.errors import ApiError, bad

log = logging.getLogger(__name__)

USB_EVENT = "usb"
_STICK_ERRORS = {
    "read_only": "The USB stick {name} is read-only (write-protected, or mounted read-only): nothing was written.",
    "no_space": "The USB stick {name} is full: the backup does not fit. Make room on it and try again.",
    "not_writable": "bambu-edge may not write to the USB stick {name} (its folder belongs to another user).",
}
MOUNT_POLL_S = 1.0
MOUNT_WAIT_S = 30.0


@dataclass
class Present:
    device: UsbDevice
    mount: str | None = None
    files: list[StickFile] = field(default_factory=list)
    folder: bool = False  # it has a bambu-edge/ folder: a backup may be written there

    def to_json(self) -> dict[str, Any]:
        out = self.device.to_json()
        if self.device.kind == "stick":
            out.update(
                mounted=self.mount is not None,
                folder=self.folder,
                files=[f.to_json() for f in self.files],
            )
        return out


@dataclass(frozen=True)
class UsbUpdate:
    action: str  # "added" | "changed" | "removed"
    device: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {"action": self.action, "device": self.device}


class UsbComponent(Component):
    name = "usb"
    optional = True
    event_kinds = (USB_EVENT,)
    udev_source: ClassVar[str] = "udev"

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.present: dict[str, Present] = {}
        # udev events handled, per device node: one can tell an event was looked at and dropped
        # (a block device that is no stick) from one not seen yet. As many keys as device nodes.
        self.handled: Counter[str] = Counter()
        self._watcher: UdevWatcher | None = None
        self._mounting: dict[str, asyncio.Task[None]] = {}
        self._import_lock = asyncio.Lock()
        self._backup_lock = asyncio.Lock()

    async def start(self) -> None:
        watcher = UdevWatcher(self.handle, source=self.udev_source)
        watcher.start()
        self._watcher = watcher

    async def stop(self) -> None:
        if self._watcher is not None:
            self._watcher.close()
            self._watcher = None

    # --- udev events (on the loop) ------------------------------------------------------------------

    def handle(self, action: str, props: Mapping[str, str]) -> None:
        """One udev event: a device appears, changes (a stick's medium) or goes."""
        devnode = props.get("DEVNAME", "")
        try:
            self._handle(action, devnode, props)
        finally:
            self.handled[devnode] += 1

    def _handle(self, action: str, devnode: str, props: Mapping[str, str]) -> None:
        device = classify(props)
        gone = next((k for k, p in self.present.items() if p.device.devnode == devnode), None)
        if action == "remove" or (device is None and gone is not None and action == "change"):
            if gone is not None:
                self._forget(gone)
            return
        if device is None or action not in ("add", "change", "bind", "online"):
            return
        known = self.present.get(device.id)
        if known is not None and known.device == device:
            if device.kind == "stick" and known.mount is None:
                self._look_for_mount(device.id)
            return
        self.present[device.id] = Present(device)
        log.info(
            "USB %s %s: %s (%s)",
            device.kind,
            "added" if known is None else "changed",
            device.name,
            device.devnode,
        )
        self._announce("added" if known is None else "changed", device.id)
        if device.kind == "stick" and device.major is not None and device.minor is not None:
            self._look_for_mount(device.id)

    def _forget(self, dev_id: str) -> None:
        present = self.present.pop(dev_id)
        task = self._mounting.pop(dev_id, None)
        if task is not None:
            task.cancel()
        log.info("USB %s removed: %s", present.device.kind, present.device.name)
        self.ctx.bus.publish(Event(USB_EVENT, None, UsbUpdate("removed", present.to_json())))

    def _announce(self, action: str, dev_id: str) -> None:
        self.ctx.bus.publish(Event(USB_EVENT, None, UsbUpdate(action, self.present[dev_id].to_json())))

    def _look_for_mount(self, dev_id: str) -> None:
        if dev_id in self._mounting and not self._mounting[dev_id].done():
            return
        self._mounting[dev_id] = self.ctx.tasks.spawn(self._await_mount(dev_id), name=f"usb-mount-{dev_id}")

    async def _await_mount(self, dev_id: str) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + MOUNT_WAIT_S
        while (present := self.present.get(dev_id)) is not None:
            dev = present.device
            assert dev.major is not None and dev.minor is not None
            mount = await asyncio.to_thread(find_mount, dev.major, dev.minor)
            if mount is not None:
                await self._scan(dev_id, mount)
                return
            if loop.time() >= deadline:
                log.warning(
                    "USB stick %s (%s) is not mounted: its files cannot be offered", dev.name, dev.devnode
                )
                return
            await asyncio.sleep(MOUNT_POLL_S)

    async def _scan(self, dev_id: str, mount: str) -> None:
        files = await asyncio.to_thread(list_print_files, mount)
        folder = await asyncio.to_thread(find_folder, mount)
        present = self.present.get(dev_id)
        if present is None:
            return
        present.mount, present.files, present.folder = mount, files, folder is not None
        log.info(
            "USB stick %s mounted at %s: %d print files in bambu-edge/",
            present.device.name,
            mount,
            len(files),
        )
        self._announce("changed", dev_id)

    # --- API ------------------------------------------------------------------------------------

    def devices(self) -> list[dict[str, Any]]:
        return [p.to_json() for p in sorted(self.present.values(), key=lambda p: p.device.id)]

    async def import_files(self, dev_id: str, names: list[str] | None) -> dict[str, Any]:
        """Import the stick's print files (all, or ``names``) into the queue."""
        present = self.present.get(dev_id)
        if present is None or present.device.kind != "stick":
            raise ApiError(404, "not_found", "No such USB stick.")
        if present.mount is None:
            raise ApiError(409, "not_mounted", "The stick is not mounted (yet).")
        queue = self.ctx.running("queue", QueueComponent)
        if queue is None or queue.dispatcher is None:
            raise ApiError(503, "unavailable", "The print queue is not running.")
        offered = {f.name for f in present.files}
        wanted = sorted(offered) if names is None else names
        unknown = [n for n in wanted if n not in offered]
        if unknown:
            raise bad(f"not on the stick: {unknown[0]}")
        imported: list[dict[str, Any]] = []
        errors: list[dict[str, str]] = []
        async with self._import_lock:
            for name in wanted:
                try:
                    imported.append(await import_file(queue.dispatcher, present.mount, name))
                except ValueError as e:
                    errors.append({"name": name, "error": str(e)})
        log.info(
            "USB stick %s: %d files imported, %d refused", present.device.name, len(imported), len(errors)
        )
        return {"imported": imported, "errors": errors}

    async def write_backup(self, dev_id: str) -> dict[str, Any]:
        """Write a backup to the stick's bambu-edge/ folder (backup-<node>-<time>.tar.gz)."""
        present = self.present.get(dev_id)
        if present is None or present.device.kind != "stick":
            raise ApiError(404, "not_found", "No such USB stick.")
        if present.mount is None:
            raise ApiError(409, "not_mounted", "The stick is not mounted (yet).")
        folder = await asyncio.to_thread(find_folder, present.mount)
        if folder is None:
            raise ApiError(
                409, "no_folder", "The stick has no bambu-edge folder: make one on it to allow backups there."
            )
        node = node_id(self.ctx.config)
        dest = folder / backup_name(node)
        if self._backup_lock.locked():
            raise ApiError(409, "busy", "A backup is being written to a stick; wait until it is done.")
        async with self._backup_lock:
            try:
                manifest = await asyncio.to_thread(write_backup_file, self.ctx.config, node, dest)
            except BackupError as e:
                err = api_error(e)
                if e.code in ("read_only", "no_space", "not_writable"):
                    err.message = _STICK_ERRORS[e.code].format(name=present.device.name)
                raise err from None
        size = dest.stat().st_size
        log.info("backup written to USB stick %s: %s (%d bytes)", present.device.name, dest, size)
        return {"file": f"{folder.name}/{dest.name}", "size": size, "backup": manifest.summary()}

    def routes(self) -> list[web.RouteDef]:
        return api.routes(lambda: self.ctx.registry.running(self.name))

    def health(self) -> dict[str, Any]:
        return {"devices": len(self.present)}
