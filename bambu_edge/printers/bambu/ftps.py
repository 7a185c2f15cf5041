"""Printer storage over implicit FTPS (port 990) with TLS session reuse on the data channel.

Bambu printers (like vsftpd with ``require_ssl_reuse=YES``) refuse a data connection whose TLS
session is not the control connection's. asyncio cannot resume a TLS session, so aioftp cannot
talk to them; the standard library's ftplib can, and it runs here in a worker thread
(``asyncio.to_thread``), one connection per call, at most one at a time per printer.
See docs/design-notes.md "Printer files over FTPS".
"""

from __future__ import annotations

import asyncio
import builtins
import calendar
import contextlib
import datetime as dt
import ftplib
import functools
import inspect
import logging
import os
import posixpath
import re
import secrets
import select
import socket
import ssl
import threading
import time
import unicodedata
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

from bambu_edge.printers.bambu.streams import Drain, FeedReader, PipeClosed, StallError

log = logging.getLogger(__name__)

T = TypeVar("T")
Progress = Callable[[int, int], None]
# An SSLContext, or a factory (plain or async) called on the event loop before every session.
ContextSource = ssl.SSLContext | Callable[[], ssl.SSLContext] | Callable[[], Awaitable[ssl.SSLContext]]

FTP_USER = "bblp"
TIMELAPSE_DIR = "/timelapse"
TIMELAPSE_EXTENSIONS = (".mp4", ".avi")
MAX_NAME_BYTES = 255  # FAT/exFAT and ext4 limit for one name
MAX_PATH_BYTES = 1024
MAX_LISTING_BYTES = 8 * 1024 * 1024  # a hostile or broken server cannot make us buffer more
BLOCK_SIZE = 64 * 1024
PROGRESS_INTERVAL = 0.1  # seconds between progress events (the last one always goes out)
TEMP_PREFIX = ".bambu-edge-"
TEMP_SUFFIX = ".part"

_TIMELAPSE_NAME = re.compile(r"^video_(\d{4})-(\d{2})-(\d{2})_(\d{2})-(\d{2})-(\d{2})\.(mp4|avi)$", re.I)


# --- errors ----------------------------------------------------------------------------------------


class PrinterFilesError(Exception):
    """A printer storage operation failed. ``str(err)`` is a plain sentence for the user; ``kind`` is
    a stable slug for the API (auth, not_found, storage_full, busy, timeout, unreachable, tls,
    tls_mismatch, bad_path, transfer, protocol); ``code`` is the FTP reply code when there was one."""

    def __init__(self, message: str, *, kind: str = "protocol", code: int | None = None):
        super().__init__(message)
        self.kind = kind
        self.code = code


class PrinterTLSError(PrinterFilesError):
    """The printer's certificate is not the trusted one (same trust as the MQTT link)."""

    def __init__(self, message: str):
        super().__init__(message, kind="tls_mismatch")


class UploadSourceError(PrinterFilesError):
    """The data being uploaded stopped coming (the browser went away, stalled, or sent too much)."""

    def __init__(self, message: str):
        super().__init__(message, kind="source")


class RemotePathError(PrinterFilesError, ValueError):
    """A remote path was refused before any network traffic."""

    def __init__(self, message: str):
        super().__init__(message, kind="bad_path")


# --- remote paths ----------------------------------------------------------------------------------


