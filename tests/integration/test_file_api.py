"""The printer file browser API over real HTTPS, against real printer sides: a PrinterManager with
BambuLinks on mosquitto (with a virtual printer reporting) and vsftpd as the printers' FTPS storage,
presenting the same certificate as the MQTT port, as one real printer does."""

from __future__ import annotations

import asyncio
import os
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bambu_edge.bus import EventBus
from bambu_edge.config import Config, PrinterConfig, WebConfig
from bambu_edge.printers.manager import PrinterManager
from bambu_edge.printers.virtual import VirtualPrinter
from bambu_edge.store.db import Store
from bambu_edge.web.server import WebService
from tests.conftest import ACCESS_CODE, SERIAL
from tests.factories.threemf import PlateSpec, make_3mf
from tests.integration.vsftpd import VsftpdServer
from tests.integration.waiting import eventually
from tests.integration.web_stack import WebStack

pytestmark = pytest.mark.integration

ADMIN, PASSWORD = "admin", "correct horse battery"


class Farm:
    def __init__(
        self, svc: WebService, http: aiohttp.ClientSession, token: str, ftp: VsftpdServer, data: Path
    ):
        self.svc, self.http, self.ftp, self.data_dir = svc, http, ftp, data
        self.auth = {"Authorization": f"Bearer {token}"}
        self.base = f"https://127.0.0.1:{svc.https_port}"

    def url(self, path: str) -> str:
        return self.base + path

    async def files(self, printer: str = "p1", path: str | None = "/cache") -> tuple[int, Any]:
        params = {"path": path} if path is not None else {}
        async with self.http.get(
            self.url(f"/api/printers/{printer}/files"), params=params, headers=self.auth
        ) as r:
            return r.status, await r.json()


def _printer(pid: str, broker: Any, ftps_port: int, mqtt_port: int | None = None) -> PrinterConfig:
    return PrinterConfig(
        id=pid,
        name=pid.upper(),
        type="bambu",
        host=broker.host,
        serial=SERIAL,
        access_code=ACCESS_CODE,
        mqtt_port=mqtt_port or broker.port,
        ftps_port=ftps_port,
    )


@pytest.fixture
async def farm(tmp_path: Path, broker: Any, vsftpd_factory: Any, closed_port: int) -> AsyncIterator[Farm]:
    ftp = vsftpd_factory(server_cert=broker.server_pair, max_rate=4 * 1024 * 1024)
    stranger = vsftpd_factory()  # its own certificate: not the one the MQTT port showed
    data_dir = tmp_path / "data"
    config = Config(
        data_dir=data_dir,
        web=WebConfig(bind="127.0.0.1", https_port=0, http_port=None),
        printers=(
            _printer("p1", broker, ftp.port),
            _printer("p2", broker, stranger.port),
            _printer("p3", broker, ftp.port, mqtt_port=closed_port),  # nothing listens: offline
        ),
    )
    store = Store(config)
    await store.start()
    await store.users.create(ADMIN, PASSWORD, "admin")
    vp = VirtualPrinter(
        broker.host, broker.port, SERIAL, ACCESS_CODE, "P1S", str(broker.ca_path), report_hz=2.0
    )
    await vp.start()
    bus = EventBus()
    manager = PrinterManager(config, bus, store.pins)
    await manager.start()
    stack = WebStack(config, store, manager, bus)
    svc = stack.svc
    await stack.start()
    ctx = ssl.create_default_context(cafile=str(data_dir / "tls" / "server.crt"))
    http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ctx))
    try:
        for pid in ("p1", "p2"):
            link = manager.get(pid)
            await eventually(lambda link=link: link.link_state == "connected", 15, what=f"{pid} connected")
        async with http.post(
            f"https://127.0.0.1:{svc.https_port}/api/auth/login",
            json={"username": ADMIN, "password": PASSWORD},
        ) as r:
            token = (await r.json())["token"]
        yield Farm(svc, http, token, ftp, data_dir)
    finally:
        # Bounded: twice under heavy load this teardown hung for good (the suspect: a stop whose
        # aiomqtt exit waits for a DISCONNECT; wait_for's cancel is the second one that cuts it).
        for step in (http.close, stack.stop, manager.stop, vp.stop, store.stop):
            try:
                await asyncio.wait_for(step(), 15)
            except TimeoutError:
                print(f"teardown step {step.__qualname__} did not finish in 15 s")


