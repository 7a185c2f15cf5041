"""USB on real parts: the pyudev monitor on the event loop receives a real kernel uevent; a real
filesystem (ext4 on a loop device, mounted) holding bambu-edge/*.3mf is offered and imported into
the real queue, and the dashboard shows the import prompt; without udev the component fails in
/api/health in plain words while the daemon serves.

This machine has no udev daemon, so no ``ID_*`` properties are added to kernel events: the stick
test gives the component the loop device's real pyudev properties plus those udev's rules add for
a USB stick (usb_id, blkid). Root is needed to mount and to make the kernel send a uevent."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from collections.abc import AsyncIterator, Iterator, Mapping
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pyudev

from bambu_edge.app import COMPONENTS, Daemon
from bambu_edge.bus import Event
from bambu_edge.config import Config, WebConfig
from bambu_edge.printers.base import PRINTER_EVENT, PrinterUpdate
from bambu_edge.usb.component import UsbComponent
from bambu_edge.usb.monitor import UDEV_CONTROL, UdevWatcher
from tests.factories.threemf import PlateSpec, make_3mf
from tests.integration.browser import chromium, login, new_page, screenshot_on_failure
from tests.integration.waiting import dashboard_tls, eventually
from tests.integration.web_stack import admin_auth, assert_failed_but_serving

PASSWORD = "correct horse battery"
ROOT = os.geteuid() == 0
needs_root = pytest.mark.skipif(not ROOT or not shutil.which("losetup"), reason="needs root and losetup")


class KernelUsb(UsbComponent):
    """The USB component on the kernel's uevents (this machine runs no udev daemon)."""

    udev_source = "kernel"


def _components(usb: type[UsbComponent] = KernelUsb) -> list[Any]:
    return [usb if c is UsbComponent else c for c in COMPONENTS]


def _config(tmp_path: Path) -> Config:
    web = WebConfig(bind="127.0.0.1", https_port=0, http_port=None)
    return Config(data_dir=tmp_path / "data", web=web)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=dashboard_tls())) as session:
        yield session


@needs_root
async def test_a_real_kernel_uevent_reaches_the_watcher_on_the_loop() -> None:
    seen: list[tuple[str, dict[str, str]]] = []
    watcher = UdevWatcher(
        lambda action, props: seen.append((action, dict(props))), source="kernel", subsystems=("block",)
    )
    watcher.start()
    try:
        sys_path = Path("/sys/class/block/loop0/uevent")
        await asyncio.to_thread(sys_path.write_text, "change\n")
        await eventually(lambda: any(p.get("DEVNAME") == "/dev/loop0" for _, p in seen), 5, "the uevent")
        action, props = next((a, p) for a, p in seen if p.get("DEVNAME") == "/dev/loop0")
        assert action == "change" and props["SUBSYSTEM"] == "block" and props["MAJOR"] == "7"
    finally:
        watcher.close()


@pytest.fixture
def stick(tmp_path: Path) -> Iterator[tuple[Path, dict[str, str]]]:
    """An ext4 filesystem labelled PRINTS on a loop device, mounted; bambu-edge/ holds a sliced
    3MF, an unsliced one and a text file. Yields (mount point, the properties udev would give)."""
    if not ROOT or not shutil.which("losetup"):
        pytest.skip("needs root and losetup")
    image, mount = tmp_path / "stick.img", tmp_path / "media" / "PRINTS"
    mount.mkdir(parents=True)
    subprocess.run(["truncate", "-s", "16M", image], check=True)
    subprocess.run(["mkfs.ext4", "-q", "-L", "PRINTS", image], check=True)
    dev = subprocess.run(
        ["losetup", "-f", "--show", image], check=True, capture_output=True, text=True
    ).stdout.strip()
    try:
        subprocess.run(["mount", dev, mount], check=True)
        try:
            folder = mount / "bambu-edge"
            folder.mkdir()
            make_3mf(folder / "desk organizer.gcode.3mf", plates=[PlateSpec()])
            make_3mf(folder / "project.3mf", plates=[PlateSpec(gcode=False)])
            (folder / "readme.txt").write_text("not a print")
            real = pyudev.Devices.from_device_file(pyudev.Context(), dev)
            props: dict[str, str] = dict(real.properties) | {
                # What udev's usb_id and blkid builtins add for a USB stick.
                "ID_BUS": "usb",
                "ID_VENDOR": "SanDisk",
                "ID_MODEL": "Cruzer_Blade",
                "ID_FS_LABEL": "PRINTS",
                "ID_FS_LABEL_ENC": "PRINTS",
                "ID_FS_TYPE": "ext4",
                "ID_FS_USAGE": "filesystem",
            }
            yield mount, props
        finally:
            subprocess.run(["umount", mount], check=False)
    finally:
        subprocess.run(["losetup", "-d", dev], check=False)


def _usb(d: Daemon) -> UsbComponent:
    comp = d.component("usb")
    assert isinstance(comp, UsbComponent)
    return comp


async def _devices(http: aiohttp.ClientSession, base: str, auth: Mapping[str, str]) -> list[dict[str, Any]]:
    async with http.get(base + "/api/usb/devices", headers=auth) as r:
        assert r.status == 200
        return (await r.json())["devices"]


