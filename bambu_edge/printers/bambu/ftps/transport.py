"""ftplib speaking implicit FTPS with TLS session reuse on the data channel, as Bambu printers
demand, in a worker thread whose sockets another thread can abort (``SocketGuard``)."""

from __future__ import annotations

import builtins
import contextlib
import ftplib
import select
import socket
import ssl
import threading
import time
from collections.abc import Callable
from typing import BinaryIO

from bambu_edge.printers.bambu.storage import PrinterFilesError

MAX_LISTING_BYTES = 8 * 1024 * 1024  # a hostile or broken server cannot make us buffer more
BLOCK_SIZE = 64 * 1024


class SocketGuard:
    """The sockets of one FTP session, so another thread can abort it.

    ``abort()`` shuts the sockets down, which wakes a worker blocked in connect/recv/send with an
    error (close() from another thread does not, on Linux). Closing goes through the same lock, so
    an abort never shuts down a file descriptor that was closed and reused meanwhile.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self.aborted = False

    def add(self, sock: socket.socket) -> None:
        with self._lock:
            if not self.aborted:
                self._sockets.add(sock)
                return
        sock.close()
        raise ConnectionAbortedError("printer file operation was cancelled")

    def close(self, sock: socket.socket | None) -> None:
        if sock is None:
            return
        with self._lock:
            self._sockets.discard(sock)
            sock.close()

    def forget(self, sock: socket.socket) -> None:
        """``sock`` was handed to an SSLSocket (its fd moved there); stop tracking the husk."""
        with self._lock:
            self._sockets.discard(sock)

    def abort(self) -> None:
        with self._lock:
            self.aborted = True
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    socket.socket.shutdown(sock, socket.SHUT_RDWR)  # raw syscall, leaves TLS state alone


class ImplicitFTPS(ftplib.FTP_TLS):
    """ftplib speaking implicit FTPS, as Bambu printers do on port 990.

    - The control socket is TLS from the first byte (no AUTH TLS).
    - Every data socket resumes the control connection's TLS session (``session=``), which the
      printers and vsftpd's ``require_ssl_reuse`` demand; without it they answer 522.
    - Passive mode only; sockets are registered with a SocketGuard so a cancel can interrupt them.
    - Transfers never wait for the server's TLS close_notify: printers do not send one.
    """

    def __init__(
        self,
        context: ssl.SSLContext,
        *,
        timeout: float = 20.0,
        server_hostname: str | None = None,
        guard: SocketGuard | None = None,
    ):
        super().__init__(context=context, timeout=timeout)
        self.server_hostname = server_hostname
        self.guard = guard or SocketGuard()

    # -- sockets --

    def _open(self, host: str, port: int) -> socket.socket:
        error: OSError | None = None
        for family, kind, proto, _, address in socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM):
            sock = socket.socket(family, kind, proto)
            try:
                self.guard.add(sock)  # before connect(): a cancel can interrupt a slow connect
                sock.settimeout(self.timeout)
                if self.source_address:
                    sock.bind(self.source_address)
                sock.connect(address)
                return sock
            except ConnectionAbortedError:
                raise
            except OSError as exc:
                self.guard.close(sock)
                error = exc
        raise error or OSError(f"cannot resolve {host}")

    def _secure(self, raw: socket.socket, session: ssl.SSLSession | None = None) -> ssl.SSLSocket:
        tls = self.context.wrap_socket(
            raw,
            server_hostname=self.server_hostname or self.host,
            session=session,
            do_handshake_on_connect=False,  # track the TLS socket first, so the handshake can be aborted
        )
        self.guard.forget(raw)
        self.guard.add(tls)
        try:
            tls.do_handshake()
        except BaseException:
            self.guard.close(tls)
            raise
        return tls

    def connect(
        self,
        host: str = "",
        port: int = 0,
        timeout: float = -999,
        source_address: tuple[str, int] | None = None,
    ) -> str:
        if host:
            self.host = host
        if port > 0:
            self.port = port
        if timeout != -999:
            self.timeout = timeout
        if source_address is not None:
            self.source_address = source_address
        raw = self._open(self.host, self.port)
        try:
            self.sock = self._secure(raw)
        except BaseException:
            self.guard.close(raw)
            raise
        self.af = self.sock.family
        self.file = self.sock.makefile("r", encoding=self.encoding)
        self.welcome = self.getresp()
        return self.welcome

    def ntransfercmd(self, cmd: str, rest: int | str | None = None) -> tuple[socket.socket, int | None]:
        if not self.passiveserver:
            raise ftplib.error_proto("only passive mode is supported")
        host, port = self.makepasv()
        raw = self._open(host, port)
        try:
            if rest is not None:
                self.sendcmd(f"REST {rest}")
            resp = self.sendcmd(cmd)
            if resp[0] == "2":  # some servers send a stray 2xx before the 150
                resp = self.getresp()
            if resp[0] != "1":
                raise ftplib.error_reply(resp)
            # The handshake only after the 150: the server accepts it once the command arrived.
            conn = self._secure(raw, session=self.sock.session) if self._prot_p else raw
        except BaseException:
            self.guard.close(raw)
            raise
        size = ftplib.parse150(resp) if resp[:3] == "150" else None
        return conn, size

    def close(self) -> None:
        file, self.file = self.file, None
        sock, self.sock = self.sock, None
        try:
            if file is not None:
                file.close()
        finally:
            self.guard.close(sock)

    # -- transfers --

    def read_into(
        self, cmd: str, sink: Callable[[bytes], object], limit: int | None = None
    ) -> tuple[int, int | None]:
        """Run a download-type command; returns (bytes received, size announced in the 150 reply)."""
        conn, announced = self.ntransfercmd(cmd)
        received = 0
        try:
            while data := conn.recv(BLOCK_SIZE):
                received += len(data)
                if limit is not None and received > limit:
                    raise PrinterFilesError(f"printer sent more than {limit} bytes for {cmd.split()[0]}")
                sink(data)
        finally:
            self.guard.close(conn)
        self.voidresp()
        return received, announced

    def lines(self, cmd: str) -> builtins.list[str]:
        buf = bytearray()
        self.read_into(cmd, buf.extend, MAX_LISTING_BYTES)
        return buf.decode(self.encoding, errors="replace").splitlines()

    def write_from(self, cmd: str, source: BinaryIO, on_chunk: Callable[[int], None]) -> None:
        conn, _ = self.ntransfercmd(cmd)
        try:
            while chunk := source.read(BLOCK_SIZE):
                conn.sendall(chunk)
                on_chunk(len(chunk))
            if isinstance(conn, ssl.SSLSocket):
                _send_close_notify(conn, self.timeout)
            # FIN, but keep the socket open until the server's reply: closing it with unread bytes
            # (a TLS 1.3 session ticket) sends a RST that can overtake the upload's tail (426).
            socket.socket.shutdown(conn, socket.SHUT_WR)
            self.voidresp()
        finally:
            self.guard.close(conn)

    def size_or_none(self, path: str) -> int | None:
        try:
            return self.size(path)
        except (ftplib.error_perm, ftplib.error_reply, ValueError):
            return None

    def quit_quietly(self) -> None:
        """QUIT and end TLS cleanly; a session that is already broken is just closed."""
        with contextlib.suppress(ftplib.Error, OSError, EOFError):
            self.voidcmd("QUIT")
            if isinstance(self.sock, ssl.SSLSocket):
                _send_close_notify(self.sock, self.timeout)


def _send_close_notify(conn: ssl.SSLSocket, timeout: float) -> None:
    """End an upload with TLS close_notify, without waiting for the server's.

    vsftpd on OpenSSL 3 fails an upload that ends in a bare TCP FIN ("426 Failure reading network
    stream"), while Bambu printers never answer close_notify, so a plain ``unwrap()`` would stall
    until the timeout. Non-blocking: send ours, stop when the only thing left is reading theirs.
    """
    conn.setblocking(False)
    deadline = time.monotonic() + timeout
    while True:
        try:
            conn.unwrap()
            return
        except ssl.SSLWantReadError:
            return
        except ssl.SSLWantWriteError:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([], [conn], [], remaining)[1]:
                raise TimeoutError("printer did not take the end of the upload") from None
