"""Cameras through the real daemon, with real cameras: GStreamer's RTSPS server (an X1C's camera,
Basic auth bblp + access code, the printer's certificate; remuxed by the daemon itself) and the
port-6000 TLS JPEG camera of a P1S, each presenting the certificate the printer's MQTT link pinned,
and an HTTP camera that ffmpeg reads for the daemon."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from bambu_edge.camera.fmp4 import boxes
from bambu_edge.certs import make_server_cert
from bambu_edge.printers.virtual import VirtualPrinter
from tests.conftest import ACCESS_CODE
from tests.integration import waiting
from tests.integration.daemon_proc import printer_entry, write_config
from tests.integration.http_camera import HttpCamera
from tests.integration.jpeg_camera import JpegCamera
from tests.integration.rtsp_camera import RtspCamera
from tests.integration.running_daemon import SERIAL_X1C, Farm, add_admin
from tests.integration.waiting import dashboard_tls

eventually = functools.partial(waiting.eventually, every=0.25)

SERIAL_P1S = "01P09C000000009"
IDLE_S = 2
SUB_HEIGHT = 180  # the X1C's sub-stream; RtspCamera sends 640x360


def ffmpeg_children(parent: int) -> list[int]:
    """The ffmpeg processes whose parent is ``parent`` (the daemon)."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1 : stat.rindex(")")]
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        if comm == "ffmpeg" and ppid == parent:
            out.append(int(entry))
    return out


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


@pytest.fixture
async def cams(
    tmp_path: Path, broker: Any, closed_port: int, ts_stream: Path
) -> AsyncIterator[dict[str, Any]]:
    rtsp = RtspCamera(tmp_path / "rtsp", broker.server_pair, password=ACCESS_CODE)
    await asyncio.to_thread(rtsp.start)
    http = HttpCamera(ts_stream)
    await http.start()
    jpeg = JpegCamera(broker.server_pair, tmp_path / "jpeg", ACCESS_CODE, fps=10)
    await jpeg.start()
    # A camera presenting another certificate than the one the printer's MQTT link pinned.
    stranger = JpegCamera(make_server_cert("01P09C000000099", ["127.0.0.1"]), tmp_path / "other", ACCESS_CODE)
    await stranger.start()
    x1c = printer_entry(broker, SERIAL_X1C, ACCESS_CODE, "x1c") | {
        "camera": {"kind": "rtsps", "port": rtsp.port, "substream": {"height": SUB_HEIGHT}}
    }
    p1s = printer_entry(broker, SERIAL_P1S, ACCESS_CODE, "p1s") | {
        "camera": {"kind": "jpeg6000", "port": jpeg.port}
    }
    gone = printer_entry(broker, SERIAL_P1S, ACCESS_CODE, "gone") | {
        "camera": {"kind": "jpeg6000", "port": closed_port}
    }
    gone["serial"] = "01P09C000000010"
    fake = printer_entry(broker, "01P09C000000012", ACCESS_CODE, "fake") | {
        "camera": {"kind": "jpeg6000", "port": stranger.port}
    }
    off = printer_entry(broker, "00M00A000000011", ACCESS_CODE, "off") | {"camera": "off"}
    web = printer_entry(broker, "00M00A000000013", ACCESS_CODE, "web") | {"camera": http.url}
    cfg_path = tmp_path / "config.yaml"
    cfg = write_config(cfg_path, tmp_path / "data", [x1c, p1s, gone, off, fake, web])
    cfg["cameras"] = {"idle_timeout_s": IDLE_S}
    cfg_path.write_text(yaml.safe_dump(cfg))
    add_admin(cfg_path)
    vps = {
        pid: VirtualPrinter(
            broker.host, broker.port, serial, ACCESS_CODE, model, str(broker.ca_path), report_hz=1.0
        )
        for pid, serial, model in (
            ("x1c", SERIAL_X1C, "X1C"),
            ("p1s", SERIAL_P1S, "P1S"),
            ("gone", "01P09C000000010", "P1S"),
            ("fake", "01P09C000000012", "P1S"),
            ("web", "00M00A000000013", "X1C"),
        )
    }
    for vp in vps.values():
        await vp.start()
    farm = Farm(tmp_path, broker, cfg_path, vps, {})
    farm.http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=dashboard_tls()))
    try:
        await farm.start_daemon()

        async def connected() -> bool:
            views = await farm.ok("GET", "/api/printers")
            return all(v["link"]["state"] == "connected" for v in views if v["id"] != "off")

        # The cameras are trusted like the MQTT link: once it has pinned the certificate.
        await eventually(connected, 30, "the printers connected")
        yield {"farm": farm, "rtsp": rtsp, "jpeg": jpeg, "stranger": stranger, "http": http}
    finally:
        await farm.close()
        await http.stop()
        await jpeg.stop()
        await stranger.stop()
        rtsp.stop()
    farm.check_logs()


