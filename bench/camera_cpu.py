"""CPU per minute of watching a 1280x720 30 fps H.264 camera, our copy path against the MPEG1
transcode of the Node original, for 1 and 5 viewers, side by side in one run (target >= 20x less).

The camera is GStreamer's RTSPS server (tests/integration/rtsp_camera.py, x264 test pattern).
Ours: the camera supervisor (the daemon's own RTSP session, verified TLS, RTP depacketized and the
H.264 copied into fragmented MP4 in the daemon, no ffmpeg; each viewer written in the upstream's
callback) behind the camera WebSocket route of aiohttp.
Theirs: ``ffmpeg -i rtsps://... -f mpegts -codec:v mpeg1video -b:v 1500k -bf 0 pipe:1`` (ffmpeg's
own TLS, as the original) fanned out to the same number of WebSocket viewers by this process.
Counted: this process (the server side) + its ffmpeg child, from /proc; the viewers run in a
separate process and are not counted. Also prints the server's RSS per extra viewer.

    python bench/camera_cpu.py [--seconds 30]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import ssl
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from aiohttp import web

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from _proc import cpu_seconds  # noqa: E402  (bench/, the script's folder)

from bambu_edge.camera import api  # noqa: E402
from bambu_edge.camera.source import CameraSource  # noqa: E402
from bambu_edge.camera.supervisor import CameraAccess, CameraSupervisor  # noqa: E402
from bambu_edge.certs import make_server_cert  # noqa: E402
from bambu_edge.tasks import TaskSet  # noqa: E402
from tests.integration.rtsp_camera import RtspCamera  # noqa: E402

CODE = "12345678"


def own_cpu() -> float:
    return cpu_seconds(os.getpid())  # schedstat: ns, where getrusage counts in clock ticks


def rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


class _Cameras:
    """What the camera routes ask of the component: one camera."""

    def __init__(self, sup: CameraSupervisor):
        self.sup = sup

    async def camera(self, _pid: str) -> CameraSupervisor:
        return self.sup


async def viewers_process(url: str, n: int, seconds: float) -> asyncio.subprocess.Process:
    code = (
        "import asyncio, aiohttp, sys\n"
        "async def one(s, url, end):\n"
        "    async with s.ws_connect(url, max_msg_size=0) as ws:\n"
        "        while asyncio.get_running_loop().time() < end:\n"
        "            try: await asyncio.wait_for(ws.receive(), 1)\n"
        "            except asyncio.TimeoutError: pass\n"
        "async def main(url, n, secs):\n"
        "    end = asyncio.get_running_loop().time() + secs\n"
        "    async with aiohttp.ClientSession() as s:\n"
        "        await asyncio.gather(*(one(s, url, end) for _ in range(n)))\n"
        "asyncio.run(main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3])))\n"
    )
    return await asyncio.create_subprocess_exec(sys.executable, "-c", code, url, str(n), str(seconds))


async def measure(
    name: str, start_url: str, pid_of: Any, viewers: int, seconds: float, warmup: float = 4.0
) -> tuple[float, int]:
    proc = await viewers_process(start_url, viewers, seconds + warmup + 2)
    await asyncio.sleep(warmup)  # ffmpeg started, the stream flowing
    pid = pid_of()  # the ffmpeg child, if the path has one

    def child() -> float:
        return cpu_seconds(pid) if pid is not None else 0.0

    c0, f0 = own_cpu(), child()
    await asyncio.sleep(seconds)
    c1, f1 = own_cpu(), child()
    rss1 = rss_kb()
    await proc.wait()
    per_min = ((c1 - c0) + (f1 - f0)) * 60 / seconds
    print(
        f"{name:<34} viewers {viewers}: {per_min:6.2f} CPU s/min"
        f"  (server {(c1 - c0) * 60 / seconds:5.2f}, ffmpeg {(f1 - f0) * 60 / seconds:5.2f})"
    )
    return per_min, rss1


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=30.0)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="camera-cpu-"))
    pair = make_server_cert("camera", ["127.0.0.1"])
    cam = RtspCamera(work / "rtsp", pair, password=CODE, size="1280x720", fps=30)
    await asyncio.to_thread(cam.start)
    tls = ssl.create_default_context(cadata=pair.cert_pem.decode())

    async def context() -> ssl.SSLContext:
        return tls

    tasks = TaskSet("bench")
    access = CameraAccess(host="127.0.0.1", access_code=CODE, context=context)
    sup = CameraSupervisor("cam", CameraSource("rtsps", port=cam.port), access, tasks, idle_timeout=1.0)

    # The MPEG1 path of the Node original: one transcoding ffmpeg, its output to every viewer.
    mpeg1: dict[str, Any] = {"proc": None, "clients": set(), "lock": asyncio.Lock()}

    async def mpeg1_ws(request: web.Request) -> web.WebSocketResponse:
        # No permessage-deflate, as jsmpeg's relay (websocket-relay.js: perMessageDeflate false).
        ws = web.WebSocketResponse(compress=False)
        await ws.prepare(request)
        async with mpeg1["lock"]:  # one transcode, however many viewers arrive at once
            if mpeg1["proc"] is None:
                mpeg1["proc"] = await tasks.spawn_process(
                    "ffmpeg", "-hide_banner", "-loglevel", "error", "-rtsp_transport", "tcp",
                    "-i", f"rtsps://bblp:{CODE}@127.0.0.1:{cam.port}/streaming/live/1",
                    "-f", "mpegts", "-codec:v", "mpeg1video", "-b:v", "1500k", "-bf", "0", "pipe:1",
                    stdout=subprocess.PIPE,
                )  # fmt: skip
                tasks.spawn(pump(mpeg1["proc"]), name="mpeg1-pump")
        mpeg1["clients"].add(ws)
        async for _ in ws:
            pass
        mpeg1["clients"].discard(ws)
        return ws

    async def pump(proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        while data := await proc.stdout.read(64 * 1024):
            for ws in list(mpeg1["clients"]):
                if not ws.closed:
                    await ws.send_bytes(data)

    app = web.Application()
    app.add_routes(api.routes(lambda: _Cameras(sup)))  # type: ignore[arg-type, return-value]
    app.add_routes([web.get("/mpeg1/ws", mpeg1_ws)])
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    base = f"ws://127.0.0.1:{port}"
    print(f"1280x720 30 fps H.264 over RTSPS, {args.seconds:g} s per run, CPU seconds per minute")
    results: dict[tuple[str, int], float] = {}
    rss: dict[tuple[str, int], int] = {}
    try:
        for n in (1, 5):

            def ours_pid() -> int | None:
                return sup.process.pid if sup.process is not None else None

            results["copy", n], rss["copy", n] = await measure(
                "ours: copy to fMP4 (MSE)", f"{base}/api/printers/cam/camera/ws", ours_pid, n, args.seconds
            )
            await asyncio.sleep(2.5)  # idle timeout: the camera connection closes
            results["mpeg1", n], rss["mpeg1", n] = await measure(
                "Node original: MPEG1 transcode",
                f"{base}/mpeg1/ws",
                lambda: mpeg1["proc"].pid,
                n,
                args.seconds,
            )
            proc, mpeg1["proc"] = mpeg1["proc"], None
            await tasks.stop_process(proc)
        print()
        for n in (1, 5):
            ratio = results["mpeg1", n] / max(results["copy", n], 1e-9)
            print(
                f"viewers {n}: copy {results['copy', n]:.2f} vs MPEG1 {results['mpeg1', n]:.2f} CPU s/min -> {ratio:.1f}x less"
            )
        growth = (rss["copy", 5] - rss["copy", 1]) / 4
        print(
            f"server RSS, copy path: {rss['copy', 1]} kB with 1 viewer, {rss['copy', 5]} kB with 5: {growth:.0f} kB per viewer"
        )
    finally:
        await sup.close()
        await tasks.close()
        await runner.cleanup()
        cam.stop()


if __name__ == "__main__":
    asyncio.run(main())