def normalize_remote_path(path: str, *, file: bool = True) -> str:
    """``path`` as an absolute, normalised printer path, or RemotePathError.

    Refuses what could escape the storage root or smuggle FTP commands: ``..``, NUL, CR/LF and other
    control characters (command injection on the control channel), backslashes (Windows-style
    separators some servers honour), over-long names. ``file=True`` also refuses the bare root.
    """
    if not isinstance(path, str):
        raise RemotePathError("remote path must be text")
    if any(c in path for c in "\0\r\n"):
        raise RemotePathError("remote path must not contain NUL or line breaks")
    if any(unicodedata.category(c) == "Cc" for c in path):
        raise RemotePathError("remote path must not contain control characters")
    if "\\" in path:
        raise RemotePathError("remote path must use '/' as separator, not '\\'")
    try:
        size = len(path.encode("utf-8"))
    except UnicodeEncodeError:
        raise RemotePathError("remote path is not valid text") from None
    if size > MAX_PATH_BYTES:
        raise RemotePathError(f"remote path is longer than {MAX_PATH_BYTES} bytes")
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise RemotePathError("remote path must not contain '..'")
    for part in parts:
        if len(part.encode("utf-8")) > MAX_NAME_BYTES:
            raise RemotePathError(f"file name is longer than {MAX_NAME_BYTES} bytes")
    if file and not parts:
        raise RemotePathError("remote path must name a file, not the storage root")
    return "/" + "/".join(parts)


# --- listings --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RemoteFile:
    name: str
    path: str  # absolute printer path
    size: int | None
    modified: float | None  # epoch seconds (UTC); None when the listing gives no usable time
    is_dir: bool


_MONTHS = {m.lower(): i for i, m in enumerate(calendar.month_abbr) if m}
_UNIX_LINE = re.compile(
    r"^(?P<type>[-dlcbps])\S{9}\S*\s+.*?(?P<size>\d+)\s+(?P<mon>[A-Za-z]{3})\s+(?P<day>\d{1,2})\s+"
    r"(?P<when>\d{1,2}:\d{2}|\d{4})\s(?P<name>.+)$"
)
_DOS_LINE = re.compile(
    r"^(?P<date>\d{2}-\d{2}-\d{2,4})\s+(?P<time>\d{1,2}:\d{2}\s*[AaPp][Mm])\s+(?P<size><DIR>|\d+)\s+(?P<name>.+)$"
)


def _usable_name(name: str) -> bool:
    # Names come from the printer: never let one carry a separator or a control character onward.
    return (
        name not in ("", ".", "..")
        and "/" not in name
        and "\\" not in name
        and not any(unicodedata.category(c) == "Cc" for c in name)
        and not (name.startswith(TEMP_PREFIX) and name.endswith(TEMP_SUFFIX))
    )


def _unix_time(mon: str, day: str, when: str, now: dt.datetime) -> float | None:
    month = _MONTHS.get(mon.lower())
    if month is None:
        return None
    try:
        if ":" in when:  # "Nov 25 01:40": within the last half year; servers list in UTC
            hour, minute = (int(x) for x in when.split(":"))
            stamp = dt.datetime(now.year, month, int(day), hour, minute, tzinfo=dt.UTC)
            if stamp > now + dt.timedelta(days=1):
                stamp = stamp.replace(year=now.year - 1)
        else:
            stamp = dt.datetime(int(when), month, int(day), tzinfo=dt.UTC)
    except ValueError:
        return None
    return stamp.timestamp()


def _dos_time(date: str, clock: str) -> float | None:
    fmt = "%m-%d-%y %I:%M%p" if len(date) == 8 else "%m-%d-%Y %I:%M%p"
    try:
        return (
            dt.datetime.strptime(f"{date} {clock.replace(' ', '')}", fmt).replace(tzinfo=dt.UTC).timestamp()
        )
    except ValueError:
        return None


def parse_list_line(line: str, directory: str, now: dt.datetime | None = None) -> RemoteFile | None:
    """One line of a LIST reply (Unix ``ls -l`` or MS-DOS style), or None if it is not an entry."""
    now = now or dt.datetime.now(dt.UTC)
    if m := _UNIX_LINE.match(line):
        kind, name = m["type"], m["name"]
        if kind == "l":
            name = name.split(" -> ", 1)[0]
        size: int | None = int(m["size"])
        modified = _unix_time(m["mon"], m["day"], m["when"], now)
        is_dir = kind == "d"
    elif m := _DOS_LINE.match(line):
        name, is_dir = m["name"], m["size"] == "<DIR>"
        size = None if is_dir else int(m["size"])
        modified = _dos_time(m["date"], m["time"])
    else:
        return None
    if not _usable_name(name):
        return None
    return RemoteFile(name, posixpath.join(directory, name), size, modified, is_dir)


