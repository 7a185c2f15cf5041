"""A Klipper printer found by mDNS and added in one click: the daemon in one network namespace,
in the other the real Moonraker (in front of the stand-in Klippy) and its ``_moonraker._tcp``
announcement (real zeroconf). The dashboard, in real Chromium, reaches the daemon through a relay
whose far end is opened inside the daemon's namespace. Nothing reaches any other network."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bambu_edge.printers.virtual.moonraker import MoonrakerServer, free_port
from tests.conftest import REPO
from tests.integration.browser import chromium, login, new_page, screenshot_on_failure
from tests.integration.daemon_proc import DaemonProcess, NotifySocket, write_config
from tests.integration.netns import NetNs, VethPair, can_make_namespaces
from tests.integration.running_daemon import PASSWORD, add_admin

pytestmark = pytest.mark.skipif(can_make_namespaces() is not None, reason=str(can_make_namespaces()))


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


@contextlib.asynccontextmanager
async def relay_into(ns: NetNs, host: str, port: int) -> AsyncIterator[int]:
    """A loopback port here whose connections go to host:port inside ``ns`` (a socket keeps the
    namespace it was made in)."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            sock = await asyncio.to_thread(ns.call, socket.create_connection, (host, port), 10)
        except OSError:
            writer.close()
            return
        up_reader, up_writer = await asyncio.open_connection(sock=sock)
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()


async def test_a_moonraker_found_by_mdns_is_added_in_one_click(tmp_path: Path) -> None:
    cfg_path = tmp_path / "config.yaml"
    write_config(
        cfg_path,
        tmp_path / "data",
        [],
        extra={
            "web": {"bind": "0.0.0.0", "https_port": 0, "http_port": None},
            "discovery": {"ssdp": False, "mdns": True},
        },
    )
    add_admin(cfg_path)
    notify = NotifySocket(tmp_path / "notify.sock")
    with VethPair(subnet=214) as net:
        server = MoonrakerServer(
            tmp_path / "mr",
            host=net.b.address,
            port=free_port(),
            trusted_clients=(f"{net.a.address}/32",),
            prefix=("ip", "netns", "exec", net.b.name),
        )
        daemon: DaemonProcess | None = None
        peer: subprocess.Popen[str] | None = None
        try:
            await server.spawn()
            await asyncio.to_thread(net.b.call, asyncio.run, server.wait_up())
            daemon = await asyncio.to_thread(
                net.a.call,
                DaemonProcess,
                cfg_path,
                env={"NOTIFY_SOCKET": str(notify.path)},
                log_path=tmp_path / "d.log",
            )
            peer = net.b.call(
                subprocess.Popen,
                [sys.executable, "-m", "tests.integration.mdns_peer", net.b.address, str(server.port)],
                cwd=REPO,
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                text=True,
            )
            await asyncio.to_thread(notify.wait_for, "READY=1", 30)
            async with relay_into(net.a, net.a.address, daemon.https_port) as port, chromium() as browser:
                errors: list[str] = []
                pg = await new_page(browser, errors)
                base = f"https://127.0.0.1:{port}"
                async with screenshot_on_failure(pg, "discovery-klipper"):
                    await login(pg, base, PASSWORD, "/#/settings/printers")
                    found = pg.locator(
                        f"[data-testid=discovered-row][data-moonraker='{net.b.address}:{server.port}']"
                    )
                    await found.wait_for(timeout=30_000)
                    text = await found.inner_text()
                    assert "Voron" in text and "Klipper" in text and "@" not in text
                    await found.locator("[data-testid=discovered-use]").click()

                    form = pg.locator("[data-testid=printer-form]")
                    assert await form.locator("[data-testid=printer-type-input]").input_value() == "moonraker"
                    assert (
                        await form.locator("[data-testid=printer-host-input]").input_value() == net.b.address
                    )
                    assert await form.locator("[data-testid=printer-port-input]").input_value() == str(
                        server.port
                    )
                    assert await form.locator("[data-testid=printer-name-input]").input_value() == "Voron"
                    # A Klipper printer has no serial or access code to ask for.
                    assert not await form.locator("[data-testid=printer-code-input]").is_visible()
                    await form.locator("[data-testid=printer-save]").click()

                    row = pg.locator("[data-testid=printer-row][data-printer-id=voron]")
                    # A deadline, not a sleep: Moonraker in the other namespace answers within a
                    # second alone, but a busy CI machine has been seen to take more than 30 s.
                    await row.locator("[data-testid=link-state][data-state=connected]").wait_for(
                        timeout=60_000
                    )
                    address = await row.locator("[data-testid=printer-row-address]").inner_text()
                    assert address == f"Klipper · {net.b.address}:{server.port}"
                    # Now added: the announcement is listed as such, without a button to add it again.
                    await found.locator("[data-testid=discovered-configured]").wait_for(timeout=15_000)
                    assert await found.locator("[data-testid=discovered-use]").count() == 0
                assert errors == []
        finally:
            if peer is not None:
                assert peer.stdin is not None
                peer.stdin.close()
                peer.wait(10)
            if daemon is not None:
                daemon.stop()
            await server.close()
            notify.close()
    assert daemon is not None
    assert "Traceback" not in daemon.output, daemon.output[-3000:]
