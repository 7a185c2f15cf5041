"""A backup written to a USB stick: a real ext4 filesystem on a loop device, mounted, with a
bambu-edge/ folder (the stick of test_usb_udev.py). The file appears whole under its final name;
a stick remounted read-only and a full stick are refused in plain words, with nothing half-written
left on them."""

from __future__ import annotations

import asyncio
import errno
import os
import re
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import aiohttp

from bambu_edge.app import Daemon
from bambu_edge.backup.cli import known_schema
from bambu_edge.backup.restore import stage
from tests.integration.browser import chromium, login, new_page, screenshot_on_failure
from tests.integration.test_usb_udev import (  # noqa: F401 (fixtures)
    PASSWORD,
    _components,
    _config,
    _devices,
    _usb,
    http,
    stick,
)
from tests.integration.waiting import eventually
from tests.integration.web_stack import admin_auth


async def _post(client: aiohttp.ClientSession, url: str, auth: Mapping[str, str]) -> tuple[int, Any]:
    async with client.post(url, json={}, headers=auth) as r:
        return r.status, await r.json()


def _fill(path: Path) -> None:
    """Fill the filesystem to the last block (fsynced, so nothing is only reserved)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        for size in (1 << 20, 4096, 512):
            try:
                while True:
                    os.write(fd, os.urandom(size))
                    os.fsync(fd)
            except OSError as e:
                assert e.errno == errno.ENOSPC
    finally:
        os.close(fd)
    assert shutil.disk_usage(path.parent).free < 4096


def _check(archive: Path, into: Path) -> Any:
    with open(archive, "rb") as f:
        return stage(f, into, known_schema())


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


async def test_a_backup_is_written_to_the_stick_and_a_read_only_or_full_stick_is_refused(
    tmp_path: Path,
    http: aiohttp.ClientSession,  # noqa: F811
    stick: tuple[Path, dict[str, str]],  # noqa: F811
) -> None:
    mount, props = stick
    folder = mount / "bambu-edge"
    d = Daemon(_config(tmp_path), _components())
    await d.start()
    try:
        base = f"https://127.0.0.1:{d.web.https_port}"
        auth = await admin_auth(http, base, d, PASSWORD)
        _usb(d).handle("add", props)
        dev_id = props["DEVNAME"].rsplit("/", 1)[-1]

        async def ready() -> bool:
            devices = await _devices(http, base, auth)
            return bool(devices) and devices[0]["mounted"] and devices[0]["folder"] is True

        await eventually(ready, 10, "the stick mounted, with its folder")
        url = base + f"/api/usb/devices/{dev_id}/backup"
        status, body = await _post(http, url, auth)
        assert status == 200, body
        assert re.fullmatch(r"bambu-edge/backup-[a-z0-9-]+-\d{8}T\d{6}Z\.tar\.gz", body["file"])
        written = mount / body["file"]
        assert written.stat().st_size == body["size"] > 0
        assert _leftovers(folder) == []
        staged = await asyncio.to_thread(_check, written, tmp_path / "check")  # a whole, good backup
        assert staged.manifest.summary()["files"] == body["backup"]["files"]

        # Write-protected (remounted read-only): refused, the stick as it was.
        subprocess.run(["mount", "-o", "remount,ro", str(mount)], check=True)
        try:
            status, body = await _post(http, url, auth)
        finally:
            subprocess.run(["mount", "-o", "remount,rw", str(mount)], check=True)
        assert (status, body["error"]) == (409, "read_only")
        assert body["message"] == (
            "The USB stick PRINTS is read-only (write-protected, or mounted read-only): nothing was written."
        )

        # Full: refused, and the half-written temp file is gone.
        _fill(mount / "filler")
        status, body = await _post(http, url, auth)
        assert (status, body["error"]) == (507, "no_space"), body
        assert body["message"].startswith("The USB stick PRINTS is full")
        assert _leftovers(folder) == []
        assert [p.name for p in folder.glob("backup-*")] == [written.name]

        # A stick without the folder is not written to.
        (mount / "filler").unlink()
        subprocess.run(["rm", "-rf", str(folder)], check=True)
        await _usb(d)._scan(dev_id, str(mount))
        assert (await _devices(http, base, auth))[0]["folder"] is False
        status, body = await _post(http, url, auth)
        assert (status, body["error"]) == (409, "no_folder")
    finally:
        await d.stop()


async def test_the_usb_banner_writes_a_backup_to_the_stick(
    tmp_path: Path,
    stick: tuple[Path, dict[str, str]],  # noqa: F811
) -> None:
    mount, props = stick
    d = Daemon(_config(tmp_path), _components())
    await d.start()
    try:
        base = f"https://127.0.0.1:{d.web.https_port}"
        await d.store.users.create("admin", PASSWORD, "admin")
        async with chromium() as browser:
            errors: list[str] = []
            pg = await new_page(browser, errors)
            async with screenshot_on_failure(pg, "usb-backup"):
                await login(pg, base, PASSWORD)
                _usb(d).handle("add", props)  # plugged in while the page is open
                await pg.locator("[data-testid=usb-banner]").wait_for(timeout=15_000)
                await pg.click("[data-testid=usb-backup]")
                toast = pg.get_by_text("Backup written to the USB stick: bambu-edge/backup-")
                await toast.wait_for()
            assert errors == []
        assert len(list((mount / "bambu-edge").glob("backup-*.tar.gz"))) == 1
    finally:
        await d.stop()