def parse_mlsd_line(line: str, directory: str) -> RemoteFile | None:
    """One line of an MLSD reply (``type=file;size=12;modify=20240101120000; name``)."""
    facts_text, sep, name = line.partition(" ")
    if not sep or not _usable_name(name):
        return None
    facts: dict[str, str] = {}
    for fact in facts_text.split(";"):
        key, eq, value = fact.partition("=")
        if eq:
            facts[key.strip().lower()] = value.strip()
    kind = facts.get("type", "").lower()
    if kind in ("cdir", "pdir"):
        return None
    size = int(facts["size"]) if facts.get("size", "").isdigit() else None
    modified = None
    if stamp := facts.get("modify"):
        with contextlib.suppress(ValueError):
            modified = dt.datetime.strptime(stamp[:14], "%Y%m%d%H%M%S").replace(tzinfo=dt.UTC).timestamp() + (
                float("0" + stamp[14:]) if stamp[14:15] == "." else 0.0
            )
    return RemoteFile(name, posixpath.join(directory, name), size, modified, kind == "dir")


def _timelapse_key(f: RemoteFile) -> float:
    if m := _TIMELAPSE_NAME.match(f.name):
        with contextlib.suppress(ValueError):
            y, mo, d, h, mi, s = (int(x) for x in m.groups()[:6])
            return dt.datetime(y, mo, d, h, mi, s, tzinfo=dt.UTC).timestamp()
    return f.modified or 0.0


# --- ftplib over implicit TLS -----------------------------------------------------------------------


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


# --- error mapping ---------------------------------------------------------------------------------


def _reply_code(exc: ftplib.Error) -> tuple[int | None, str]:
    text = str(exc.args[0]) if exc.args else str(exc)
    first = text.strip().splitlines()[0] if text.strip() else ""
    code = int(first[:3]) if first[:3].isdigit() else None
    # Server text is untrusted: keep it short and printable.
    clean = "".join(c for c in first[4:] if unicodedata.category(c) != "Cc")[:120].strip()
    return code, clean


def explain(exc: BaseException, *, op: str, path: str, host: str, port: int) -> PrinterFilesError:
    """Turn ftplib/ssl/socket errors into a PrinterFilesError with a plain message."""
    if isinstance(exc, PrinterFilesError):
        return exc
    if isinstance(exc, ssl.SSLCertVerificationError):
        detail = exc.verify_message or exc.reason or "verification failed"
        return PrinterTLSError(f"printer certificate is not the trusted one ({detail}); FTPS refused")
    if isinstance(exc, ftplib.Error):
        code, text = _reply_code(exc)
        what = f"{op} {path}"
        if code == 530:
            return PrinterFilesError("access code rejected by the printer", kind="auth", code=code)
        if code == 421:
            return PrinterFilesError(
                "printer refused the FTP session (too many connections?)", kind="busy", code=code
            )
        if code in (450, 550):
            return PrinterFilesError(
                f"{what}: not found or not accessible on the printer", kind="not_found", code=code
            )
        if code in (452, 552):
            return PrinterFilesError(f"{what}: printer storage is full", kind="storage_full", code=code)
        if code == 553:
            return PrinterFilesError(
                f"{what}: the printer does not accept this file name", kind="bad_path", code=code
            )
        if code == 522:
            return PrinterFilesError(
                f"{what}: printer refused the data connection's TLS session", kind="tls", code=code
            )
        if code in (425, 426):
            return PrinterFilesError(
                f"{what}: the data connection failed or was cut", kind="transfer", code=code
            )
        if code in (500, 502, 504):
            return PrinterFilesError(f"{what}: the printer does not support this FTP command", code=code)
        return PrinterFilesError(f"{what}: printer FTP error {code or '?'} {text}".rstrip(), code=code)
    if isinstance(exc, TimeoutError):
        return PrinterFilesError(f"printer {host}:{port} did not answer in time", kind="timeout")
    if isinstance(exc, ssl.SSLError):
        return PrinterFilesError(f"TLS failure talking to the printer: {exc.reason or exc}", kind="tls")
    if isinstance(exc, ConnectionRefusedError):
        return PrinterFilesError(f"printer {host}:{port} refused the FTPS connection", kind="unreachable")
    if isinstance(exc, EOFError | ConnectionResetError | BrokenPipeError):
        return PrinterFilesError(f"{op} {path}: the printer closed the connection", kind="transfer")
    if isinstance(exc, OSError):
        return PrinterFilesError(
            f"cannot reach printer {host}:{port}: {exc.strerror or exc}", kind="unreachable"
        )
    return PrinterFilesError(f"{op} {path}: {exc}")