def _disk_usage(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


async def _transfer_frames(ws: aiohttp.ClientWebSocketResponse, path: str, out: list[dict]) -> None:
    while True:
        msg = await ws.receive()
        if msg.type != aiohttp.WSMsgType.TEXT:
            return
        frame = msg.json()
        if frame.get("type") == "transfer" and frame.get("path") == path:
            out.append(frame)
            if frame["state"] in ("done", "failed"):
                return


async def test_upload_list_download_delete_with_progress(farm: Farm, tmp_path: Path) -> None:
    made = make_3mf(tmp_path / "cube.gcode.3mf", target_size=6_000_000, plates=[PlateSpec(layers=120)])
    payload = made.path.read_bytes()
    disk_before = _disk_usage(farm.data_dir)
    frames: list[dict] = []
    async with farm.http.ws_connect(farm.url("/api/ws"), headers=farm.auth) as ws:
        assert (await ws.receive_json(timeout=5))["type"] == "snapshot"
        watcher = asyncio.create_task(_transfer_frames(ws, "/cache/cube.gcode.3mf", frames))
        async with farm.http.put(
            farm.url("/api/printers/p1/files"),
            params={"path": "/cache/cube.gcode.3mf"},
            data=payload,
            headers=farm.auth,
        ) as r:
            assert r.status == 201, await r.text()
            assert await r.json() == {"path": "/cache/cube.gcode.3mf", "size": len(payload)}
        await asyncio.wait_for(watcher, 10)
    # The file is on the printer, whole, under its name; nothing was spooled on the unit.
    assert farm.ftp.path("/cache/cube.gcode.3mf").read_bytes() == payload
    assert [p.name for p in farm.ftp.path("/cache").iterdir()] == ["cube.gcode.3mf"]
    assert _disk_usage(farm.data_dir) - disk_before < len(payload) // 10
    # Progress: running frames (done growing) then one final "done", for the upload, with totals.
    assert frames[-1] | {"id": "p1"} == {
        "type": "transfer",
        "id": "p1",
        "path": "/cache/cube.gcode.3mf",
        "direction": "upload",
        "done": len(payload),
        "total": len(payload),
        "state": "done",
        "error": None,
    }
    running = [f["done"] for f in frames if f["state"] == "running"]
    assert running and running == sorted(running) and all(0 <= d <= len(payload) for d in running)

    status, listing = await farm.files()
    assert status == 200 and listing["path"] == "/cache"
    assert [(e["name"], e["size"], e["is_dir"], e["path"]) for e in listing["entries"]] == [
        ("cube.gcode.3mf", len(payload), False, "/cache/cube.gcode.3mf")
    ]
    status, root = await farm.files(path=None)
    assert status == 200 and root["path"] == "/" and [e["name"] for e in root["entries"]] == ["cache"]
    assert root["entries"][0]["is_dir"] is True

    async with farm.http.get(
        farm.url("/api/printers/p1/files/content"),
        params={"path": "/cache/cube.gcode.3mf"},
        headers=farm.auth,
    ) as r:
        assert r.status == 200
        assert r.headers["Content-Length"] == str(len(payload))
        assert r.headers["Content-Disposition"].startswith('attachment; filename="cube.gcode.3mf"')
        assert r.headers["X-Content-Type-Options"] == "nosniff"
        assert await r.read() == payload

    async with farm.http.delete(
        farm.url("/api/printers/p1/files"), params={"path": "/cache/cube.gcode.3mf"}, headers=farm.auth
    ) as r:
        assert r.status == 204
    assert not farm.ftp.path("/cache/cube.gcode.3mf").exists()
    status, listing = await farm.files()
    assert status == 200 and listing["entries"] == []


async def test_download_progress_events(farm: Farm) -> None:
    farm.ftp.path("/cache").mkdir(parents=True)
    blob = os.urandom(3_000_000)
    farm.ftp.path("/cache/big.gcode").write_bytes(blob)
    frames: list[dict] = []
    async with farm.http.ws_connect(farm.url("/api/ws"), headers=farm.auth) as ws:
        await ws.receive_json(timeout=5)
        watcher = asyncio.create_task(_transfer_frames(ws, "/cache/big.gcode", frames))
        async with farm.http.get(
            farm.url("/api/printers/p1/files/content"), params={"path": "/cache/big.gcode"}, headers=farm.auth
        ) as r:
            assert r.status == 200 and await r.read() == blob
        await asyncio.wait_for(watcher, 10)
    assert frames[-1]["state"] == "done" and frames[-1]["direction"] == "download"
    assert frames[-1]["done"] == frames[-1]["total"] == len(blob)


async def test_timelapses_newest_first_and_downloadable(farm: Farm) -> None:
    folder = farm.ftp.path("/timelapse")
    folder.mkdir(parents=True)
    videos = {
        "video_2025-11-20_08-00-00.mp4": os.urandom(2000),
        "video_2025-11-24_21-30-05.mp4": os.urandom(3000),
        "video_2025-11-22_12-00-00.mp4": os.urandom(1000),
    }
    for name, data in videos.items():
        (folder / name).write_bytes(data)
    (folder / "thumbnail").mkdir()  # printers keep previews in a sub-folder: not a video
    async with farm.http.get(farm.url("/api/printers/p1/timelapses"), headers=farm.auth) as r:
        assert r.status == 200
        entries = (await r.json())["entries"]
    assert [e["name"] for e in entries] == [
        "video_2025-11-24_21-30-05.mp4",
        "video_2025-11-22_12-00-00.mp4",
        "video_2025-11-20_08-00-00.mp4",
    ]
    newest = entries[0]
    assert newest["path"] == "/timelapse/video_2025-11-24_21-30-05.mp4" and newest["size"] == 3000
    async with farm.http.get(
        farm.url("/api/printers/p1/files/content"), params={"path": newest["path"]}, headers=farm.auth
    ) as r:
        assert r.status == 200 and r.headers["Content-Type"] == "video/mp4"
        assert await r.read() == videos[newest["name"]]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "../etc"),
        ("GET", "/cache/../../etc"),
        ("PUT", "/cache/../../x.3mf"),
        ("PUT", "/cache/a\r\nDELE x"),
        ("PUT", "/"),
        ("PUT", None),
        ("DELETE", "/cache\\..\\x"),
        ("DELETE", "/cache/\x00x"),
        ("GET_CONTENT", "/" + "x" * 300),
    ],
)
async def test_bad_paths_are_400_before_any_traffic(farm: Farm, method: str, path: str | None) -> None:
    url = farm.url("/api/printers/p1/files" + ("/content" if method == "GET_CONTENT" else ""))
    params = {"path": path} if path is not None else {}
    verb = "GET" if method == "GET_CONTENT" else method
    async with farm.http.request(
        verb, url, params=params, data=b"x" if verb == "PUT" else None, headers=farm.auth
    ) as r:
        assert r.status == 400, (method, path, r.status)
        body = await r.json()
        assert body["error"] == "bad_path" and body["message"]
    assert list(farm.ftp.root.iterdir()) == []


