"""The daemon's component list at work, in this process: an optional component that fails is shown
in GET /api/health with its error while the daemon serves; a core one stops start-up with one
message; a stop leaves no task and no child process behind."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bambu_edge import __version__
from bambu_edge.app import COMPONENTS, Daemon
from bambu_edge.component import Component, ComponentError, StartError
from bambu_edge.config import Config, WebConfig
from bambu_edge.discovery.config import DiscoveryConfig
from bambu_edge.web.openapi import build_spec
from tests.integration.waiting import dashboard_tls

SLEEPER = "import time; print('up', flush=True); time.sleep(60)"


class Camera(Component):
    """Starts a child, then finds no camera: the child must not outlive the failure."""

    name = "webcam"
    optional = True
    requires = ("printers",)
    children: list[asyncio.subprocess.Process] = []

    async def start(self) -> None:
        proc = await self.ctx.tasks.spawn_process(
            sys.executable, "-c", SLEEPER, stdout=asyncio.subprocess.PIPE
        )
        Camera.children.append(proc)
        assert proc.stdout is not None
        await proc.stdout.readline()
        raise ComponentError("no camera answers at 192.0.2.1:322")


class Snapshots(Component):
    """Needs the webcam: without it, it cannot run either."""

    name = "snapshots"
    optional = True
    requires = ("webcam",)


class Panel(Component):
    """A start that never ends: cut off after its timeout."""

    name = "panel"
    optional = True
    start_timeout_s = 0.3

    async def start(self) -> None:
        await asyncio.Event().wait()


class Power(Component):
    """Runs, with a background task and a child process of its own, and a fact for /api/health."""

    name = "plugs"  # not "power": the daemon has a real power component now
    optional = True
    tasks_seen: list[asyncio.Task[Any]] = []
    children: list[asyncio.subprocess.Process] = []

    async def start(self) -> None:
        Power.tasks_seen.append(self.ctx.tasks.spawn(asyncio.Event().wait(), name="power-poll"))
        Power.children.append(await self.ctx.tasks.spawn_process("sleep", "60"))

    def health(self) -> dict[str, Any]:
        return {"plugs": 2, "state": "not mine to set"}


def _config(tmp_path: Path) -> Config:
    return Config(
        data_dir=tmp_path / "data",
        web=WebConfig(bind="127.0.0.1", https_port=0, http_port=None),
        sections={"discovery": DiscoveryConfig(ssdp=False, mdns=False)},  # nothing on the LAN
    )


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=dashboard_tls())) as session:
        yield session


async def test_failing_optional_components_are_listed_in_health_while_the_daemon_serves(
    tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    Camera.children.clear()
    Power.children.clear()
    d = Daemon(_config(tmp_path), [*COMPONENTS, Camera, Snapshots, Panel, Power])
    await d.start()
    try:
        assert d.web is not None
        base = f"https://127.0.0.1:{d.web.https_port}"
        async with http.get(base + "/api/health") as r:
            assert r.status == 200
            body = await r.json()
        assert body["status"] == "ok" and body["version"] == __version__
        comps = body["components"]
        assert list(comps) == [*(c.name for c in COMPONENTS), "webcam", "snapshots", "panel", "plugs"]
        assert comps["store"] == {"state": "running", "optional": False, "error": None}
        assert comps["web"] == {"state": "running", "optional": False, "error": None}
        assert comps["ws"] == {"state": "running", "optional": True, "error": None, "clients": 0}
        assert comps["webcam"] == {
            "state": "failed",
            "optional": True,
            "error": "no camera answers at 192.0.2.1:322",
        }
        assert comps["snapshots"] == {
            "state": "failed",
            "optional": True,
            "error": "needs webcam, which did not start",
        }
        assert comps["panel"] == {"state": "failed", "optional": True, "error": "did not start within 0.3 s"}
        # A component's own facts never overwrite the daemon's.
        assert comps["plugs"] == {"state": "running", "optional": True, "error": None, "plugs": 2}
        # The failed camera's child process did not outlive its failed start.
        (child,) = Camera.children
        assert child.returncode is not None
        # The rest of the daemon works: setup answers, and the API description lists the routes.
        async with http.get(base + "/api/setup") as r:
            assert r.status == 200 and await r.json() == {"needs_admin": True}
        paths = build_spec(d.web.app)["paths"]
        assert {"/api/health", "/api/printers", "/api/history", "/api/queue", "/api/ws"} <= set(paths)
        (task,) = Power.tasks_seen
        assert not task.done()
    finally:
        await d.stop()
    assert task.cancelled()
    (sleeper,) = Power.children
    assert sleeper.returncode is not None  # terminated and reaped by the stop
    assert d.health()["plugs"]["state"] == "stopped"
    assert d.health()["webcam"]["state"] == "failed"


class Broken(Component):
    name = "license"  # core: the daemon must not run without it

    async def start(self) -> None:
        raise ComponentError("the licence file /etc/bambu-edge/licence is unreadable")


async def test_a_failing_core_component_stops_start_up_with_one_message(tmp_path: Path) -> None:
    web_index = next(i for i, c in enumerate(COMPONENTS) if c.name == "web")
    components = [*COMPONENTS[:web_index], Broken, *COMPONENTS[web_index:]]
    d = Daemon(_config(tmp_path), components)
    with pytest.raises(StartError) as e:
        await d.start()
    assert str(e.value) == "license: the licence file /etc/bambu-edge/licence is unreadable"
    assert e.value.component == "license"
    health = d.health()
    assert health["license"]["state"] == "failed"
    # What had started is stopped again; what comes after it never started.
    assert health["store"]["state"] == "stopped" and health["printers"]["state"] == "stopped"
    assert health["web"]["state"] == "stopped" and d.web is None
