"""A loopback door for ffmpeg to the printer's RTSPS port, verified with the printer's trust.

ffmpeg does not verify TLS certificates, so it never talks to the LAN itself: it connects to
``rtsp://127.0.0.1:<port>`` here (RTSP interleaved over this one TCP connection, ``-rtsp_transport
tcp``), and each connection is carried over a TLS connection the daemon opened and verified with
the printer's pinned certificate, or its CA and serial. A certificate that is not trusted ends the
connection before ffmpeg (or the access code it sends) reaches the printer; ``last_error`` says why.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Awaitable, Callable

from bambu_edge.printers.bambu.camera import open_tls

BLOCK = 64 * 1024


class TlsRelay:
    def __init__(
        self,
        host: str,
        port: int,
        context: Callable[[], Awaitable[ssl.SSLContext]],
        *,
        serial: str | None = None,
        connect_timeout: float = 10.0,
    ):
        self.host, self.port = host, port
        self.context = context
        self.serial = serial
        self.connect_timeout = connect_timeout
        self.local_port = 0
        self.connections = 0  # upstream connections opened
        self.last_error: BaseException | None = None
        self._server: asyncio.Server | None = None
        self._pipes: set[asyncio.Task[None]] = set()

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.local_port = self._server.sockets[0].getsockname()[1]
        return self.local_port

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        pipes = list(self._pipes)
        for t in pipes:
            t.cancel()
        await asyncio.gather(*pipes, return_exceptions=True)
        if self._server is not None:
            with contextlib.suppress(OSError):
                await self._server.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._pipes.add(task)
        try:
            try:
                ctx = await self.context()
                up_reader, up_writer = await open_tls(
                    self.host, self.port, ctx, serial=self.serial, timeout=self.connect_timeout
                )
            except Exception as e:  # unreachable, untrusted, no pin yet: ffmpeg only sees a close
                self.last_error = e
                return
            self.connections += 1
            self.last_error = None
            try:
                await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
            finally:
                up_writer.close()
        except asyncio.CancelledError:
            pass  # close(): the server owns this task and only wants it ended
        finally:
            self._pipes.discard(task)
            writer.close()


async def _pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
    try:
        while data := await src.read(BLOCK):
            dst.write(data)
            await dst.drain()
    except (OSError, ssl.SSLError):
        pass
    finally:
        with contextlib.suppress(OSError, RuntimeError):
            if dst.can_write_eof():
                dst.write_eof()
            else:
                dst.close()