# --- async facade ----------------------------------------------------------------------------------


@dataclass
class _Call:
    """What the awaiting task and the worker thread share about one session."""

    guard: SocketGuard
    leftover: str | None = None  # an upload's temp file that may still exist on the printer


class _Progress:
    """Reports ``(done, total)`` on the event loop (callbacks may touch loop-only state such as the
    event bus), at most every PROGRESS_INTERVAL and always the final count. total 0 = unknown."""

    def __init__(self, loop: asyncio.AbstractEventLoop, callback: Progress | None, total: int, call: _Call):
        self.loop, self.callback, self.total, self.guard = loop, callback, total, call.guard
        self.done = 0
        self._last_time = 0.0
        self._last_sent: tuple[int, int] | None = None

    def add(self, n: int) -> None:
        self.done += n
        now = time.monotonic()
        if now - self._last_time >= PROGRESS_INTERVAL or self.done == self.total:
            self._last_time = now
            self._post()

    def finish(self, total: int | None = None) -> None:
        """The transfer is complete: make sure ``(total, total)`` was reported."""
        if total is not None:
            self.total = total
        if self._last_sent != (self.done, self.total):
            self._post()

    def _post(self) -> None:
        self._last_sent = (self.done, self.total)
        if self.callback is None:
            return
        with contextlib.suppress(RuntimeError):  # loop already closed: nobody is listening
            self.loop.call_soon_threadsafe(self._deliver, self.done, self.total)

    def _deliver(self, done: int, total: int) -> None:
        if self.guard.aborted or self.callback is None:
            return
        try:
            self.callback(done, total)
        except Exception:
            log.exception("progress callback failed")