async def _ws(farm: Farm, printer_id: str) -> aiohttp.ClientWebSocketResponse:
    return await farm.http.ws_connect(f"{farm.https}/api/printers/{printer_id}/camera/ws", headers=farm.auth)


async def _messages(ws: aiohttp.ClientWebSocketResponse, n: int, timeout: float = 20.0) -> list[bytes]:
    out = []
    async with asyncio.timeout(timeout):
        while len(out) < n:
            msg = await ws.receive()
            assert msg.type == aiohttp.WSMsgType.BINARY, msg
            out.append(msg.data)
    return out


def _box_types(data: bytes) -> list[str]:
    kinds, pos = [], 0
    while pos + 8 <= len(data):
        size = int.from_bytes(data[pos : pos + 4], "big")
        kinds.append(data[pos + 4 : pos + 8].decode("latin-1"))
        pos += max(size, 8)
    return kinds


async def test_five_viewers_share_one_rtsps_connection_remuxed_without_ffmpeg_closed_after_the_last(
    cams: dict[str, Any],
) -> None:
    farm, rtsp = cams["farm"], cams["rtsp"]
    assert await farm.ok("GET", "/api/printers/x1c/camera") == {
        "kind": "rtsps",
        "state": "idle",
        "viewers": 0,
        "codec": "h264",
        "error": None,
    }
    sockets = [await _ws(farm, "x1c") for _ in range(5)]
    try:
        for ws in sockets:
            first, second = await _messages(ws, 2)
            assert _box_types(first) == ["ftyp", "moov"]  # the init segment first
            assert track_size(first) == (640, 360)
            assert _box_types(second) == ["moof", "mdat"]
        status = await farm.ok("GET", "/api/printers/x1c/camera")
        assert (status["state"], status["viewers"], status["error"]) == ("streaming", 5, None)
        # A snapshot while streaming comes from the running upstream.
        status_code, jpeg = await farm.call("GET", "/api/printers/x1c/camera/snapshot.jpg")
        assert status_code == 200 and jpeg[:2] == b"\xff\xd8" and jpeg[-2:] == b"\xff\xd9"
        assert rtsp.clients == 1
        assert ffmpeg_children(farm.daemon.proc.pid) == []  # the daemon remuxes H.264 itself
    finally:
        for ws in sockets:
            await ws.close()
    await eventually(lambda: _viewers(farm, "x1c", 0), 10, "the viewers gone")
    status = await farm.ok("GET", "/api/printers/x1c/camera")
    assert status["state"] == "streaming" and rtsp.open_connections == 1  # until the idle timeout
    await eventually(
        lambda: rtsp.open_connections == 0, IDLE_S + 10, "the camera connection closed when idle"
    )
    await eventually(lambda: _state(farm, "x1c", "idle"), 5, "the camera idle again")
    assert rtsp.clients == 1


async def test_an_http_camera_is_read_by_one_ffmpeg_stopped_after_the_last_viewer(
    cams: dict[str, Any],
) -> None:
    farm, http = cams["farm"], cams["http"]
    assert (await farm.ok("GET", "/api/printers/web/camera"))["kind"] == "url"
    sockets = [await _ws(farm, "web") for _ in range(3)]
    try:
        for ws in sockets:
            first, second = await _messages(ws, 2)
            assert _box_types(first) == ["ftyp", "moov"] and track_size(first) == (320, 240)
            assert _box_types(second) == ["moof", "mdat"]
        assert len(ffmpeg_children(farm.daemon.proc.pid)) == 1 and http.connections == 1
    finally:
        for ws in sockets:
            await ws.close()
    pid = farm.daemon.proc.pid
    await eventually(lambda: not ffmpeg_children(pid), IDLE_S + 10, "ffmpeg stopped after the idle timeout")
    await eventually(lambda: _state(farm, "web", "idle"), 5, "the camera idle again")