async def test_a_stick_with_print_files_is_offered_and_imported_into_the_queue(
    tmp_path: Path, http: aiohttp.ClientSession, stick: tuple[Path, dict[str, str]]
) -> None:
    _, props = stick
    d = Daemon(_config(tmp_path), _components())
    await d.start()
    try:
        base = f"https://127.0.0.1:{d.web.https_port}"
        auth = await admin_auth(http, base, d, PASSWORD)
        assert await _devices(http, base, auth) == []
        # The same loop device's real kernel uevent, without udev's USB properties: not a stick.
        usb, devnode = _usb(d), props["DEVNAME"]
        seen = usb.handled[devnode]
        await asyncio.to_thread(Path(props["DEVPATH"].join(["/sys", "/uevent"])).write_text, "change\n")
        await eventually(lambda: usb.handled[devnode] > seen, 5, "the loop device's uevent handled")
        assert await _devices(http, base, auth) == []
        _usb(d).handle("add", props)  # the event as udev delivers it for a USB stick
        dev_id = props["DEVNAME"].rsplit("/", 1)[-1]
        await eventually(lambda: _mounted(http, base, auth), 10, "the stick's files")
        (stick_json,) = await _devices(http, base, auth)
        assert (
            stick_json["id"] == dev_id and stick_json["kind"] == "stick" and stick_json["label"] == "PRINTS"
        )
        assert stick_json["devnode"] == props["DEVNAME"] and stick_json["mounted"] is True
        assert [f["name"] for f in stick_json["files"]] == ["desk organizer.gcode.3mf", "project.3mf"]

        async with http.post(base + f"/api/usb/devices/{dev_id}/import", json={}, headers=auth) as r:
            assert r.status == 200
            body = await r.json()
        assert [f["name"] for f in body["imported"]] == ["desk organizer.gcode.3mf"]
        assert body["imported"][0]["created"] is True
        assert body["errors"] == [
            {"name": "project.3mf", "error": "has no G-code: slice it and export the plate as a .gcode.3mf"}
        ]
        async with http.get(base + "/api/queue/files", headers=auth) as r:
            assert [f["name"] for f in (await r.json())["files"]] == ["desk organizer.gcode.3mf"]
        # Importing again keeps one copy.
        async with http.post(
            base + f"/api/usb/devices/{dev_id}/import",
            json={"files": ["desk organizer.gcode.3mf"]},
            headers=auth,
        ) as r:
            assert (await r.json())["imported"][0]["created"] is False
        async with http.post(base + "/api/usb/devices/nope/import", json={}, headers=auth) as r:
            assert r.status == 404
        # Unplugged: gone from the list.
        _usb(d).handle("remove", {"DEVNAME": props["DEVNAME"], "SUBSYSTEM": "block"})
        assert await _devices(http, base, auth) == []
    finally:
        await d.stop()


async def _mounted(http: aiohttp.ClientSession, base: str, auth: Mapping[str, str]) -> bool:
    devices = await _devices(http, base, auth)
    return bool(devices) and devices[0].get("mounted") is True


async def test_the_dashboard_offers_the_import_and_shows_the_led(
    tmp_path: Path, stick: tuple[Path, dict[str, str]]
) -> None:
    _, props = stick
    d = Daemon(_config(tmp_path), _components())
    await d.start()
    try:
        base = f"https://127.0.0.1:{d.web.https_port}"
        await d.store.users.create("admin", PASSWORD, "admin")
        async with chromium() as browser:
            errors: list[str] = []
            pg = await new_page(browser, errors)
            async with screenshot_on_failure(pg, "usb-import"):
                await login(pg, base, PASSWORD)
                led = pg.locator("[data-testid=panel-led]")
                await led.wait_for(state="visible")
                assert await led.get_attribute("data-pattern") == "ok"
                assert await led.get_attribute("title") == "Status LED: all ok"
                # A print finishes: the LED's pattern changes, and so does the dot (a `panel` event).
                view = {
                    "id": "x1c",
                    "link": {"state": "connected"},
                    "print": {"state": "FINISH", "job": "cube"},
                    "hms": [],
                }
                d.bus.publish(
                    Event(PRINTER_EVENT, "x1c", PrinterUpdate(changes={"print": view["print"]}, view=view))
                )
                await pg.locator("[data-testid=panel-led][data-pattern=attention]").wait_for()
                assert await pg.locator("[data-testid=usb-banner]").count() == 0
                _usb(d).handle("add", props)  # plugged in while the page is open
                text = pg.locator("[data-testid=usb-banner-text]")
                await text.wait_for(state="visible", timeout=15_000)
                assert await text.text_content() == "Import 2 files from USB stick PRINTS"
                await pg.click("[data-testid=usb-import]")
                await pg.locator("[data-testid=usb-banner]").wait_for(state="detached")
                await pg.get_by_text("1 file added to the queue.").wait_for()
                await pg.get_by_text("has no G-code").first.wait_for()
                await pg.goto(base + "/#/queue")
                # The queue's "add a job" picker offers the imported file.
                await pg.locator("option", has_text="desk organizer.gcode.3mf").wait_for(state="attached")
            assert errors == []
    finally:
        await d.stop()
    assert [f.name for f in await _files(tmp_path)] == ["desk organizer.gcode.3mf"]


async def _files(tmp_path: Path) -> list[Any]:
    d = Daemon(_config(tmp_path), _components())
    await d.start()
    try:
        assert d.queue is not None
        return await d.queue.list_files()
    finally:
        await d.stop()


@pytest.mark.skipif(os.path.exists(UDEV_CONTROL), reason="udev runs here")
async def test_without_udev_the_usb_component_fails_in_health_and_the_daemon_serves(
    tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    d = Daemon(_config(tmp_path))
    await d.start()
    try:
        error = "no udev here (no /run/udev/control): USB cameras and sticks are not noticed"
        await assert_failed_but_serving(http, d, "usb", error, "/api/usb/devices", PASSWORD)
    finally:
        await d.stop()