class PrinterFiles:
    """Files on one printer's storage. Every call opens one FTPS session in a worker thread and
    closes it; calls for the same printer queue on a lock (printers allow few sessions).
    Cancelling the awaiting task aborts the session's sockets and waits for the thread to end."""

    def __init__(
        self,
        host: str,
        port: int,
        access_code: str,
        ssl_context_factory: ContextSource,
        *,
        server_hostname: str | None = None,
        timeout: float = 20.0,
        user: str = FTP_USER,
    ):
        self.host = host
        self.port = port
        self._access_code = access_code
        self._context_source = ssl_context_factory
        self.server_hostname = server_hostname
        self.timeout = timeout
        self.user = user
        self._lock = asyncio.Lock()
        self._mlsd: bool | None = None  # learnt on first listing
        self._stale: set[str] = set()  # temp files left by cut uploads, removed on the next session

    def __repr__(self) -> str:  # the access code never goes into logs
        return f"PrinterFiles({self.host}:{self.port})"

    # -- public API --

    async def list(self, path: str = "/") -> builtins.list[RemoteFile]:
        """Entries of the folder ``path`` (MLSD where the printer supports it, else LIST)."""
        folder = normalize_remote_path(path, file=False)
        return await self._run("list", folder, functools.partial(self._list_op, folder))

    async def upload(
        self, local_path: str | os.PathLike[str], remote_path: str, progress: Progress | None = None
    ) -> str:
        """Upload to ``remote_path`` (parent folders are created); returns the normalised path.
        The data goes to a temp name first and is renamed when complete and size-checked, so a cut
        connection never leaves a half file under the real name."""
        target = normalize_remote_path(remote_path)
        local = Path(local_path)
        if not await asyncio.to_thread(local.is_file):  # before any network traffic
            raise FileNotFoundError(f"no such local file: {local}")
        loop = asyncio.get_running_loop()
        op = functools.partial(self._upload_op, local, target, loop, progress)
        return await self._run("upload", target, op)

    async def download(
        self, remote_path: str, local_path: str | os.PathLike[str], progress: Progress | None = None
    ) -> None:
        """Download ``remote_path`` to ``local_path`` (written to a temp name, then renamed)."""
        source = normalize_remote_path(remote_path)
        local = Path(local_path)
        if not await asyncio.to_thread(local.parent.is_dir):
            raise FileNotFoundError(f"no such local folder: {local.parent}")
        loop = asyncio.get_running_loop()
        await self._run(
            "download", source, functools.partial(self._download_op, source, local, loop, progress)
        )

    async def upload_stream(
        self,
        remote_path: str,
        chunks: AsyncIterable[bytes],
        progress: Progress | None = None,
        *,
        size: int | None = None,
    ) -> tuple[str, int]:
        """Upload what ``chunks`` yields as it arrives: nothing is written locally, and at most a few
        chunks wait in memory (the browser is slowed to the printer's pace). ``size`` (if known)
        is checked against what arrived. Returns (normalised path, bytes stored). Same temp name
        and rename as ``upload``; a source that fails raises UploadSourceError (kind "source"),
        and the partial temp file is removed."""
        target = normalize_remote_path(remote_path)
        loop = asyncio.get_running_loop()
        source = FeedReader(loop, timeout=self.timeout)

        async def feed() -> None:
            try:
                async for chunk in chunks:
                    await source.put(chunk)
            except PipeClosed:
                return  # the session ended first; its outcome says why
            except asyncio.CancelledError:
                source.fail(UploadSourceError("the upload was cancelled"))
                raise
            except UploadSourceError as exc:
                source.fail(exc)
                return
            except Exception as exc:
                source.fail(UploadSourceError(f"the upload data stopped coming ({_what(exc)})"))
                return
            source.finish()

        feeder = asyncio.ensure_future(feed())
        try:
            op = functools.partial(self._upload_stream_op, source, target, loop, progress, size)
            abort = functools.partial(source.fail, UploadSourceError("the upload was cancelled"))
            return await self._run("upload", target, op, on_abort=abort)
        finally:
            source.close()
            if not feeder.done():
                feeder.cancel()
            await asyncio.gather(feeder, return_exceptions=True)

    async def open_download(self, remote_path: str, progress: Progress | None = None) -> RemoteDownload:
        """Start streaming ``remote_path`` from the printer: returns once the printer has accepted
        the download (so a missing file is a PrinterFilesError here, before any byte is sent on),
        with ``size`` when known. Iterate it for the bytes; ``aclose()`` it when done or abandoned.
        Nothing is written locally; the printer is slowed to the consumer's pace."""
        source = normalize_remote_path(remote_path)
        loop = asyncio.get_running_loop()
        drain = Drain(loop, timeout=self.timeout)
        op = functools.partial(self._download_stream_op, source, drain, loop, progress)
        task = asyncio.ensure_future(self._run("download", source, op, on_abort=drain.close))
        task.add_done_callback(lambda f: f.cancelled() or f.exception())
        task.add_done_callback(drain.end)
        try:
            kind, value = await drain.get()
        except BaseException:
            drain.close()
            task.cancel()
            raise
        if kind == "end":
            if not value.cancelled() and value.exception() is not None:
                raise value.exception()
            raise PrinterFilesError(f"download {source}: the printer sent nothing", kind="transfer")
        return RemoteDownload(value, drain, task, self.timeout)

    async def delete(self, remote_path: str) -> None:
        target = normalize_remote_path(remote_path)
        await self._run("delete", target, lambda ftp, _call: ftp.delete(target))

    async def timelapses(self) -> builtins.list[RemoteFile]:
        """Timelapse videos in /timelapse/ (``video_YYYY-MM-DD_HH-MM-SS.mp4``, older models .avi),
        newest first. A printer without the folder has none."""
        try:
            entries = await self.list(TIMELAPSE_DIR)
        except PrinterFilesError as exc:
            if exc.kind == "not_found":
                return []
            raise
        videos = [f for f in entries if not f.is_dir and f.name.lower().endswith(TIMELAPSE_EXTENSIONS)]
        return sorted(videos, key=lambda f: (_timelapse_key(f), f.name), reverse=True)

    # -- session plumbing --

    async def _context(self) -> ssl.SSLContext:
        source = self._context_source
        context = source if isinstance(source, ssl.SSLContext) else source()
        if inspect.isawaitable(context):
            context = await context
        if not isinstance(context, ssl.SSLContext):
            raise TypeError("ssl_context_factory must return an ssl.SSLContext")
        return context

    async def _run(
        self,
        op: str,
        path: str,
        work: Callable[[ImplicitFTPS, _Call], T],
        on_abort: Callable[[], object] | None = None,
    ) -> T:
        async with self._lock:
            context = await self._context()  # on the loop: the trust module need not be thread-safe
            call = _Call(SocketGuard())
            log.debug("%s: %s %s", self, op, path)
            worker = asyncio.ensure_future(asyncio.to_thread(self._session, op, path, context, call, work))
            # Its outcome no longer matters once we are cancelled; retrieve it so asyncio stays quiet.
            worker.add_done_callback(lambda f: f.cancelled() or f.exception())
            try:
                return await asyncio.shield(worker)
            except asyncio.CancelledError:
                call.guard.abort()
                if on_abort is not None:
                    on_abort()  # wake a worker waiting on a stream rather than a socket
                # Keep the lock until the thread has closed its sockets: no second session meanwhile,
                # nothing outlives the caller. Bounded: every blocking call has a socket timeout.
                await asyncio.wait({worker}, timeout=self.timeout + 5)
                if not worker.done():
                    log.warning("%s: FTPS worker still running after cancel", self)
                raise
            finally:
                if call.leftover:
                    self._stale.add(call.leftover)

    def _session(
        self,
        op: str,
        path: str,
        context: ssl.SSLContext,
        call: _Call,
        work: Callable[[ImplicitFTPS, _Call], T],
    ) -> T:
        ftp = ImplicitFTPS(
            context, timeout=self.timeout, server_hostname=self.server_hostname, guard=call.guard
        )
        try:
            ftp.connect(self.host, self.port)
            ftp.login(self.user, self._access_code)
            ftp.prot_p()
            ftp.voidcmd("TYPE I")
            self._remove_stale(ftp)
            result = work(ftp, call)
            ftp.quit_quietly()
            return result
        except Exception as exc:
            if call.guard.aborted:
                raise
            if isinstance(exc, ftplib.Error | PrinterFilesError):
                ftp.quit_quietly()  # the server answered: the control channel is still usable
            raise explain(exc, op=op, path=path, host=self.host, port=self.port) from exc
        finally:
            ftp.close()

    def _remove_stale(self, ftp: ImplicitFTPS) -> None:
        for leftover in sorted(self._stale):
            try:
                ftp.delete(leftover)
            except ftplib.error_perm:
                pass  # already gone
            except (ftplib.error_temp, ftplib.error_reply):
                continue  # busy right now: try again next session, never fail this one for it
            self._stale.discard(leftover)

    # -- operations (worker thread) --

    def _list_op(self, folder: str, ftp: ImplicitFTPS, _call: _Call) -> builtins.list[RemoteFile]:
        # CWD first: it tells a missing folder apart (LIST of one is an empty 226 on vsftpd) and
        # keeps the listing commands free of arguments (no option or glob interpretation).
        ftp.cwd(folder)
        if self._mlsd is not False:
            try:
                lines = ftp.lines("MLSD")
            except ftplib.error_perm as exc:
                if _reply_code(exc)[0] not in (500, 501, 502, 504):
                    raise
                self._mlsd = False
            else:
                self._mlsd = True
                return [f for line in lines if (f := parse_mlsd_line(line, folder))]
        now = dt.datetime.now(dt.UTC)
        return [f for line in ftp.lines("LIST") if (f := parse_list_line(line, folder, now))]

    def _upload_op(
        self,
        local: Path,
        target: str,
        loop: asyncio.AbstractEventLoop,
        progress: Progress | None,
        ftp: ImplicitFTPS,
        call: _Call,
    ) -> str:
        temp = _temp_beside(ftp, target)
        with open(local, "rb") as source:
            total = os.fstat(source.fileno()).st_size
            meter = _Progress(loop, progress, total, call)
            call.leftover = temp
            ftp.write_from(f"STOR {temp}", source, meter.add)
        _commit_upload(ftp, call, temp, target, total)
        meter.finish()
        return target

    def _download_op(
        self,
        source: str,
        local: Path,
        loop: asyncio.AbstractEventLoop,
        progress: Progress | None,
        ftp: ImplicitFTPS,
        call: _Call,
    ) -> None:
        expected = ftp.size_or_none(source)
        meter = _Progress(loop, progress, expected or 0, call)
        part = local.with_name(f".{local.name}.{secrets.token_hex(4)}{TEMP_SUFFIX}")
        try:
            with open(part, "wb") as out:

                def sink(data: bytes) -> None:
                    out.write(data)
                    meter.add(len(data))

                received, announced = ftp.read_into(f"RETR {source}", sink)
            expected = expected if expected is not None else announced
            if expected is not None and received != expected:
                raise PrinterFilesError(
                    f"download {source}: got {received} of {expected} bytes", kind="transfer"
                )
            os.replace(part, local)
        finally:
            part.unlink(missing_ok=True)
        meter.finish(received)

    def _upload_stream_op(
        self,
        source: FeedReader,
        target: str,
        loop: asyncio.AbstractEventLoop,
        progress: Progress | None,
        size: int | None,
        ftp: ImplicitFTPS,
        call: _Call,
    ) -> tuple[str, int]:
        temp = _temp_beside(ftp, target)
        meter = _Progress(loop, progress, size or 0, call)
        call.leftover = temp
        try:
            ftp.write_from(f"STOR {temp}", source, meter.add)  # type: ignore[arg-type]
        except (UploadSourceError, StallError) as exc:
            _discard_partial(ftp, temp, call)
            if isinstance(exc, UploadSourceError):
                raise
            raise UploadSourceError(f"upload {target}: {exc}") from None
        finally:
            source.close()
        sent = meter.done
        if size is not None and sent != size:
            ftp.delete(temp)
            call.leftover = None
            raise UploadSourceError(f"upload {target}: only {sent} of {size} bytes arrived")
        _commit_upload(ftp, call, temp, target, sent)
        meter.finish(sent)
        return target, sent

    def _download_stream_op(
        self,
        source: str,
        drain: Drain,
        loop: asyncio.AbstractEventLoop,
        progress: Progress | None,
        ftp: ImplicitFTPS,
        call: _Call,
    ) -> int:
        expected = ftp.size_or_none(source)
        conn, announced = ftp.ntransfercmd(f"RETR {source}")
        size = expected if expected is not None else announced
        meter = _Progress(loop, progress, size or 0, call)
        received = 0
        try:
            drain.start(size)
            while data := conn.recv(BLOCK_SIZE):
                received += len(data)
                drain.write(data)
                meter.add(len(data))
        finally:
            ftp.guard.close(conn)
        ftp.voidresp()
        if size is not None and received != size:
            raise PrinterFilesError(f"download {source}: got {received} of {size} bytes", kind="transfer")
        meter.finish(received)
        return received


