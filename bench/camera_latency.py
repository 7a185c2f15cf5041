"""Delay from a camera's frame to the browser (target p50 <= 500 ms), both sources.

JPEG (port-6000 TLS peer of the tests, 10 fps): every frame the peer sends carries its send time
(time.monotonic, this process) in a JPEG comment; the viewer reads it back from each message: exact,
up to the WebSocket viewer.

H.264 (GStreamer RTSPS peer, 1280x720 30 fps, ``--stamped``): each source frame carries the wall-clock
time it was made, painted into its pixels (gst_rtsp_server.py). The frames go the whole way: the
daemon's RTSP session (verified TLS, read on its 0.3 s beat), the remux into fMP4 fragments, the
camera WebSocket, and the dashboard's own player (web/js/camera-player.js, Media Source Extensions) in Chromium. For every
frame Chromium presents (``requestVideoFrameCallback``) the page reads the stamp back from the
pixels and takes its expected display time: source frame -> browser frame, per frame, exact to the
clock (one machine, one wall clock). The first seconds (start-up, the player finding the live edge)
are left out.

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

import aiohttp
from aiohttp import web

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bambu_edge.camera import api  # noqa: E402
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


class _Cameras:
    def __init__(self, sup: CameraSupervisor):
        self.sup = sup

    async def camera(self, _pid: str) -> CameraSupervisor:
        return self.sup


async def serve(sup: CameraSupervisor, extra: list[web.RouteDef] | None = None) -> tuple[web.AppRunner, str]:
    app = web.Application()
    app.add_routes(api.routes(lambda: _Cameras(sup)))  # type: ignore[arg-type, return-value]
    app.add_routes(extra or [])
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
    p99 = ms[min(len(ms) - 1, round(0.99 * (len(ms) - 1)))]
    print(
        f"{name:<44} p50 {statistics.median(ms):6.0f} ms  p95 {p95:6.0f} ms  p99 {p99:6.0f} ms"
        f"  ({len(ms)} samples)"
    )


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


PAGE = """<!doctype html><meta charset=utf-8>
<video id=v muted autoplay playsinline></video><canvas id=c></canvas>
<script type=module>
import { playMp4 } from '/js/camera-player.js';
const v = document.getElementById('v');
const g = document.getElementById('c').getContext('2d', { willReadFrequently: true });
window.delays = [];
window.frames = 0;
playMp4('cam', v, {});
const BITS = 32, WRAP = 2 ** 32;
function onFrame(_now, meta) {
  const shown = Math.round(performance.timeOrigin + meta.expectedDisplayTime);
  const block = v.videoWidth / BITS;
  g.canvas.width = v.videoWidth;
  g.canvas.height = 1;
  const y = Math.floor(block * 1.5);  // the middle row of stamps
  g.drawImage(v, 0, y, v.videoWidth, 1, 0, 0, v.videoWidth, 1);
  const px = g.getImageData(0, 0, v.videoWidth, 1).data;
  let stamp = 0;
  for (let i = 0; i < BITS; i++) stamp = stamp * 2 + (px[Math.floor((i + 0.5) * block) * 4] > 128 ? 1 : 0);
  let d = (((shown % WRAP) - stamp) % WRAP + WRAP) % WRAP;
  if (d > WRAP / 2) d -= WRAP;
  window.frames += 1;
  const b = v.buffered;
  window.delays.push([performance.now(), d, b.length ? b.end(b.length - 1) - v.currentTime : 0]);
  v.requestVideoFrameCallback(onFrame);
}
v.requestVideoFrameCallback(onFrame);
</script>"""
SETTLE_S = 4.0  # start-up and the player's first jump to the live edge are not the steady delay


async def h264_latency(work: Path, seconds: float) -> list[float]:
    from tests.integration.browser import chromium, new_page

    pair = make_server_cert("camera", ["127.0.0.1"])
    cam = RtspCamera(work / "rtsp", pair, password=CODE, size="1280x720", fps=30, stamped=True)
    await asyncio.to_thread(cam.start)
    tls = ssl.create_default_context(cadata=pair.cert_pem.decode())
    tasks = TaskSet("bench")
    sup = CameraSupervisor("cam", CameraSource("rtsps", port=cam.port), _access(tls), tasks)

    async def page(_request: web.Request) -> web.Response:
        return web.Response(text=PAGE, content_type="text/html")

    runner, url = await serve(sup, [web.get("/", page), web.static("/js", REPO / "web" / "js")])
    base = url.split("/api/")[0].replace("ws://", "http://")
    errors: list[str] = []
    try:
        async with chromium() as browser:
            pg = await new_page(browser, errors)
            await pg.goto(base + "/")
            await pg.wait_for_function("() => window.frames > 0", timeout=30_000)
            await asyncio.sleep(SETTLE_S + seconds)
            samples = await pg.evaluate("() => window.delays")
            shown = await pg.evaluate("() => [document.getElementById('v').videoWidth, window.frames]")
    finally:
        await sup.close()
        await tasks.close()
        await runner.cleanup()
        cam.stop()
    if errors:
        raise RuntimeError(f"the page failed: {errors}")
    start = samples[0][0] + SETTLE_S * 1000
    steady = [(d, lag) for t, d, lag in samples if t >= start]
    delays = [d / 1000 for d, _ in steady]
    lags = sorted(lag * 1000 for _, lag in steady)
    print(
        f"  Chromium showed {shown[1]} frames of {shown[0]} px width; {len(delays)} after the first"
        f" {SETTLE_S:g} s; the player's buffer ahead of the frame shown: p50 {statistics.median(lags):.0f} ms"
    )
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
        ("H.264 RTSPS -> Chromium frame (exact)", h264_latency),
    ]
    print(f"frame -> WebSocket viewer delay, {args.seconds:g} s per source")
    for name, run in runs:
        report(name, await run(work, args.seconds))


if __name__ == "__main__":
    asyncio.run(main())
