"""Records our own timelapse of every print on a printer with a camera.

It follows the bus: a ``history`` event "started" opens a spool for the record, ``printer`` updates
(layer changes) or a timer take a frame from the camera's supervisor (its snapshot: the running
upstream when someone watches, else a short start of its own), "ended" encodes the spool into
``<data_dir>/timelapses/<uid>.mp4`` at low priority and attaches it to the record, with the last
frame as the record's picture when the print had no plate picture.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import shutil
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from bambu_edge.bus import Event, EventBus, Listener
from bambu_edge.camera import ffmpeg_args
from bambu_edge.camera.supervisor import CameraSupervisor, CameraUnavailable
from bambu_edge.camera.timelapse import FrameRule, Spool, TimelapseConfig
from bambu_edge.files.thumbnails import ThumbnailCache, ThumbnailError, key_for
from bambu_edge.jobs.history import HistoryRepository
from bambu_edge.jobs.history_service import HISTORY_EVENT, RecordChange
from bambu_edge.printers.base import PRINTER_EVENT, PrinterUpdate
from bambu_edge.tasks import TaskSet

log = logging.getLogger(__name__)
ENCODE_TIMEOUT_S = 3600.0
PICTURE_SIZE = 256  # px, the long side of the picture made from the last frame


@dataclass
class _Recording:
    uid: str
    record_id: int
    spool: Spool
    rule: FrameRule
    busy: bool = False  # a frame is being taken
    timer: asyncio.Task[None] | None = None
    started: float = field(default_factory=time.monotonic)


def picture_key(uid: str) -> str:
    """The thumbnail cache key of a print's last camera frame (the cache keys by SHA-256)."""
    return key_for(hashlib.sha256(f"camera-frame:{uid}".encode()).hexdigest(), 1)