async def _viewers(farm: Farm, pid: str, n: int) -> bool:
    return (await farm.ok("GET", f"/api/printers/{pid}/camera"))["viewers"] == n


async def _state(farm: Farm, pid: str, state: str) -> bool:
    return (await farm.ok("GET", f"/api/printers/{pid}/camera"))["state"] == state


async def test_a_killed_ffmpeg_is_restarted(cams: dict[str, Any]) -> None:
    farm = cams["farm"]
    ws = await _ws(farm, "web")
    await _messages(ws, 2)
    (first,) = ffmpeg_children(farm.daemon.proc.pid)
    os.kill(first, signal.SIGKILL)
    # The viewer is told the stream restarted; a new one gets the new ffmpeg's init segment.
    with contextlib.suppress(AssertionError, TimeoutError):
        await _messages(ws, 1000, timeout=10)
    await ws.close()
    ws = await _ws(farm, "web")
    try:
        first_msg = (await _messages(ws, 1, timeout=30))[0]
        assert _box_types(first_msg) == ["ftyp", "moov"]
        (second,) = ffmpeg_children(farm.daemon.proc.pid)
        assert second != first and not alive(first)
    finally:
        await ws.close()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
async def test_no_ffmpeg_outlives_the_daemon(cams: dict[str, Any], sig: int) -> None:
    farm = cams["farm"]
    ws = await _ws(farm, "web")
    await _messages(ws, 2)
    (ffmpeg,) = ffmpeg_children(farm.daemon.proc.pid)
    farm.daemon.signal(sig)
    await asyncio.to_thread(farm.daemon.wait, 15)
    await eventually(lambda: not alive(ffmpeg), 10, "ffmpeg gone with the daemon")
    await ws.close()
    farm.stop_daemon()


async def test_jpeg_camera_frames_pass_through_to_every_viewer_over_one_connection(
    cams: dict[str, Any],
) -> None:
    farm, jpeg = cams["farm"], cams["jpeg"]
    assert (await farm.ok("GET", "/api/printers/p1s/camera"))["codec"] == "mjpeg"
    sockets = [await _ws(farm, "p1s") for _ in range(5)]
    try:
        for ws in sockets:
            for frame in await _messages(ws, 3):
                assert frame in jpeg.frames  # unchanged, byte for byte
        async with farm.http.get(f"{farm.https}/api/printers/p1s/camera/mjpeg", headers=farm.auth) as r:
            assert r.status == 200
            assert r.headers["Content-Type"].startswith("multipart/x-mixed-replace")
            reader = aiohttp.MultipartReader.from_response(r)
            for _ in range(3):
                part = await reader.next()
                assert part is not None and part.headers["Content-Type"] == "image/jpeg"
                assert await part.read() in jpeg.frames
        status_code, shot = await farm.call("GET", "/api/printers/p1s/camera/snapshot.jpg")
        assert status_code == 200 and shot in jpeg.frames
        assert jpeg.connections == 1
        assert jpeg.logins == [("bblp", ACCESS_CODE)]
        # The MJPEG viewer is gone once its response could not be written; the sockets stay.
        await eventually(lambda: _viewers(farm, "p1s", 5), 10, "five viewers")
        assert (await farm.ok("GET", "/api/printers/p1s/camera"))["state"] == "streaming"
    finally:
        for ws in sockets:
            await ws.close()
    await eventually(lambda: jpeg.streaming == 0, IDLE_S + 10, "the camera connection closed when idle")


async def test_an_unreachable_camera_is_a_503_and_the_daemon_stays_healthy(cams: dict[str, Any]) -> None:
    farm = cams["farm"]
    status_code, body = await farm.call("GET", "/api/printers/gone/camera/snapshot.jpg")
    assert status_code == 503
    assert body["error"] == "camera_unavailable"
    assert "refused the connection" in body["message"]
    status = await farm.ok("GET", "/api/printers/gone/camera")
    assert status["state"] == "error" and "refused" in status["error"]
    health = await farm.ok("GET", "/api/health")
    assert health["status"] == "ok" and health["components"]["camera"]["state"] == "running"


