"""One camera's upstream: opened for the first viewer, shared by all, closed after the last.

``CameraSupervisor`` holds at most one connection to the camera however many viewers (and
snapshots) there are. An RTSP(S) camera's H.264 is copied into fragmented MP4 by the daemon itself
(``rtsp_session``, ``rtp_h264``, ``h264_remux``): the TLS verified with the printer's trust, and no
process or loopback hop on the way. What the daemon does not remux (an HTTP stream, a USB camera,
an RTSP stream in another codec) runs one ffmpeg child, a TLS URL through the verified
``TlsRelay``. The port-6000 JPEG camera is read by the daemon's own client, its frames passed on
unchanged. The upstream starts with the first holder, stays ``streaming`` for ``idle_timeout``
after the last one leaves, and is restarted with backoff when it fails while wanted. ffmpeg is a child of the component's TaskSet: reaped on stop, and signalled
by the kernel if the daemon dies without stopping.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import unquote, urlsplit

from bambu_edge.camera import ffmpeg_args
from bambu_edge.camera.fmp4 import Fmp4Error, Fmp4Splitter, Fragment
from bambu_edge.camera.jpeg_stream import JpegSplitter, JpegStreamError, last_jpeg
from bambu_edge.camera.pipe_reader import pipe_for_child, read_pipe
from bambu_edge.camera.relay import TlsRelay
from bambu_edge.camera.source import DEVICE, JPEG6000, OFF, RTSPS, URL, CameraSource, tls_target, url_password
from bambu_edge.camera.viewers import Viewer, ViewerQueue
from bambu_edge.printers.backoff import Backoff
from bambu_edge.printers.bambu import camera as bambu_camera
from bambu_edge.printers.bambu.tls import is_serial_mismatch, is_verify_failure
from bambu_edge.tasks import TaskSet

if TYPE_CHECKING:
    from bambu_edge.camera.rtsp_session import RtspSession

DEFAULT_IDLE_TIMEOUT_S = 30.0
SNAPSHOT_MAX_AGE_S = 2.0
SNAPSHOT_TIMEOUT_S = 12.0
MAX_GOP_BYTES = 8 * 1024 * 1024  # the keyframe interval kept for joiners and snapshots
STDERR_LINES = 20

_V = TypeVar("_V", bound=Viewer)


class CameraUnavailable(Exception):
    """The camera cannot be reached (or is off); the message is for the user."""

    def __init__(self, message: str, code: str = "camera_unavailable"):
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class CameraAccess:
    """What reaching a printer's camera takes, from its link: address, login and trust."""

    host: str
    access_code: str = field(repr=False)
    context: Callable[[], Awaitable[ssl.SSLContext]]  # the printer's trust (as its MQTT link)
    serial: str | None = None  # the leaf must be issued to it (CA mode); None for a pinned leaf
    live_view_disabled: Callable[[], bool] = lambda: False  # H2: LAN live view switched off


PRINTER_TRUST = "the printer's trusted certificate"


def describe(e: BaseException, where: str, trust: str = PRINTER_TRUST) -> tuple[str, str]:
    """(code, plain words) for a failed camera connection; ``trust`` names what was expected."""
    if is_verify_failure(e) or is_serial_mismatch(e):
        return "tls_mismatch", f"tls_mismatch: the camera at {where} does not present {trust} ({e})"
    if isinstance(e, TimeoutError):
        return "camera_unavailable", f"the camera at {where} did not answer in time"
    if isinstance(e, ConnectionRefusedError):
        return "camera_unavailable", f"the camera at {where} refused the connection (is it switched on?)"
    if isinstance(e, OSError):
        return "camera_unavailable", f"cannot reach the camera at {where}: {e.strerror or e}"
    if isinstance(e, EOFError):
        return "camera_unavailable", f"the camera at {where} closed the connection (wrong access code?)"
    return "camera_unavailable", f"the camera at {where} failed: {e}"


