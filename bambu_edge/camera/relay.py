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

from bambu_edge.camera.tls_memory import BLOCK, RECEIVE_MAX, decrypt_available
from bambu_edge.printers.bambu.camera import check_serial
from bambu_edge.tasks import TaskSet

UP_BLOCK = 4 * 1024  # ffmpeg's side: RTSP requests and keep-alives
# A camera sends a stream of small records (an RTP packet and its 4-byte header each). Waking for
# each cost a Pi more than the bytes do: the relay reads what has arrived at most this often, one
# wake a batch while the stream flows. ffmpeg cuts 200 ms fragments, so this adds little delay.
BATCH_S = 0.2


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
        self._tasks = TaskSet(f"camera relay {host}:{port}")  # the accept loop and a task per connection

    async def start(self) -> int:
        lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        lsock.bind(("127.0.0.1", 0))
        lsock.listen(8)
        lsock.setblocking(False)
        self._listener = lsock
        self.local_port = lsock.getsockname()[1]
        self._tasks.spawn(self._accept_loop(lsock), name="camera-relay-accept")
        return self.local_port

    async def close(self) -> None:
        await self._tasks.close()  # each connection's task waits for its thread to end
        if self._listener is not None:
            self._listener.close()

    async def _accept_loop(self, lsock: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        while True:
            conn, _ = await loop.sock_accept(lsock)
            try:
                self._tasks.spawn(self._serve(conn), name="camera-relay")
            except RuntimeError:  # accepted as close() began: the set takes no more
                conn.close()
                return

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
                    raw = await connect_tcp(self.host, self.port)
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
                tls = _Tls(raw, ctx, self.host)
                tls.handshake()
                if self.serial is not None:
                    check_serial(tls.obj, self.serial)
            except Exception as e:
                _settle(loop, handshake, e)
                return
            _settle(loop, handshake, None)
            raw.settimeout(None)
            conn.setblocking(True)
            with contextlib.suppress(OSError, ValueError):
                _pump(tls, conn)
        finally:
            sockets.close_all()
            _settle(loop, handshake, ConnectionAbortedError("the camera relay was closed"))
            _settle(loop, finished, None)


class _Tls:
    """TLS over a blocking socket through memory buffers: one recv takes in every record that has
    arrived (an SSLSocket makes two syscalls per record, and a camera sends hundreds a second)."""

    def __init__(self, raw: socket.socket, ctx: ssl.SSLContext, host: str):
        self.raw = raw
        self.incoming, self.outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.obj = ctx.wrap_bio(self.incoming, self.outgoing, server_hostname=host)
        self._buf = bytearray(BLOCK)
        self._view = memoryview(self._buf)

    def handshake(self) -> None:
        while True:
            try:
                self.obj.do_handshake()
                break
            except ssl.SSLWantReadError:
                self.flush()
                if not self.receive():
                    raise ConnectionResetError(
                        "the camera closed the connection during the TLS handshake"
                    ) from None
            except ssl.SSLError:
                with contextlib.suppress(OSError):
                    self.flush()  # the alert: the camera learns why
                raise
        self.flush()

    def receive(self) -> int:
        """All the socket has (waiting for at least a byte) into the TLS engine, up to
        ``RECEIVE_MAX`` a call; 0 at the end. One recv a batch would cap the stream at one BLOCK
        per BATCH_S (2.6 Mbit/s), less than a camera may send."""
        n = self.raw.recv_into(self._view)
        total = n
        while n:
            self.incoming.write(self._view[:n])
            if n < BLOCK or total >= RECEIVE_MAX:
                break
            try:
                n = self.raw.recv_into(self._view, BLOCK, socket.MSG_DONTWAIT)
            except (BlockingIOError, InterruptedError):
                break
            total += n
        return total

    def flush(self) -> None:
        if self.outgoing.pending:
            self.raw.sendall(self.outgoing.read())

    def send(self, data: memoryview) -> None:
        self.obj.write(data)
        self.flush()


def _pump(tls: _Tls, conn: socket.socket) -> None:
    """Camera -> ffmpeg: the records of each ``BATCH_S`` in one write; ffmpeg -> camera likewise."""
    up = bytearray(UP_BLOCK)
    up_view = memoryview(up)
    watch = [tls.raw, conn]
    next_read = 0.0
    while True:
        wait = next_read - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        # A look first (no wait): while the stream flows, the batch is there after the sleep.
        readable = select.select(watch, [], [], 0)[0] or select.select(watch, [], [])[0]
        next_read = time.monotonic() + BATCH_S
        if tls.raw in readable:
            eof = not tls.receive()
            plain, ended = decrypt_available(tls.obj, tls.incoming)
            if plain:
                conn.sendall(plain)
            eof = eof or ended
            tls.flush()  # a key update or ticket reply, if the engine has one
            if eof:
                conn.shutdown(socket.SHUT_WR)  # ffmpeg reads the end of the stream
                return
        if conn in readable:
            got = conn.recv_into(up_view)
            if not got:
                return  # ffmpeg hung up
            tls.send(up_view[:got])


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


async def connect_tcp(host: str, port: int) -> socket.socket:
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
