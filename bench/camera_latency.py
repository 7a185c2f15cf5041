"""Delay from a camera's frame to the browser's WebSocket (target p50 <= 500 ms), both sources.

JPEG (port-6000 TLS peer of the tests, 10 fps): every frame the peer sends carries its send time
(time.monotonic, this process) in a JPEG comment; the viewer reads it back from each message: exact.

H.264 (GStreamer RTSPS peer, 1280x720 30 fps, through the verified TLS relay, ffmpeg ``-c:v copy``
into 200 ms fMP4 fragments): the test pattern is live, so a frame's media time is its send time
after the first one. The origin is taken as the moment the relay's TCP connection to the camera
opened, before the TLS handshake and RTSP's DESCRIBE/SETUP/PLAY, so the camera sent its first frame
a little after it: the figures are an upper bound. Each fragment is timed by its newest frame
(``tfdt`` + the durations before it); its oldest frame is up to one fragment older. The viewer is
the first, so it starts the camera and sees ffmpeg's first fragment, whose first frame is the origin.

    python bench/camera_latency.py [--seconds 20]
"""

from __future__ import annotations

import argparse
import asyncio
import ssl
import statistics
import struct
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bambu_edge.camera import api, relay  # noqa: E402
from bambu_edge.camera.fmp4 import boxes  # noqa: E402
from bambu_edge.camera.source import CameraSource  # noqa: E402
from bambu_edge.camera.supervisor import CameraAccess, CameraSupervisor  # noqa: E402
from bambu_edge.certs import make_server_cert  # noqa: E402
from bambu_edge.tasks import TaskSet  # noqa: E402
from tests.integration.jpeg_camera import JpegCamera  # noqa: E402
from tests.integration.rtsp_camera import RtspCamera  # noqa: E402

CODE = "12345678"
STAMP = b"sent-at:"


class StampedFrames:
    """The JPEG peer's frame list: each frame taken from it carries the time it was taken (sent)."""

    def __init__(self, frames: list[bytes]):
        self.frames = frames

    def __len__(self) -> int:
        return len(self.frames)

    def __getitem__(self, i: int) -> bytes:
        note = STAMP + repr(time.monotonic()).encode()
        com = b"\xff\xfe" + struct.pack(">H", len(note) + 2) + note
        frame = self.frames[i]
        return frame[:2] + com + frame[2:]  # after SOI


def sent_at(jpeg: bytes) -> float | None:
    at = jpeg.find(STAMP, 0, 64)
    if at < 0:
        return None
    end = jpeg.index(b"\xff", at)
    return float(jpeg[at + len(STAMP) : end])


def timescale(init: bytes) -> int:
    def find(data: bytes, start: int, end: int, path: list[str]) -> int | None:
        for kind, s, e in boxes(data, start, end):
            if kind != path[0]:
                continue
            if len(path) == 1:
                version = data[s]
                return struct.unpack_from(">I", data, s + (20 if version == 1 else 12))[0]
            found = find(data, s, e, path[1:])
            if found is not None:
                return found
        return None

    scale = find(init, 0, len(init), ["moov", "trak", "mdia", "mdhd"])
    assert scale is not None, "no mdhd in the init segment"
    return scale


def frame_times(frag: bytes) -> tuple[int, int]:
    """Decode times (timescale units) of the first and the last sample of a moof + mdat fragment."""
    for kind, s, e in boxes(frag):
        if kind != "moof":
            continue
        for k, ts, te in boxes(frag, s, e):
            if k != "traf":
                continue
            base, default_dur, durations = 0, 0, []
            for kk, bs, _be in boxes(frag, ts, te):
                flags = struct.unpack_from(">I", frag, bs)[0] & 0xFFFFFF
                if kk == "tfdt":
                    base = struct.unpack_from(">Q" if frag[bs] == 1 else ">I", frag, bs + 4)[0]
                elif kk == "tfhd":
                    pos = bs + 8 + (8 if flags & 0x01 else 0) + (4 if flags & 0x02 else 0)
                    if flags & 0x08:
                        default_dur = struct.unpack_from(">I", frag, pos)[0]
                elif kk == "trun":
                    count = struct.unpack_from(">I", frag, bs + 4)[0]
                    pos = bs + 8 + (4 if flags & 0x01 else 0) + (4 if flags & 0x04 else 0)
                    per = 4 * bin(flags & 0xF00).count("1")
                    for _ in range(count):
                        durations.append(
                            struct.unpack_from(">I", frag, pos)[0] if flags & 0x100 else default_dur
                        )
                        pos += per
            return base, base + sum(durations[:-1])
    raise ValueError("no moof")