async def test_missing_things_are_404(farm: Farm) -> None:
    for verb, url, params in (
        ("GET", "/api/printers/nope/files", {"path": "/"}),
        ("GET", "/api/printers/p1/files", {"path": "/no/such/folder"}),
        ("GET", "/api/printers/p1/files/content", {"path": "/cache/none.3mf"}),
        ("DELETE", "/api/printers/p1/files", {"path": "/cache/none.3mf"}),
    ):
        async with farm.http.request(verb, farm.url(url), params=params, headers=farm.auth) as r:
            assert r.status == 404, (verb, url, r.status)
            body = await r.json()
            assert body["error"] == "not_found" and body["message"][0].isupper()


async def test_offline_printer_is_409(farm: Farm) -> None:
    for verb, url in (
        ("GET", "/api/printers/p3/files?path=/"),
        ("PUT", "/api/printers/p3/files?path=/cache/x.3mf"),
        ("GET", "/api/printers/p3/timelapses"),
    ):
        async with farm.http.request(
            verb, farm.url(url), data=b"x" if verb == "PUT" else None, headers=farm.auth
        ) as r:
            assert r.status == 409
            body = await r.json()
            assert body["error"] == "offline" and "not connected" in body["message"]


async def test_storage_with_another_certificate_is_a_plain_502(farm: Farm) -> None:
    status, body = await farm.files("p2", "/")
    assert status == 502
    assert body["error"] == "storage_error" and body["kind"] == "tls_mismatch"
    assert "certificate is not the trusted one" in body["message"] and ACCESS_CODE not in str(body)
    async with farm.http.put(
        farm.url("/api/printers/p2/files"),
        params={"path": "/cache/x.3mf"},
        data=b"payload",
        headers=farm.auth,
    ) as r:
        assert r.status == 502 and (await r.json())["kind"] == "tls_mismatch"


