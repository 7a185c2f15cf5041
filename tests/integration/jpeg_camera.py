"""A P1-style camera for the tests: a TLS server on loopback speaking the port-6000 framing
(protocol/BAMBU.md section 8) with real JPEG frames made by ffmpeg.

It checks the 80-byte login (user ``bblp`` + the access code; a wrong one gets no frames and a
close, as on the printer) and then sends 16-byte headers and JPEGs at ``fps``. ``connections``
counts the TLS connections it accepted, ``streaming`` the ones being sent frames now."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import struct
import subprocess
from pathlib import Path

from bambu_edge.certs import KeyPair


def make_jpegs(directory: Path, count: int = 8, size: str = "1280x720") -> list[bytes]:
    """``count`` different 1280x720 JPEG frames of ffmpeg's test pattern."""
    directory.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
         f"testsrc=size={size}:rate={count}", "-frames:v", str(count), "-c:v", "mjpeg",
         "-q:v", "5", str(directory / "frame%02d.jpg")],
        check=True, timeout=60,
    )  # fmt: skip
    return [p.read_bytes() for p in sorted(directory.glob("frame*.jpg"))]


class JpegCamera:
    def __init__(self, pair: KeyPair, workdir: Path, access_code: str, *, fps: float = 5.0):
        self.workdir = Path(workdir)
        self.access_code = access_code
        self.fps = fps
        self.frames = make_jpegs(self.workdir / "frames")
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        cert, key = self.workdir / "camera.crt", self.workdir / "camera.key"
        pair.write(cert, key)
        self.ctx.load_cert_chain(cert, key)
        self.port = 0
        self.connections = 0
        self.streaming = 0
        self.logins: list[tuple[str, str]] = []
        self.sent = 0
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port, ssl=self.ctx)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for t in list(self._handlers):
            t.cancel()
        for t in list(self._handlers):
            with contextlib.suppress(BaseException):
                await t
        if self._server is not None:
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        self.connections += 1
        try:
            login = await asyncio.wait_for(reader.readexactly(80), 10)
            size, kind, _flags, _zero = struct.unpack("<IIII", login[:16])
            user = login[16:48].rstrip(b"\0").decode(errors="replace")
            code = login[48:80].rstrip(b"\0").decode(errors="replace")
            self.logins.append((user, code))
            if (size, kind, user, code) != (0x40, 0x3000, "bblp", self.access_code):
                return  # the printer does not answer a bad login: no frames, then a close
            self.streaming += 1
            try:
                i = 0
                while True:
                    frame = self.frames[i % len(self.frames)]
                    writer.write(struct.pack("<IIII", len(frame), 0, 1, 0) + frame)
                    await writer.drain()
                    self.sent += 1
                    i += 1
                    await asyncio.sleep(1 / self.fps)
            finally:
                self.streaming -= 1
        except (OSError, asyncio.IncompleteReadError, TimeoutError, ssl.SSLError):
            pass
        except asyncio.CancelledError:
            pass  # stop(): the server owns this task and only wants it ended
        finally:
            self._handlers.discard(task)
            writer.close()
