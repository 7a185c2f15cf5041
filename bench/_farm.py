"""Shared set-up for the dashboard benches: the real daemon (child process) with N virtual printers on
one local mosquitto, a logged-in session, Chromium, and a byte-counting TCP relay.

Not a bench itself (``make bench`` skips files starting with _); ``bench/first_load.py``,
``time_to_live.py`` and ``ws_bytes.py`` use it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bambu_edge.demo.broker import LocalBroker  # noqa: E402
from bambu_edge.printers.virtual import VirtualPrinter, make_serial  # noqa: E402
from bambu_edge.web.api_auth import SESSION_COOKIE  # noqa: E402
from tests.integration.browser import chromium  # noqa: E402, F401 - for the benches
from tests.integration.daemon_proc import DaemonProcess, NotifySocket, write_config  # noqa: E402
from tests.integration.waiting import dashboard_tls, eventually  # noqa: E402

CODE = "12345678"
USER, PASSWORD = "bench", "bench-password-long"
# A mix like a small farm: full-report X1s and delta-sending P1/A1s.
MODELS = ("X1C", "P1S", "A1", "P1P", "X1C", "H2D", "P1S", "P2S", "A1", "X1")
JOBS = ("3DBenchy", "Gridfinity bin 2x3", "Cable clip", "Phone stand", "Vase spiral")


class CountingRelay:
    """A plain TCP relay (TLS passes through untouched) that counts the bytes it passes each way, so
    what is measured is what crosses the wire: TLS records, WebSocket framing and compression."""

    def __init__(self, upstream_host: str, upstream_port: int):
        self.upstream = (upstream_host, upstream_port)
        self.down = 0  # upstream -> client
        self.up = 0  # client -> upstream
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self.port = 0

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        # Closing the sockets ends the pipes; cancelling the handler tasks would make asyncio's
        # stream callbacks log the cancellation.
        for w in list(self._writers):
            w.close()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=5)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            writer.close()
            self._tasks.discard(task)
            return
        self._writers.update((writer, up_writer))

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter, downstream: bool) -> None:
            try:
                while data := await src.read(65536):
                    if downstream:
                        self.down += len(data)
                    else:
                        self.up += len(data)
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                with contextlib.suppress(Exception):
                    dst.close()

        try:
            await asyncio.gather(pipe(reader, up_writer, False), pipe(up_reader, writer, True))
        finally:
            self._tasks.discard(task)
            self._writers.difference_update((writer, up_writer))


@dataclass
class Farm:
    base: str
    token: str
    broker: LocalBroker
    printers: list[VirtualPrinter]
    daemon: DaemonProcess
    mqtt_relay: CountingRelay | None = None

    def cookie(self) -> dict:
        host = self.base.split("//", 1)[1].split(":")[0]
        return {"name": SESSION_COOKIE, "value": self.token, "domain": host, "path": "/", "secure": True,
                "httpOnly": True, "sameSite": "Strict"}  # fmt: skip


@contextlib.asynccontextmanager
async def farm(
    n: int, *, printing: bool = True, report_hz: float = 1.0, count_mqtt: bool = False
) -> AsyncIterator[Farm]:
    """The daemon with ``n`` virtual printers (printing, if asked), connected, and a session token."""
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        broker = LocalBroker(tmp_path / "broker", {"bblp": CODE}, server_cn="bench-broker")
        broker.start()
        relay = CountingRelay(broker.host, broker.port) if count_mqtt else None
        printers: list[VirtualPrinter] = []
        daemon: DaemonProcess | None = None
        sock: NotifySocket | None = None
        try:
            mqtt_port = await relay.start() if relay else broker.port
            models = list(itertools.islice(itertools.cycle(MODELS), n))
            serials = [make_serial(m) for m in models]
            entries = [
                {"id": f"p{i}", "name": f"{m} {i}", "host": broker.host, "mqtt_port": mqtt_port, "serial": s,
                 "access_code": CODE}
                for i, (m, s) in enumerate(zip(models, serials, strict=True))
            ]  # fmt: skip
            cfg_path = tmp_path / "config.yaml"
            write_config(cfg_path, tmp_path / "data", entries)
            cli = [sys.executable, "-m", "bambu_edge", "--config", str(cfg_path)]
            subprocess.run([*cli, "user", "add", USER], input=PASSWORD + "\n", text=True, check=True)
            for i, (m, s) in enumerate(zip(models, serials, strict=True)):
                vp = VirtualPrinter(
                    broker.host, broker.port, s, CODE, m, str(broker.ca_path), report_hz=report_hz
                )
                await vp.start()
                if printing:
                    await vp.simulate_print(JOBS[i % len(JOBS)], 3600, 240, start_fraction=(i * 0.09) % 0.9)
                printers.append(vp)
            sock = NotifySocket(tmp_path / "notify.sock").follow()
            daemon = DaemonProcess(cfg_path, env={"NOTIFY_SOCKET": str(sock.path)})
            await asyncio.to_thread(sock.wait_for, "READY=1", 30)
            base = f"https://127.0.0.1:{daemon.https_port}"
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=dashboard_tls())) as http:
                async with http.post(
                    f"{base}/api/auth/login", json={"username": USER, "password": PASSWORD}
                ) as r:
                    token = (await r.json())["token"]

                async def all_live() -> bool:
                    async with http.get(
                        f"{base}/api/printers", headers={"Authorization": f"Bearer {token}"}
                    ) as r:
                        views = await r.json()
                    return all(
                        v["link"]["state"] == "connected" and v["temps"]["nozzle"]["current"] for v in views
                    )

                await eventually(all_live, timeout=30, what="all virtual printers connected", every=0.2)
            yield Farm(base, token, broker, printers, daemon, relay)
        finally:
            if daemon is not None:
                daemon.stop()
            if sock is not None:
                sock.close()
            for vp in printers:
                await vp.stop()
            if relay is not None:
                await relay.stop()
            broker.stop()


def kb(n: float) -> str:
    return f"{n / 1024:7.1f} KB"