async def test_an_upload_cut_off_by_the_browser_leaves_nothing(farm: Farm) -> None:
    async def body() -> AsyncIterator[bytes]:
        for _ in range(20):
            yield os.urandom(64 * 1024)
        raise ConnectionResetError("the browser tab was closed")

    frames: list[dict] = []
    async with farm.http.ws_connect(farm.url("/api/ws"), headers=farm.auth) as ws:
        await ws.receive_json(timeout=5)
        watcher = asyncio.create_task(_transfer_frames(ws, "/cache/half.3mf", frames))
        with pytest.raises(aiohttp.ClientError):
            async with farm.http.put(
                farm.url("/api/printers/p1/files"),
                params={"path": "/cache/half.3mf"},
                data=body(),
                headers={**farm.auth, "Content-Length": str(10 * 1024 * 1024)},
            ) as r:
                await r.read()
        # The browser's error comes before the printer's session has even begun: wait for its end.
        await asyncio.wait_for(watcher, 15)
    assert frames[-1]["state"] == "failed" and frames[-1]["direction"] == "upload"
    # The next session removes what the cut one could not (the listing hides temp files).
    status, listing = await farm.files()
    assert (status, listing.get("entries")) in ((200, []), (404, None))
    # Neither the file nor a temp file stays on the printer.
    cache = farm.ftp.path("/cache")
    assert not cache.exists() or [p.name for p in cache.iterdir()] == []


async def test_a_printer_without_storage_is_409(farm: Farm, monkeypatch: pytest.MonkeyPatch) -> None:
    class NoStorage:  # a link type without FTPS storage (e.g. a future Klipper link)
        printer_id = "k1"
        link_state = "connected"

    real_get = farm.svc.manager.get
    monkeypatch.setattr(farm.svc.manager, "get", lambda pid: NoStorage() if pid == "k1" else real_get(pid))
    status, body = await farm.files("k1", "/")
    assert status == 409 and body["error"] == "no_storage"


async def test_an_abandoned_download_frees_the_printer(farm: Farm) -> None:
    path = "/timelapse/video_2025-11-24_21-30-05.mp4"
    farm.ftp.path("/timelapse").mkdir(parents=True)
    farm.ftp.path(path).write_bytes(os.urandom(64_000_000))  # 16 s at the printer's 4 MB/s
    frames: list[dict] = []
    async with farm.http.ws_connect(farm.url("/api/ws"), headers=farm.auth) as ws:
        await ws.receive_json(timeout=5)
        watcher = asyncio.create_task(_transfer_frames(ws, path, frames))
        async with farm.http.get(
            farm.url("/api/printers/p1/files/content"), params={"path": path}, headers=farm.auth
        ) as r:
            assert r.status == 200 and r.headers["Content-Length"] == "64000000"
            assert await r.content.read(64 * 1024)
            r.close()  # the user closed the tab after a moment
        await asyncio.wait_for(watcher, 60)  # a finished download would end "done", not "failed"
    assert frames[-1]["state"] == "failed" and frames[-1]["direction"] == "download"
    assert frames[-1]["done"] < 64_000_000 and "closed" in frames[-1]["error"]
    # The printer's one FTPS session is released: the browser keeps working for this printer.
    status, listing = await farm.files(path="/timelapse")
    assert status == 200 and [e["name"] for e in listing["entries"]] == ["video_2025-11-24_21-30-05.mp4"]
