"""The daemon's own RTSP client against GStreamer's RTSP server: a Digest login, a refused access
code, a dropped connection picked up again, and a stream that is not H.264 handed to ffmpeg. The
camera supervisor runs in the test's process (the whole daemon's camera path is test_camera.py)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bambu_edge.camera.fmp4 import boxes
from bambu_edge.camera.source import CameraSource
from bambu_edge.camera.supervisor import CameraAccess, CameraSupervisor, CameraUnavailable
from bambu_edge.camera.viewers import ViewerClosed, ViewerQueue
from bambu_edge.certs import make_server_cert
from bambu_edge.printers.backoff import Backoff
from bambu_edge.tasks import TaskSet
from tests.conftest import ACCESS_CODE
from tests.integration import waiting
from tests.integration.rtsp_camera import RtspCamera

eventually = functools.partial(waiting.eventually, every=0.1)


@contextlib.asynccontextmanager
async def camera(tmp_path: Path, **options: object) -> AsyncIterator[tuple[RtspCamera, ssl.SSLContext]]:
    pair = make_server_cert("camera", ["127.0.0.1"])
    cam = RtspCamera(tmp_path / "rtsp", pair, password=ACCESS_CODE, size="320x180", **options)  # type: ignore[arg-type]
    await asyncio.to_thread(cam.start)
    try:
        yield cam, ssl.create_default_context(cadata=pair.cert_pem.decode())
    finally:
        cam.stop()


@contextlib.asynccontextmanager
async def supervisor(
    port: int,
    trust: ssl.SSLContext,
    code: str = ACCESS_CODE,
    serial: str | None = None,
    live_view_off: bool = False,
) -> AsyncIterator[CameraSupervisor]:
    async def context() -> ssl.SSLContext:
        return trust

    tasks = TaskSet("test camera")
    sup = CameraSupervisor(
        "cam",
        CameraSource("rtsps", port=port),
        CameraAccess(
            host="127.0.0.1",
            access_code=code,
            context=context,
            serial=serial,
            live_view_disabled=lambda: live_view_off,
        ),
        tasks,
        idle_timeout=1.0,
        backoff=Backoff(initial=0.2, cap=0.5, stable_after=10.0),
    )
    try:
        yield sup
    finally:
        await sup.close()
        await tasks.close()


async def chunks(viewer: ViewerQueue, n: int, timeout: float = 20.0) -> list[bytes]:
    async with asyncio.timeout(timeout):
        return [await viewer.get() for _ in range(n)]


def kinds(chunk: bytes) -> list[str]:
    return [kind for kind, _s, _e in boxes(chunk)]


def sample_entry(init: bytes) -> str:
    """The codec of the init segment's video track: its stsd's first sample entry (avc1, hev1 ...)."""
    path = ["moov", "trak", "mdia", "minf", "stbl", "stsd"]
    start, end = 0, len(init)
    for name in path:
        start, end = next((s, e) for kind, s, e in boxes(init, start, end) if kind == name)
    return next(kind for kind, _s, _e in boxes(init, start + 8, end))  # past version/flags, count


async def test_a_digest_camera_streams_h264_remuxed_by_the_daemon(tmp_path: Path) -> None:
    async with camera(tmp_path, digest=True) as (cam, trust), supervisor(cam.port, trust) as sup:
        viewer = sup.attach()
        init, first, second = await chunks(viewer, 3)
        assert kinds(init) == ["ftyp", "moov"] and sample_entry(init) == "avc1"
        assert kinds(first) == ["moof", "mdat"] and kinds(second) == ["moof", "mdat"]
        assert sup.status()["state"] == "streaming" and sup.process is None  # no ffmpeg
        shot = await sup.snapshot()
        assert shot[:2] == b"\xff\xd8" and shot[-2:] == b"\xff\xd9"
        assert cam.clients == 1


async def test_a_refused_access_code_says_so(tmp_path: Path) -> None:
    async with camera(tmp_path) as (cam, trust), supervisor(cam.port, trust, code="wrong123") as sup:
        with pytest.raises(CameraUnavailable) as e:
            await sup.snapshot(timeout=10)
        assert "refused the access code (401 Unauthorized)" in str(e.value)
        assert "wrong123" not in str(e.value)
        status = sup.status()
        assert status["state"] == "error" and "401" in status["error"]


async def test_an_h2_with_the_lan_live_view_off_says_where_to_switch_it_on(tmp_path: Path) -> None:
    async with camera(tmp_path) as (cam, trust), supervisor(cam.port, trust, live_view_off=True) as sup:
        with pytest.raises(CameraUnavailable) as e:
            await sup.snapshot(timeout=10)
        assert e.value.code == "live_view_disabled" and "LAN Only Liveview" in str(e.value)
        assert sup.status()["error"] == str(e.value) and cam.clients == 0  # not even tried


@pytest.mark.parametrize("case", ["another certificate", "another serial"])
async def test_a_camera_that_is_not_the_printer_is_tls_mismatch(tmp_path: Path, case: str) -> None:
    async with camera(tmp_path) as (cam, trust):
        if case == "another certificate":
            other = make_server_cert("camera", ["127.0.0.1"])
            trust, serial = ssl.create_default_context(cadata=other.cert_pem.decode()), None
        else:
            trust.check_hostname, serial = False, "00M00A000000001"  # the CA mode: the leaf's CN is checked
        async with supervisor(cam.port, trust, serial=serial) as sup:
            with pytest.raises(CameraUnavailable) as e:
                await sup.snapshot(timeout=10)
            assert e.value.code == "tls_mismatch" and str(e.value).startswith("tls_mismatch")
            assert sup.status()["state"] == "error"


async def test_a_dropped_camera_connection_is_opened_again(tmp_path: Path) -> None:
    async with camera(tmp_path) as (cam, trust):
        # A door between the daemon and the camera that the test can slam.
        links: list[asyncio.StreamWriter] = []

        async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError):
                while data := await reader.read(65536):
                    writer.write(data)
                    await writer.drain()
            writer.close()

        async def door(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", cam.port)
            links.extend([writer, up_writer])
            await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

        server = await asyncio.start_server(door, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            async with supervisor(port, trust) as sup:
                viewer = sup.attach()
                await chunks(viewer, 2)
                for w in links:
                    w.transport.abort()
                # The viewer is told the stream ended; a new one gets a new stream's init segment.
                with pytest.raises(ViewerClosed):
                    await chunks(viewer, 1000)
                again = sup.attach()
                init, _ = await chunks(again, 2)
                assert kinds(init) == ["ftyp", "moov"]
                assert cam.clients == 2 and sup.starts == 2
        finally:
            server.close()


async def test_a_stream_that_is_not_h264_goes_to_ffmpeg(tmp_path: Path) -> None:
    async with camera(tmp_path, codec="h265") as (cam, trust), supervisor(cam.port, trust) as sup:
        viewer = sup.attach()
        init, fragment = await chunks(viewer, 2, timeout=30)
        assert kinds(init) == ["ftyp", "moov"] and sample_entry(init) in ("hev1", "hvc1")
        assert kinds(fragment) == ["moof", "mdat"]
        assert sup.process is not None and os.path.basename(
            Path(f"/proc/{sup.process.pid}/exe").resolve()
        ).startswith("ffmpeg")
        pid = sup.process.pid
        sup.detach(viewer)
    # The component's TaskSet reaped it on close.
    await eventually(lambda: not Path(f"/proc/{pid}").exists(), 10, "ffmpeg gone")