class RemoteDownload:
    """A download in progress (see ``PrinterFiles.open_download``): ``size`` (None if the printer
    did not say), async-iterate for the bytes, ``aclose()`` to end or abandon it."""

    def __init__(self, size: int | None, drain: Drain, task: asyncio.Future[Any], timeout: float):
        self.size = size
        self._drain = drain
        self._task = task
        self._timeout = timeout

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._chunks()

    async def _chunks(self) -> AsyncIterator[bytes]:
        while True:
            kind, value = await self._drain.get()
            if kind == "data":
                yield value
            elif kind == "end":
                if not value.cancelled() and value.exception() is not None:
                    raise value.exception()
                return

    async def aclose(self) -> None:
        if self._task.done():
            return
        self._drain.close()
        self._task.cancel()
        await asyncio.wait({self._task}, timeout=self._timeout + 5)


def _what(exc: BaseException) -> str:
    text = "".join(c for c in str(exc) if unicodedata.category(c) != "Cc")[:100].strip()
    return text or type(exc).__name__


def _discard_partial(ftp: ImplicitFTPS, temp: str, call: _Call) -> None:
    """After an upload whose source failed mid-way: read the STOR's final reply (426) and remove
    the partial temp file now. Best effort: what fails here is left for the next session."""
    with contextlib.suppress(ftplib.Error, OSError, EOFError):
        ftp.voidresp()
    try:
        ftp.delete(temp)
    except (ftplib.Error, OSError, EOFError):
        return
    call.leftover = None