class _Cameras:
    def __init__(self, sup: CameraSupervisor):
        self.sup = sup

    async def camera(self, _pid: str) -> CameraSupervisor:
        return self.sup


async def serve(sup: CameraSupervisor) -> tuple[web.AppRunner, str]:
    app = web.Application()
    app.add_routes(api.routes(lambda: _Cameras(sup)))  # type: ignore[arg-type, return-value]
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"ws://127.0.0.1:{port}/api/printers/cam/camera/ws"


async def watch(url: str, seconds: float, on_message: Callable[[bytes, float], None]) -> None:
    end = time.monotonic() + seconds
    async with aiohttp.ClientSession() as s, s.ws_connect(url, max_msg_size=0) as ws:
        while (left := end - time.monotonic()) > 0:
            try:
                msg = await asyncio.wait_for(ws.receive(), left)
            except TimeoutError:
                break
            if msg.type != aiohttp.WSMsgType.BINARY:
                break
            on_message(msg.data, time.monotonic())


def report(name: str, delays: list[float]) -> None:
    if len(delays) < 2:
        print(f"{name:<44} too few samples ({len(delays)})")
        return
    ms = sorted(d * 1000 for d in delays)
    p95 = ms[min(len(ms) - 1, round(0.95 * (len(ms) - 1)))]
    print(f"{name:<44} p50 {statistics.median(ms):6.0f} ms  p95 {p95:6.0f} ms  ({len(ms)} samples)")


async def jpeg_latency(work: Path, seconds: float) -> list[float]:
    pair = make_server_cert("camera", ["127.0.0.1"])
    cam = JpegCamera(pair, work / "jpeg", CODE, fps=10)
    cam.frames = StampedFrames(cam.frames)  # type: ignore[assignment]
    await cam.start()
    tls = ssl.create_default_context(cadata=pair.cert_pem.decode())
    tasks = TaskSet("bench")
    sup = CameraSupervisor("cam", CameraSource("jpeg6000", port=cam.port), _access(tls), tasks)
    runner, url = await serve(sup)
    delays: list[float] = []

    def on_message(data: bytes, now: float) -> None:
        if (t := sent_at(data)) is not None:
            delays.append(now - t)

    try:
        await watch(url, seconds, on_message)
    finally:
        await sup.close()
        await tasks.close()
        await runner.cleanup()
        await cam.stop()
    return delays[1:]  # the first is the last frame kept for joiners


async def h264_latency(work: Path, seconds: float) -> list[float]:
    pair = make_server_cert("camera", ["127.0.0.1"])
    cam = RtspCamera(work / "rtsp", pair, password=CODE, size="1280x720", fps=30)
    await asyncio.to_thread(cam.start)
    tls = ssl.create_default_context(cadata=pair.cert_pem.decode())
    opened: list[float] = []
    connect = relay._connect

    async def timed_connect(host: str, port: int) -> Any:
        sock = await connect(host, port)
        opened.append(time.monotonic())
        return sock

    relay._connect = timed_connect  # type: ignore[assignment]
    tasks = TaskSet("bench")
    sup = CameraSupervisor("cam", CameraSource("rtsps", port=cam.port), _access(tls), tasks)
    runner, url = await serve(sup)
    delays: list[float] = []
    scale: list[int] = []
    origin: list[int] = []  # the first frame's decode time: ffmpeg's timeline need not start at 0

    def on_message(data: bytes, now: float) -> None:
        if data[4:8] == b"ftyp":
            scale.append(timescale(data))
            return
        first, newest = frame_times(data)
        if not origin:
            origin.append(first)
        delays.append(now - (opened[0] + (newest - origin[0]) / scale[0]))

    try:
        await watch(url, seconds, on_message)
    finally:
        relay._connect = connect  # type: ignore[assignment]
        await sup.close()
        await tasks.close()
        await runner.cleanup()
        cam.stop()
    return delays


def _access(tls: ssl.SSLContext) -> CameraAccess:
    async def context() -> ssl.SSLContext:
        return tls

    return CameraAccess(host="127.0.0.1", access_code=CODE, context=context)


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=20.0)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="camera-latency-"))
    runs: list[tuple[str, Callable[[Path, float], Awaitable[list[float]]]]] = [
        ("JPEG port 6000 -> WebSocket (exact)", jpeg_latency),
        ("H.264 RTSPS -> fMP4 WebSocket (upper bound)", h264_latency),
    ]
    print(f"frame -> WebSocket viewer delay, {args.seconds:g} s per source")
    for name, run in runs:
        report(name, await run(work, args.seconds))


if __name__ == "__main__":
    asyncio.run(main())
