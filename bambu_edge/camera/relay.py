"""A loopback door for ffmpeg to the printer's RTSPS port, verified with the printer's trust.

ffmpeg does not verify TLS certificates, so it never talks to the LAN itself: it connects to
``rtsp://127.0.0.1:<port>`` here (RTSP interleaved over this one TCP connection, ``-rtsp_transport
tcp``), and each connection is carried over a TLS connection the daemon opened and verified with
the printer's pinned certificate, or its CA and serial. A certificate that is not trusted ends the
connection before ffmpeg (or the access code it sends) reaches the printer; ``last_error`` says why.

The bytes are carried by one thread per connection with plain blocking calls, not by the event
loop: a camera sends hundreds of small TLS records a second, and an asyncio round per record cost
the daemon more CPU than ffmpeg's own work. The loop connects (cancellable), the thread does the
handshake and the copying, and ``close()`` wakes a thread blocked in a call by shutting its sockets
down, then waits for it: no thread or socket outlives the relay.
"""

from __future__ import annotations

import asyncio
import contextlib
import select
import socket
import ssl
import threading
import time
from collections.abc import Awaitable, Callable

from bambu_edge.printers.bambu.camera import check_serial

BLOCK = 64 * 1024  # the most read from the camera before it is passed on to ffmpeg
UP_BLOCK = 4 * 1024  # ffmpeg's side: RTSP requests and keep-alives