def _make_parents(ftp: ImplicitFTPS, folder: str) -> None:
    """Create ``folder`` and its parents; existing ones answer 550, which is fine (a real problem
    surfaces as the STOR's error)."""
    current = ""
    for part in [p for p in folder.split("/") if p]:
        current = f"{current}/{part}"
        with contextlib.suppress(ftplib.error_perm):
            ftp.mkd(current)


def _temp_beside(ftp: ImplicitFTPS, target: str) -> str:
    """A fresh temp name in ``target``'s folder (created with its parents) to upload into."""
    folder = posixpath.dirname(target)
    _make_parents(ftp, folder)
    return posixpath.join(folder, f"{TEMP_PREFIX}{secrets.token_hex(6)}{TEMP_SUFFIX}")


def _commit_upload(ftp: ImplicitFTPS, call: _Call, temp: str, target: str, sent: int) -> None:
    """The finished temp file becomes ``target`` only if the printer stored every byte sent."""
    stored = ftp.size_or_none(temp)
    if stored is not None and stored != sent:
        raise PrinterFilesError(
            f"upload {target}: the printer stored {stored} of {sent} bytes", kind="transfer"
        )
    _rename(ftp, temp, target)
    call.leftover = None


def _rename(ftp: ImplicitFTPS, temp: str, target: str) -> None:
    try:
        ftp.rename(temp, target)
    except ftplib.error_perm:
        # Some servers will not rename over an existing file: remove it, then retry once.
        try:
            ftp.delete(target)
        except ftplib.error_perm:
            raise PrinterFilesError(
                f"upload {target}: the printer refused to rename the finished upload", kind="transfer"
            ) from None
        ftp.rename(temp, target)