async def test_a_camera_switched_off_is_404(cams: dict[str, Any]) -> None:
    farm = cams["farm"]
    assert (await farm.ok("GET", "/api/printers/off/camera"))["state"] == "off"
    status_code, body = await farm.call("GET", "/api/printers/off/camera/snapshot.jpg")
    assert status_code == 404 and body["error"] == "camera_off"
    status_code, _ = await farm.call("GET", "/api/printers/nope/camera")
    assert status_code == 404


async def test_a_camera_with_another_certificate_is_tls_mismatch_and_gets_no_access_code(
    cams: dict[str, Any],
) -> None:
    farm, stranger = cams["farm"], cams["stranger"]
    status_code, body = await farm.call("GET", "/api/printers/fake/camera/snapshot.jpg")
    assert status_code == 503 and body["error"] == "tls_mismatch"
    status = await farm.ok("GET", "/api/printers/fake/camera")
    assert status["state"] == "error" and status["error"].startswith("tls_mismatch")
    assert stranger.logins == []  # the handshake failed before the login was sent


def track_size(init: bytes) -> tuple[int, int]:
    """(width, height) of the video track, from the init segment's tkhd (16.16 fixed point)."""

    def find(data: bytes, start: int, end: int, path: list[str]) -> tuple[int, int]:
        for kind, s, e in boxes(data, start, end):
            if kind == path[0]:
                if len(path) == 1:
                    return int.from_bytes(data[e - 8 : e - 4], "big") >> 16, int.from_bytes(
                        data[e - 4 : e], "big"
                    ) >> 16
                return find(data, s, e, path[1:])
        raise AssertionError(f"no {path[0]} box")

    return find(init, 0, len(init), ["moov", "trak", "tkhd"])


async def test_the_sub_stream_is_one_scaled_re_encode_that_leaves_the_main_stream_alone(
    cams: dict[str, Any],
) -> None:
    farm, rtsp = cams["farm"], cams["rtsp"]
    main = await _ws(farm, "x1c")
    subs: list[aiohttp.ClientWebSocketResponse] = []
    try:
        init, _ = await _messages(main, 2)
        assert track_size(init) == (640, 360)
        subs = [
            await farm.http.ws_connect(
                f"{farm.https}/api/printers/x1c/camera/ws?stream=sub", headers=farm.auth
            )
            for _ in range(3)
        ]
        for ws in subs:
            first, second = await _messages(ws, 2, timeout=40)
            assert _box_types(first) == ["ftyp", "moov"]
            assert track_size(first) == (320, SUB_HEIGHT)  # scaled, the aspect kept
            assert _box_types(second) == ["moof", "mdat"]
        status = await farm.ok("GET", "/api/printers/x1c/camera?stream=sub")
        assert (status["state"], status["viewers"], status["codec"]) == ("streaming", 3, "h264")
        # One camera connection, remuxed once, and one encoder for all of them.
        assert rtsp.clients == 1
        assert len(ffmpeg_children(farm.daemon.proc.pid)) == 1
        main_status = await farm.ok("GET", "/api/printers/x1c/camera")
        assert (main_status["state"], main_status["viewers"]) == ("streaming", 1)  # the encoder is no viewer
    finally:
        for ws in subs:
            await ws.close()
    # The last sub-stream viewer gone: the encoder stops at once, the main stream goes on.
    pid = farm.daemon.proc.pid
    await eventually(lambda: not ffmpeg_children(pid), 15, "the encoder stopped")
    await eventually(lambda: _state_of(farm, "x1c?stream=sub", "idle"), 10, "the sub-stream idle")
    after = await _messages(main, 10, timeout=20)
    assert all(_box_types(m) == ["moof", "mdat"] for m in after)  # the same stream, not restarted
    assert not main.closed and rtsp.clients == 1
    await main.close()


async def _state_of(farm: Farm, path: str, state: str) -> bool:
    return (await farm.ok("GET", f"/api/printers/{path.replace('?', '/camera?', 1)}"))["state"] == state


async def test_a_sub_stream_is_offered_only_where_configured(cams: dict[str, Any]) -> None:
    farm = cams["farm"]
    status_code, body = await farm.call("GET", "/api/printers/p1s/camera?stream=sub")
    assert status_code == 404 and body["error"] == "no_substream"
    status_code, body = await farm.call("GET", "/api/printers/x1c/camera?stream=tiny")
    assert status_code == 400
    status_code, body = await farm.call("GET", "/api/printers/x1c/camera/snapshot.jpg?stream=sub")
    assert status_code == 400