class _Sockets:
    """One connection's sockets, so the loop can wake its thread (see ftps.transport.SocketGuard):
    shutdown() wakes a blocked recv/send/select where close() from another thread does not, and
    closing goes through the same lock, so an abort never hits a descriptor reused meanwhile."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self.aborted = False

    def add(self, sock: socket.socket) -> None:
        with self._lock:
            if not self.aborted:
                self._open.add(sock)
                return
        sock.close()
        raise ConnectionAbortedError("the camera relay was closed")

    def replace(self, old: socket.socket, new: socket.socket) -> None:
        """``old``'s descriptor now belongs to ``new`` (an SSLSocket made from it)."""
        with self._lock:
            self._open.discard(old)
        self.add(new)

    def abort(self) -> None:
        with self._lock:
            self.aborted = True
            for sock in self._open:
                with contextlib.suppress(OSError):
                    socket.socket.shutdown(sock, socket.SHUT_RDWR)  # the raw syscall, TLS state untouched

    def close_all(self) -> None:
        with self._lock:
            for sock in self._open:
                sock.close()
            self._open.clear()


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
        self._listener: socket.socket | None = None
        self._accepting: asyncio.Task[None] | None = None
        self._pipes: set[asyncio.Task[None]] = set()

    async def start(self) -> int:
        lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        lsock.bind(("127.0.0.1", 0))
        lsock.listen(8)
        lsock.setblocking(False)
        self._listener = lsock
        self.local_port = lsock.getsockname()[1]
        self._accepting = asyncio.create_task(self._accept_loop(lsock), name="camera-relay-accept")
        return self.local_port

    async def close(self) -> None:
        tasks = [t for t in (self._accepting, *self._pipes) if t is not None]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._listener is not None:
            self._listener.close()

    async def _accept_loop(self, lsock: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        while True:
            conn, _ = await loop.sock_accept(lsock)
            task = asyncio.create_task(self._serve(conn), name="camera-relay")
            self._pipes.add(task)
            task.add_done_callback(self._pipes.discard)

    async def _serve(self, conn: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        sockets = _Sockets()
        sockets.add(conn)
        handshake: asyncio.Future[None] = loop.create_future()
        finished: asyncio.Future[None] = loop.create_future()
        thread: threading.Thread | None = None
        try:
            try:
                ctx = await self.context()
                deadline = time.monotonic() + self.connect_timeout
                async with asyncio.timeout(self.connect_timeout):
                    raw = await _connect(self.host, self.port)
                sockets.add(raw)
                thread = threading.Thread(
                    target=self._carry,
                    args=(loop, sockets, conn, raw, ctx, deadline, handshake, finished),
                    name=f"camera-relay-{self.host}:{self.port}",
                    daemon=True,
                )
                thread.start()
                await asyncio.shield(handshake)
            except asyncio.CancelledError:
                raise
            except Exception as e:  # unreachable, untrusted, no pin yet: ffmpeg only sees a close
                self.last_error = e
                return
            self.connections += 1
            self.last_error = None
            await asyncio.shield(finished)
        except asyncio.CancelledError:
            pass  # close(): the relay owns this task and only wants it ended
        finally:
            sockets.abort()
            if thread is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.shield(finished)  # the thread closes its sockets on the way out
                if handshake.done() and not handshake.cancelled():
                    handshake.exception()  # read, so a close() mid-handshake logs nothing
            sockets.close_all()

    def _carry(
        self,
        loop: asyncio.AbstractEventLoop,
        sockets: _Sockets,
        conn: socket.socket,
        raw: socket.socket,
        ctx: ssl.SSLContext,
        deadline: float,
        handshake: asyncio.Future[None],
        finished: asyncio.Future[None],
    ) -> None:
        """The connection's thread: the verified handshake, then the bytes both ways until either
        side closes (or ``close()`` shuts the sockets down)."""
        try:
            try:
                raw.setblocking(True)
                raw.settimeout(max(deadline - time.monotonic(), 0.001))
                tls = ctx.wrap_socket(raw, server_hostname=self.host, do_handshake_on_connect=False)
                sockets.replace(raw, tls)
                tls.do_handshake()
                if self.serial is not None:
                    check_serial(tls, self.serial)  # type: ignore[arg-type]  # SSLSocket: same getpeercert
            except Exception as e:
                _settle(loop, handshake, e)
                return
            _settle(loop, handshake, None)
            conn.setblocking(True)
            tls.setblocking(False)  # a read never waits for the rest of a record
            with contextlib.suppress(OSError, ValueError):
                _pump(tls, conn)
        finally:
            sockets.close_all()
            _settle(loop, handshake, ConnectionAbortedError("the camera relay was closed"))
            _settle(loop, finished, None)


def _pump(tls: ssl.SSLSocket, conn: socket.socket) -> None:
    """Camera -> ffmpeg: every record already received in one write; ffmpeg -> camera as it comes."""
    down = bytearray(BLOCK)
    down_view = memoryview(down)
    up = bytearray(UP_BLOCK)
    up_view = memoryview(up)
    watch = [tls, conn]
    while True:
        readable = [tls] if tls.pending() else select.select(watch, [], [])[0]
        if tls in readable:
            n, eof = 0, False
            while n < BLOCK:
                try:
                    got = tls.recv_into(down_view[n:])
                except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                    break
                if not got:
                    eof = True
                    break
                n += got
            if n:
                conn.sendall(down_view[:n])
            if eof:
                conn.shutdown(socket.SHUT_WR)  # ffmpeg reads the end of the stream
                return
        if conn in readable:
            got = conn.recv_into(up_view)
            if not got:
                return  # ffmpeg hung up
            _send_tls(tls, up_view[:got])


def _send_tls(tls: ssl.SSLSocket, data: memoryview) -> None:
    while data:
        try:
            data = data[tls.send(data) :]
        except ssl.SSLWantWriteError:
            select.select([], [tls], [])
        except ssl.SSLWantReadError:
            select.select([tls], [], [])


def _settle(loop: asyncio.AbstractEventLoop, fut: asyncio.Future[None], error: BaseException | None) -> None:
    """Complete ``fut`` on its loop from the relay thread (once; later calls are no-ops)."""

    def done() -> None:
        if fut.done():
            return
        if error is None:
            fut.set_result(None)
        else:
            fut.set_exception(error)

    with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is waiting any more
        loop.call_soon_threadsafe(done)


async def _connect(host: str, port: int) -> socket.socket:
    """A TCP connection made on the loop, so cancelling it needs no thread to wake."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    error: OSError = OSError(f"no address for {host}")
    for family, kind, proto, _name, addr in infos:
        sock = socket.socket(family, kind, proto)
        sock.setblocking(False)
        try:
            await loop.sock_connect(sock, addr)
            return sock
        except OSError as e:
            sock.close()
            error = e
        except BaseException:
            sock.close()
            raise
    raise error
