"""A camera reached over HTTP (``camera: "http://..."``), the kind ffmpeg reads for the daemon: an
H.264 MPEG-TS stream made by ffmpeg, served at ``/live.ts`` at the pace it plays (as a camera sends
it live), from its start to each new connection. ``connections`` counts them."""

from __future__ import annotations

import asyncio
import ssl
import subprocess
from pathlib import Path

from aiohttp import web

SECONDS = 60
CHUNKS_PER_S = 10


def make_stream(path: Path, seconds: int = SECONDS) -> Path:
    if not path.exists():
        subprocess.run(
            ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", f"testsrc=size=320x240:rate=15:duration={seconds}",
             "-c:v", "libx264", "-preset", "ultrafast", "-g", "15", "-bf", "0", "-f", "mpegts", str(path)],
            check=True, timeout=120,
        )  # fmt: skip
    return path


class HttpCamera:
    def __init__(self, stream: Path, seconds: int = SECONDS, tls: ssl.SSLContext | None = None):
        """``tls``: serve HTTPS with this server context."""
        self.tls = tls
        self.data = stream.read_bytes()
        self.chunk = max(len(self.data) // (seconds * CHUNKS_PER_S), 188)
        self.connections = 0
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/live.ts", self._live)
        self._runner = web.AppRunner(app, shutdown_timeout=1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=self.tls)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"{'https' if self.tls else 'http'}://127.0.0.1:{port}/live.ts"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _live(self, request: web.Request) -> web.StreamResponse:
        self.connections += 1
        resp = web.StreamResponse(headers={"Content-Type": "video/mp2t"})
        await resp.prepare(request)
        try:
            for pos in range(0, len(self.data), self.chunk):
                await resp.write(self.data[pos : pos + self.chunk])
                await asyncio.sleep(1 / CHUNKS_PER_S)  # the camera's pace, not a test's wait
        except (ConnectionError, asyncio.CancelledError):
            pass
        return resp
