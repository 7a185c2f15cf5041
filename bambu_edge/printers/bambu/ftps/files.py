"""``PrinterFiles``: one printer's storage over implicit FTPS, as async calls.

Every call opens one FTPS session (ftps/transport.py) in a worker thread (``asyncio.to_thread``)
and closes it, at most one at a time per printer; uploads go to a temp name and are renamed when
complete; cancelling a call aborts its sockets and waits for the thread.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import datetime as dt
import ftplib
import functools
import inspect
import logging
import os
import posixpath
import secrets
import ssl
import time
import unicodedata
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from bambu_edge.printers.bambu.ftps.errors import UploadSourceError, explain, reply_code
from bambu_edge.printers.bambu.ftps.listing import (
    RemoteFile,
    parse_list_line,
    parse_mlsd_line,
    timelapse_time,
)
from bambu_edge.printers.bambu.ftps.transport import BLOCK_SIZE, ImplicitFTPS, SocketGuard
from bambu_edge.printers.bambu.storage import (
    TEMP_PREFIX,
    TEMP_SUFFIX,
    PrinterFilesError,
    normalize_remote_path,
)
from bambu_edge.printers.bambu.streams import Drain, FeedReader, PipeClosed, StallError

log = logging.getLogger(__name__)

T = TypeVar("T")
Progress = Callable[[int, int], None]
# An SSLContext, or a factory (plain or async) called on the event loop before every session.
ContextSource = ssl.SSLContext | Callable[[], ssl.SSLContext] | Callable[[], Awaitable[ssl.SSLContext]]

FTP_USER = "bblp"
TIMELAPSE_DIR = "/timelapse"
TIMELAPSE_EXTENSIONS = (".mp4", ".avi")
PROGRESS_INTERVAL = 0.1  # seconds between progress events (the last one always goes out)


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
        return sorted(videos, key=lambda f: (timelapse_time(f), f.name), reverse=True)

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
                if reply_code(exc)[0] not in (500, 501, 502, 504):
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