class _Failed(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


class CameraSupervisor:
    def __init__(
        self,
        printer_id: str,
        source: CameraSource,
        access: CameraAccess | None,
        tasks: TaskSet,
        *,
        idle_timeout: float = DEFAULT_IDLE_TIMEOUT_S,
        ffmpeg: str = "ffmpeg",
        backoff: Backoff | None = None,
        log: logging.Logger | logging.LoggerAdapter[Any] | None = None,
    ):
        self.printer_id = printer_id
        self.source = source
        self.access = access
        self.tasks = tasks
        self.idle_timeout = idle_timeout
        self.ffmpeg = ffmpeg
        self.backoff = backoff or Backoff(initial=1.0, cap=30.0, stable_after=10.0)
        self.log = log or logging.getLogger(__name__)
        self.state = "off" if source.kind == OFF else "idle"
        self.error: str | None = None
        self.error_code: str | None = None
        self.process: asyncio.subprocess.Process | None = None  # the running ffmpeg
        self.starts = 0  # upstream connections attempted (ffmpeg runs, JPEG logins)
        self._viewers: set[Viewer] = set()
        self._own: set[Viewer] = set()  # of them, the daemon's own (not clients)
        self._holds = 0  # snapshots waiting for a frame
        self._run: asyncio.Task[None] | None = None
        self._idle: asyncio.Task[None] | None = None
        self._init: bytes | None = None
        self._gop: list[Fragment] = []
        self._gop_bytes = 0
        self._last_frame: bytes | None = None  # JPEG sources
        self._last_at = 0.0
        self._snapshot: tuple[float, bytes] | None = None
        self._news = asyncio.Event()  # a frame arrived or an attempt failed
        self._failures = 0
        self._snapshot_lock = asyncio.Lock()
        self._url_ctx: ssl.SSLContext | None = None
        self._native = True  # RTSP H.264 remuxed in the daemon; False once a stream needs ffmpeg

    # --- what the API shows --------------------------------------------------------------------------

    @property
    def viewers(self) -> int:
        return len(self._viewers) - len(self._own)

    def status(self) -> dict[str, Any]:
        return {
            "kind": self.source.kind,
            "state": self.state,
            "viewers": self.viewers,
            "codec": self.source.codec,
            "error": self.error,
        }

    # --- holders -------------------------------------------------------------------------------------

    def attach(self) -> ViewerQueue:
        """A new streaming viewer with a queue of its own (MJPEG over HTTP)."""
        self._require_on()
        return self.attach_viewer(ViewerQueue)

    def attach_viewer(self, make: Callable[[list[bytes] | None], _V], *, client: bool = True) -> _V:
        """A new streaming viewer made by ``make(head)``: it starts with the init segment and the
        current keyframe interval, so it shows a picture at once. ``client=False``: the daemon's own
        (the sub-stream's encoder), not counted in ``viewers``."""
        self._require_on()
        viewer = make([self._init] if self._init is not None else None)
        for frag in self._gop:
            viewer.put(frag.data, frag.keyframe)
        if self._last_frame is not None and self.source.codec == "mjpeg":
            viewer.put(self._last_frame, True)
        self._viewers.add(viewer)
        if not client:
            self._own.add(viewer)
        self._want()
        return viewer

    def detach(self, viewer: Viewer) -> None:
        viewer.close("viewer left")
        self._viewers.discard(viewer)
        self._own.discard(viewer)
        self._maybe_idle()

    def _require_on(self) -> None:
        if self.source.kind == OFF:
            raise CameraUnavailable("this printer's camera is off in the config", "camera_off")

    def _holders(self) -> int:
        return len(self._viewers) + self._holds

    def _want(self) -> None:
        if self._idle is not None:
            self._idle.cancel()
            self._idle = None
        if self._run is None or self._run.done():
            self.state = "starting"
            self.error = self.error_code = None
            self._failures = 0
            self._run = self.tasks.spawn(self._upstream(), name=f"camera-{self.printer_id}")

    def _maybe_idle(self) -> None:
        if self._holders() or self._run is None or self._idle is not None:
            return
        self._idle = self.tasks.spawn(self._idle_stop(), name=f"camera-{self.printer_id}-idle")

    async def _idle_stop(self) -> None:
        await asyncio.sleep(self.idle_timeout)
        self._idle = None
        if self._holders():
            return
        run, self._run = self._run, None
        if run is not None:
            await self.tasks.cancel([run])
        self._reset_stream()
        self.state = "idle"
        self.log.info("camera: stopped after %.0f s without viewers", self.idle_timeout)

    async def close(self) -> None:
        for q in list(self._viewers):
            q.close("the daemon is stopping")
        tasks = [t for t in (self._run, self._idle) if t is not None]
        self._run = self._idle = None
        await self.tasks.cancel(tasks)

    # --- the upstream --------------------------------------------------------------------------------

    async def _upstream(self) -> None:
        while True:
            try:
                await self._stream_once()
                raise _Failed("camera_unavailable", "the camera stream ended")
            except _Failed as e:
                self._failed(e.code, str(e))
            if not self._holders() and self._idle is None:
                self._maybe_idle()
            delay = self.backoff.next()
            self.log.info("camera: retrying in %.1f s", delay)
            await asyncio.sleep(delay)
            self.state = "starting" if self.error is None else self.state

    def _failed(self, code: str, message: str) -> None:
        self._failures += 1
        self.state = "error"
        self.error, self.error_code = message, code
        self.log.warning("camera: %s", message)
        self._reset_stream()
        # A restarted ffmpeg starts a new timeline: viewers reconnect and get its init segment.
        if self.source.codec == "h264":
            for q in list(self._viewers):
                q.close("the camera stream restarted")
        self._news.set()

    def _reset_stream(self) -> None:
        self._init = None
        self._gop, self._gop_bytes = [], 0
        self._snapshot = None

    def _where(self) -> str:
        if self.source.kind == DEVICE:
            return str(self.source.device)
        if self.source.kind == URL:
            target = tls_target(str(self.source.url))
            return f"{target.host}:{target.port}" if target else _without_login(str(self.source.url))
        assert self.access is not None
        return f"{self.access.host}:{self.source.port}"

    def _trust(self) -> str:
        if self.source.kind == URL:
            ca = self.source.ca_file
            return f"a certificate issued by {ca}" if ca else "a certificate the system trusts for that name"
        return PRINTER_TRUST

    async def _url_context(self) -> ssl.SSLContext:
        """A TLS camera URL's trust: the system's CA store (or ``ca_file``) and its host name."""
        if self._url_ctx is None:
            try:
                self._url_ctx = await asyncio.to_thread(
                    ssl.create_default_context, cafile=self.source.ca_file
                )
            except OSError as e:
                raise _Failed(
                    "camera_unavailable",
                    f"cannot read the camera's ca_file {self.source.ca_file}: {e.strerror or e}",
                ) from None
        return self._url_ctx

    async def _stream_once(self) -> None:
        self.starts += 1
        if self.source.kind == JPEG6000:
            await self._jpeg6000()
        elif not (self._native and await self._rtsp()):
            await self._ffmpeg()

    async def _rtsp(self) -> bool:
        """An RTSP(S) camera's H.264 into fragmented MP4 in the daemon: no ffmpeg and no loopback
        relay on the way (docs/camera.md). False for what ffmpeg is to read: an HTTP stream, a USB
        camera, an RTSP stream in another codec."""
        # Imported when a camera first streams: a daemon that nobody watches does not carry it (~0.5 MB).
        from bambu_edge.camera.rtsp_messages import RtspError
        from bambu_edge.camera.rtsp_session import stream_h264

        session = await self._rtsp_session()
        if session is None:
            return False
        where = self._where()
        try:
            codec = await stream_h264(session, self._on_fragment)
        except RtspError as e:
            raise _Failed("camera_unavailable", _at(where, e)) from None
        except EOFError:
            raise _Failed("camera_unavailable", f"the camera at {where} closed the connection") from None
        except (OSError, TimeoutError, ssl.SSLError) as e:
            raise _Failed(*describe(e, where, self._trust())) from None
        except Exception as e:  # a stream this code did not foresee: retried, never fatal
            self.log.exception("camera: the stream from %s could not be read", where)
            raise _Failed(
                "camera_unavailable", f"the camera at {where} sent a stream that could not be read: {e}"
            ) from None
        finally:
            await session.close()
        self.log.info("camera: the stream is %s, not H.264: ffmpeg remuxes it", codec)
        self._native = False
        return False

    async def _rtsp_session(self) -> RtspSession | None:
        """The RTSP session for a printer's RTSPS camera or an ``rtsp(s)://`` URL; None otherwise."""
        from bambu_edge.camera.rtsp_session import RtspSession

        if self.source.kind == RTSPS:
            access = self.access
            assert access is not None and self.source.port is not None
            if access.live_view_disabled():
                raise _Failed("live_view_disabled", bambu_camera.LIVE_VIEW_DISABLED_MESSAGE)
            serial = access.serial
            return RtspSession(
                f"rtsps://{access.host}:{self.source.port}{bambu_camera.RTSP_PATH}",
                username=bambu_camera.USERNAME,
                password=access.access_code,
                context=await self._trust_context(access.context),
                check_peer=(lambda obj: bambu_camera.check_serial(obj, serial)) if serial else None,
            )
        url = str(self.source.url)
        if self.source.kind != URL or self.source.mjpeg or not url.startswith(("rtsp://", "rtsps://")):
            return None
        parts = urlsplit(url)
        context = await self._url_context() if parts.scheme == "rtsps" else None
        return RtspSession(
            url,
            username=unquote(parts.username) if parts.username is not None else None,
            password=unquote(parts.password or ""),
            context=context,
        )

    async def _trust_context(self, context: Callable[[], Awaitable[ssl.SSLContext]]) -> ssl.SSLContext:
        try:
            return await context()
        except Exception as e:  # the trust store: no pinned certificate yet
            raise _Failed("camera_unavailable", f"the camera cannot be trusted yet: {e}") from None

    async def _jpeg6000(self) -> None:
        access = self.access
        assert access is not None and self.source.port is not None
        ctx = await self._trust_context(access.context)
        try:
            async for frame in bambu_camera.jpeg_frames(
                access.host, access.access_code, ctx, port=self.source.port, serial=access.serial
            ):
                self._on_jpeg(frame)
        except (OSError, TimeoutError, EOFError, ssl.SSLError, bambu_camera.CameraProtocolError) as e:
            raise _Failed(*describe(e, self._where())) from None

    def _on_jpeg(self, frame: bytes) -> None:
        self._streaming()
        self.backoff.ok()
        self._last_frame, self._last_at = frame, time.monotonic()
        for q in self._viewers:
            q.put(frame, True)
        self._news.set()

    def _streaming(self) -> None:
        if self.state != "streaming":
            self.state = "streaming"
            self.error = self.error_code = None

    async def _ffmpeg(self) -> None:
        relay: TlsRelay | None = None
        try:
            if self.source.kind == RTSPS:
                access = self.access
                assert access is not None and self.source.port is not None
                if access.live_view_disabled():
                    raise _Failed("live_view_disabled", bambu_camera.LIVE_VIEW_DISABLED_MESSAGE)
                relay = TlsRelay(access.host, self.source.port, access.context, serial=access.serial)
                port = await relay.start()
                url = f"rtsp://{bambu_camera.USERNAME}:{access.access_code}@127.0.0.1:{port}{bambu_camera.RTSP_PATH}"
                inputs = ffmpeg_args.input_args(url=url)
            elif self.source.kind == URL and (target := tls_target(str(self.source.url))) is not None:
                # ffmpeg would not verify the certificate: the daemon does, ffmpeg gets loopback.
                ctx = await self._url_context()

                async def context() -> ssl.SSLContext:
                    return ctx

                relay = TlsRelay(target.host, target.port, context)
                port = await relay.start()
                host = target.host_header if target.plain_scheme == "http" else None
                inputs = ffmpeg_args.input_args(url=target.loopback_url(port), host_header=host)
            else:
                inputs = ffmpeg_args.input_args(url=self.source.url, device=self.source.device)
            if self.source.codec == "mjpeg":
                argv = ffmpeg_args.mjpeg_argv(inputs, ffmpeg=self.ffmpeg)
            else:
                argv = ffmpeg_args.fmp4_argv(inputs, ffmpeg=self.ffmpeg)
            await self._run_ffmpeg(argv, relay)
        finally:
            if relay is not None:
                await relay.close()

    async def _run_ffmpeg(
        self,
        argv: list[str],
        relay: TlsRelay | None,
        feed: Callable[[asyncio.StreamWriter], Viewer] | None = None,
    ) -> None:
        """Run ``argv`` and pass its video on; ``feed`` (the sub-stream's encoder) makes what writes
        its stdin, detached from its source when ffmpeg ends."""
        out, child_out = pipe_for_child()
        try:
            proc = await self.tasks.spawn_process(
                *argv,
                stdin=asyncio.subprocess.PIPE if feed else asyncio.subprocess.DEVNULL,
                stdout=child_out,
                stderr=asyncio.subprocess.PIPE,
            )
        except BaseException as e:
            os.close(out)
            if isinstance(e, OSError):
                raise _Failed("camera_unavailable", f"cannot run ffmpeg ({self.ffmpeg}): {e}") from None
            raise
        finally:
            os.close(child_out)
        self.process = proc
        self.log.info("camera: ffmpeg started (pid %d)", proc.pid)
        lines: list[str] = []
        stderr = self.tasks.spawn(self._stderr(proc, lines), name=f"camera-{self.printer_id}-stderr")
        fed = feed(proc.stdin) if feed is not None and proc.stdin is not None else None
        try:
            if self.source.codec == "mjpeg":
                jpegs = JpegSplitter()

                def on_jpegs(data: memoryview) -> None:
                    for frame in jpegs.feed(data):
                        self._on_jpeg(frame)

                await read_pipe(out, on_jpegs)
            else:
                frags = Fmp4Splitter()

                def on_fragments(data: memoryview) -> None:
                    for frag in frags.feed(data):
                        self._on_fragment(frags.init, frag)

                await read_pipe(out, on_fragments)
            rc = await proc.wait()
        except (Fmp4Error, JpegStreamError) as e:
            raise _Failed("camera_unavailable", f"ffmpeg sent something that is not video: {e}") from None
        finally:
            os.close(out)
            self.process = None
            if fed is not None:
                self._unfeed(fed)
            await self.tasks.stop_process(proc)
            await asyncio.wait([stderr], timeout=1.0)
            stderr.cancel()
        if relay is not None and relay.last_error is not None and relay.connections == 0:
            raise _Failed(*describe(relay.last_error, self._where(), self._trust()))
        detail = _ffmpeg_reason(lines)
        raise _Failed("camera_unavailable", f"ffmpeg exited ({rc}){': ' + detail if detail else ''}")

    def _unfeed(self, fed: Viewer) -> None:
        """Overridden by the sub-stream: ``fed`` no longer needs its source."""

    async def _stderr(self, proc: asyncio.subprocess.Process, lines: list[str]) -> None:
        assert proc.stderr is not None
        secret = self.access.access_code if self.access else url_password(self.source.url)
        while raw := await proc.stderr.readline():
            line = raw.decode(errors="replace").rstrip()
            if secret:
                line = line.replace(secret, "***")
            if not line:
                continue
            lines.append(line)
            del lines[:-STDERR_LINES]
            # ffmpeg runs at -loglevel warning: what it says is worth a line, but at debug for the
            # remuxer's chatter about timestamps, which every RTSP camera causes.
            level = (
                logging.DEBUG
                if "Timestamps are unset" in line or "Non-monotonous DTS" in line
                else logging.INFO
            )
            self.log.log(level, "camera: ffmpeg: %s", line)

    def _on_fragment(self, init: bytes | None, frag: Fragment) -> None:
        if init is None:
            return
        if self._init is None:
            self._init = init
            for q in self._viewers:
                q.put_head(init)
        self._streaming()
        self.backoff.ok()
        if frag.keyframe:
            self._gop, self._gop_bytes = [], 0
        if self._gop or frag.keyframe:
            if self._gop_bytes + len(frag.data) <= MAX_GOP_BYTES:
                self._gop.append(frag)
                self._gop_bytes += len(frag.data)
        self._last_at = time.monotonic()
        for q in self._viewers:
            q.put(frag.data, frag.keyframe)
        self._news.set()

    # --- snapshots -----------------------------------------------------------------------------------

    async def snapshot(
        self, max_age: float = SNAPSHOT_MAX_AGE_S, timeout: float = SNAPSHOT_TIMEOUT_S
    ) -> bytes:
        """A JPEG at most ``max_age`` old, from the running upstream (started for it if idle)."""
        self._require_on()
        async with self._snapshot_lock:
            if self._snapshot is not None and time.monotonic() - self._snapshot[0] <= max_age:
                return self._snapshot[1]
            self._holds += 1
            try:
                self._want()
                async with asyncio.timeout(timeout):
                    shot = await self._fresh_frame(max_age)
            except TimeoutError:
                raise CameraUnavailable(
                    self.error or f"the camera at {self._where()} sent no picture within {timeout:.0f} s"
                ) from None
            finally:
                self._holds -= 1
                self._maybe_idle()
            self._snapshot = (time.monotonic(), shot)
            return shot

    async def _fresh_frame(self, max_age: float) -> bytes:
        failures = self._failures
        while True:
            fresh = time.monotonic() - self._last_at <= max_age
            if fresh and self.source.codec == "mjpeg" and self._last_frame is not None:
                return self._last_frame
            if fresh and self._init is not None and self._gop:
                shot = await self._decode(self._init, list(self._gop))
                if shot is not None:
                    return shot
            if self._failures > failures and self.error is not None:
                raise CameraUnavailable(self.error, self.error_code or "camera_unavailable")
            self._news.clear()
            await self._news.wait()

    async def _decode(self, init: bytes, gop: list[Fragment]) -> bytes | None:
        """The newest frame of a keyframe interval, as JPEG (a local ffmpeg; no second connection)."""
        frames = sum(f.samples for f in gop)
        proc = await self.tasks.spawn_process(
            *ffmpeg_args.snapshot_argv(frames - 1, ffmpeg=self.ffmpeg),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        try:
            out, _ = await proc.communicate(init + b"".join(f.data for f in gop))
        finally:
            with contextlib.suppress(ProcessLookupError):
                await self.tasks.stop_process(proc)
        return last_jpeg(out) if out else None


def _ffmpeg_reason(lines: list[str]) -> str | None:
    """The line of ffmpeg's stderr that explains an exit, in the user's words where we know it."""
    for line in reversed(lines):
        if "401" in line:
            return "the camera refused the access code (401 Unauthorized)"
        if "Connection refused" in line:
            return "the camera refused the connection"
    return lines[-1] if lines else None


def _at(where: str, e: Exception) -> str:
    """``e``'s words with the camera's address in them."""
    words = str(e)
    if words.startswith("the camera "):
        return f"the camera at {where} {words.removeprefix('the camera ')}"
    return f"the camera at {where}: {words}"


def _without_login(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    return f"{scheme}{sep}{rest.rpartition('@')[2]}" if sep else url