class TimelapseRecorder:
    def __init__(
        self,
        cfg: TimelapseConfig,
        bus: EventBus,
        tasks: TaskSet,
        camera: Callable[[str], Awaitable[CameraSupervisor | None]],
        history: Callable[[], tuple[HistoryRepository, ThumbnailCache | None] | None],
        *,
        out_dir: Path,
        spool_dir: Path,
        ffmpeg: str = "ffmpeg",
        encoder: Callable[[], Awaitable[str]] | None = None,
    ):
        self.cfg = cfg
        self.bus = bus
        self.tasks = tasks
        self.camera = camera
        self.history = history
        self.out_dir = out_dir
        self.spool_dir = spool_dir
        self.ffmpeg = ffmpeg
        self.encoder = encoder
        self.recordings: dict[str, _Recording] = {}  # printer id -> the print being recorded
        self.bytes_written = 0  # frames spooled, over the daemon's life
        self.videos = 0
        self._listener: Listener | None = None

    def start(self) -> None:
        self._listener = self.bus.listen(HISTORY_EVENT, PRINTER_EVENT, callback=self._on_event)

    async def stop(self) -> None:
        if self._listener is not None:
            self._listener.close()
        # The spools stay on disk: a print still running when the daemon comes back goes on.
        timers = [r.timer for r in self.recordings.values() if r.timer is not None]
        self.recordings.clear()
        await self.tasks.cancel(timers)
        with contextlib.suppress(OSError):
            self.spool_dir.rmdir()  # only when no print's spool is left in it

    # --- events (in the publisher's turn: cheap, no blocking) ---------------------------------------

    def _on_event(self, event: Event) -> None:
        pid = event.printer_id
        if pid is None:
            return
        if event.kind == HISTORY_EVENT and isinstance(event.data, RecordChange):
            rec = event.data.record
            if rec.id is None:
                return
            if event.data.action in ("started", "updated") and rec.open and pid not in self.recordings:
                self._begin(pid, rec.uid, rec.id)
            elif event.data.action == "ended":
                rec_now = self.recordings.get(pid)
                if rec_now is not None and rec_now.uid == rec.uid:
                    del self.recordings[pid]
                    if rec_now.timer is not None:
                        rec_now.timer.cancel()
                    self.tasks.spawn(self._finish(pid, rec_now), name=f"timelapse-{pid}-encode")
        elif event.kind == PRINTER_EVENT and isinstance(event.data, PrinterUpdate):
            rec_now = self.recordings.get(pid)
            if rec_now is None or not self.cfg.every_layer:
                return
            moved = event.data.changes.get("print")
            if not isinstance(moved, dict) or "layer" not in moved:
                return
            layer = moved.get("layer")
            if isinstance(layer, int) and rec_now.rule.due(layer, time.monotonic()):
                self._take(pid, rec_now)

    def _begin(self, pid: str, uid: str, record_id: int) -> None:
        spool = Spool(self.spool_dir / uid, self.cfg.max_spool_mb * 1024 * 1024)
        rec = _Recording(uid, record_id, spool, FrameRule(self.cfg.every_layer, float(self.cfg.interval_s)))
        self.recordings[pid] = rec
        try:
            spool.open()
        except OSError as e:
            log.warning("timelapse: cannot use the spool %s (%s); no timelapse for this print", spool.dir, e)
            del self.recordings[pid]
            return
        log.info("timelapse: recording the print %s on %s", uid, pid)
        if not self.cfg.every_layer:
            rec.timer = self.tasks.spawn(self._every(pid, rec), name=f"timelapse-{pid}")

    async def _every(self, pid: str, rec: _Recording) -> None:
        while True:
            if rec.rule.due(None, time.monotonic()):
                self._take(pid, rec)
            await asyncio.sleep(self.cfg.interval_s)

    def _take(self, pid: str, rec: _Recording) -> None:
        if rec.busy:  # the camera is slower than the layers: this change is skipped
            return
        rec.busy = True
        self.tasks.spawn(self._frame(pid, rec), name=f"timelapse-{pid}-frame")

    async def _frame(self, pid: str, rec: _Recording) -> None:
        try:
            sup = await self.camera(pid)
            if sup is None or sup.source.codec is None:
                return
            jpeg = await sup.snapshot()
            written = await asyncio.to_thread(rec.spool.add, jpeg)
            if written:
                self.bytes_written += len(jpeg)
        except CameraUnavailable as e:
            log.info("timelapse: no frame from %s's camera (%s)", pid, e)
        except OSError as e:
            log.warning("timelapse: cannot write a frame to %s (%s)", rec.spool.dir, e)
        finally:
            rec.busy = False

    # --- the end of a print ------------------------------------------------------------------------

    async def _finish(self, pid: str, rec: _Recording) -> None:
        spool = rec.spool
        frames = await asyncio.to_thread(spool.frames)
        timelapse: str | None = None
        thumbnail: str | None = None
        try:
            if frames:
                timelapse = await self._encode(pid, rec, frames)
            thumbnail = await self._picture(spool, frames)
            found = self.history()
            if found is not None and (timelapse or thumbnail):
                repo, _ = found
                await repo.attach_media(rec.record_id, timelapse=timelapse, thumbnail=thumbnail)
        finally:
            await asyncio.to_thread(shutil.rmtree, spool.dir, True)

    async def _encode(self, pid: str, rec: _Recording, frames: list[Path]) -> str | None:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        name = f"{rec.uid}.mp4"
        out = self.out_dir / name
        encoder = await self.encoder() if self.encoder else ffmpeg_args.SW_ENCODER
        argv = ffmpeg_args.timelapse_argv(
            str(rec.spool.dir / "*.jpg"), str(out.with_suffix(".part.mp4")), fps=self.cfg.fps,
            encoder=encoder, ffmpeg=self.ffmpeg,
        )  # fmt: skip
        if nice := shutil.which("nice"):
            argv = [nice, "-n", "19", *argv]  # the printers' links come first on a Pi
        started = time.monotonic()
        proc = await self.tasks.spawn_process(*argv, stderr=asyncio.subprocess.PIPE)
        try:
            async with asyncio.timeout(ENCODE_TIMEOUT_S):
                _, err = await proc.communicate()
        finally:
            await self.tasks.stop_process(proc)
        if proc.returncode != 0:
            log.warning(
                "timelapse: encoding %s's print failed (%s): %s",
                pid, proc.returncode, err.decode(errors="replace").strip()[-300:],
            )  # fmt: skip
            out.with_suffix(".part.mp4").unlink(missing_ok=True)
            return None
        out.with_suffix(".part.mp4").replace(out)
        self.videos += 1
        log.info(
            "timelapse: %s's print: %d frames -> %s (%d bytes, %s, %.1f s)",
            pid, len(frames), out.name, out.stat().st_size, encoder, time.monotonic() - started,
        )  # fmt: skip
        return name

    async def _picture(self, spool: Spool, frames: list[Path]) -> str | None:
        """The last frame, small, as the record's PNG picture (used only if it has none)."""
        found = self.history()
        last = spool.last
        if last is None and frames:
            last = await asyncio.to_thread(frames[-1].read_bytes)
        if found is None or found[1] is None or last is None:
            return None
        cache = found[1]
        proc = await self.tasks.spawn_process(
            *ffmpeg_args.picture_argv(PICTURE_SIZE, ffmpeg=self.ffmpeg),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        try:
            png, _ = await proc.communicate(last)
        finally:
            await self.tasks.stop_process(proc)
        key = picture_key(spool.dir.name)
        try:
            await asyncio.to_thread(cache.put, key, png)
        except (ThumbnailError, OSError) as e:
            log.warning("timelapse: the last frame could not be kept as the picture (%s)", e)
            return None
        return key
