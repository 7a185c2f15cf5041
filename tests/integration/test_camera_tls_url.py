"""A camera given as an ``rtsps://`` or ``https://`` URL: the daemon verifies it (the system's CA
store, or the camera's ``ca_file``); an RTSPS stream it remuxes itself, an HTTPS one ffmpeg reads
through the loopback relay, never TLS with verification off. The cameras are GStreamer's RTSPS
server and an HTTPS stream, with certificates from a CA of the test's own."""

from __future__ import annotations

import asyncio
import functools
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from bambu_edge.certs import make_ca, make_server_cert
from tests.conftest import ACCESS_CODE
from tests.integration import waiting
from tests.integration.daemon_proc import printer_entry, write_config
from tests.integration.http_camera import HttpCamera
from tests.integration.rtsp_camera import RtspCamera
from tests.integration.running_daemon import Farm, add_admin
from tests.integration.test_camera import ffmpeg_children
from tests.integration.waiting import dashboard_tls

eventually = functools.partial(waiting.eventually, every=0.25)


@pytest.fixture
async def url_cams(tmp_path: Path, broker: Any, ts_stream: Path) -> AsyncIterator[dict[str, Any]]:
    ca = make_ca("camera test CA")
    ca_file = tmp_path / "camera-ca.pem"
    ca_file.write_bytes(ca.cert_pem)
    pair = make_server_cert("camera", ["127.0.0.1"], issuer=ca)
    rtsp = RtspCamera(tmp_path / "rtsp", pair, password=ACCESS_CODE)
    await asyncio.to_thread(rtsp.start)
    pair.write(tmp_path / "http-cert.pem", tmp_path / "http-key.pem")
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(tmp_path / "http-cert.pem", tmp_path / "http-key.pem")
    http = HttpCamera(ts_stream, tls=server_tls)
    await http.start()
    url = f"rtsps://bblp:{ACCESS_CODE}@127.0.0.1:{rtsp.port}/streaming/live/1"
    trusted = printer_entry(broker, "00M00A000000021", ACCESS_CODE, "trusted") | {
        "camera": {"url": url, "ca_file": str(ca_file)}
    }
    system = printer_entry(broker, "00M00A000000022", ACCESS_CODE, "system") | {"camera": url}
    web = printer_entry(broker, "00M00A000000023", ACCESS_CODE, "web") | {
        "camera": {"url": http.url, "ca_file": str(ca_file)}
    }
    cfg_path = tmp_path / "config.yaml"
    cfg = write_config(cfg_path, tmp_path / "data", [trusted, system, web])
    cfg["cameras"] = {"idle_timeout_s": 2}
    cfg_path.write_text(yaml.safe_dump(cfg))
    add_admin(cfg_path)
    farm = Farm(tmp_path, broker, cfg_path, {}, {})
    farm.http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=dashboard_tls()))
    try:
        await farm.start_daemon()
        yield {"farm": farm, "rtsp": rtsp, "http": http}
    finally:
        await farm.close()
        await http.stop()
        rtsp.stop()
    farm.check_logs()  # the URL's password (the access code) never in the log


async def _first_message(farm: Farm, printer_id: str) -> tuple[aiohttp.ClientWebSocketResponse, bytes]:
    ws = await farm.http.ws_connect(f"{farm.https}/api/printers/{printer_id}/camera/ws", headers=farm.auth)
    async with asyncio.timeout(30):
        first = await ws.receive()
    assert first.type == aiohttp.WSMsgType.BINARY and first.data[4:8] == b"ftyp", first
    return ws, first.data


async def test_an_rtsps_url_is_verified_and_remuxed_by_the_daemon(url_cams: dict[str, Any]) -> None:
    farm, rtsp = url_cams["farm"], url_cams["rtsp"]
    ws, _ = await _first_message(farm, "trusted")
    try:
        status = await farm.ok("GET", "/api/printers/trusted/camera")
        assert (status["kind"], status["state"], status["codec"]) == ("url", "streaming", "h264")
        assert ffmpeg_children(farm.daemon.proc.pid) == [] and rtsp.clients == 1
    finally:
        await ws.close()


async def test_an_https_url_is_verified_by_the_daemon_and_ffmpeg_reads_loopback(
    url_cams: dict[str, Any],
) -> None:
    farm, http = url_cams["farm"], url_cams["http"]
    ws, _ = await _first_message(farm, "web")
    try:
        (pid,) = ffmpeg_children(farm.daemon.proc.pid)
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        inputs = [a.decode() for a in argv if b"://" in a]
        assert len(inputs) == 1 and inputs[0].startswith("http://127.0.0.1:")
        assert "https" not in inputs[0] and http.connections == 1
        status = await farm.ok("GET", "/api/printers/web/camera")
        assert (status["kind"], status["state"], status["codec"]) == ("url", "streaming", "h264")
    finally:
        await ws.close()


async def test_an_rtsps_url_the_system_does_not_trust_is_tls_mismatch(url_cams: dict[str, Any]) -> None:
    farm = url_cams["farm"]
    status_code, body = await farm.call("GET", "/api/printers/system/camera/snapshot.jpg")
    assert status_code == 503 and body["error"] == "tls_mismatch"
    assert "127.0.0.1:" in body["message"] and "system trusts" in body["message"]
    assert ACCESS_CODE not in body["message"]
    status = await farm.ok("GET", "/api/printers/system/camera")
    assert status["state"] == "error" and status["error"].startswith("tls_mismatch")
