"""The optional scaled sub-stream of an H.264 camera, the only re-encode (DESIGN §5), for many
viewers or a slow link: ``camera/ws?stream=sub``.

One encoding ffmpeg per camera however many viewers watch it. It is fed the main stream's
fragmented MP4 on stdin, so it opens no second connection to the camera: to the main stream's
supervisor the encoder is one more viewer (it keeps the upstream running, it skips to a keyframe
when it falls behind). Its own fragmented MP4 reaches its viewers as the main stream's does. It
starts with the first viewer of the sub-stream and stops when the last one leaves, without the
main stream's idle time: the encoder is the one expensive thing here. The encoder is the component's
probe: ``h264_v4l2m2m`` where it works (Pi 4), else libx264 ultrafast.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from bambu_edge.camera import ffmpeg_args
from bambu_edge.camera.ffmpeg_args import Substream
from bambu_edge.camera.supervisor import CameraSupervisor
from bambu_edge.camera.viewers import DEFAULT_MAX_BYTES, Viewer


class StdinFeed:
    """The main stream into the encoder's stdin: the init segment first, then fragments from a
    keyframe on; while the pipe holds ``max_bytes`` the encoder skips to the next keyframe."""

    def __init__(
        self, stdin: asyncio.StreamWriter, head: list[bytes] | None, max_bytes: int = DEFAULT_MAX_BYTES
    ):
        self.stdin = stdin
        self.max_bytes = max_bytes
        self.skipped = 0
        self._waiting_key = True
        self._closed = False
        for chunk in head or ():
            self.put_head(chunk)

    def put(self, chunk: bytes, keyframe: bool) -> None:
        if self._closed or self.stdin.is_closing():
            return
        buffered = self.stdin.transport.get_write_buffer_size()
        if (self._waiting_key and not keyframe) or buffered + len(chunk) > self.max_bytes:
            self._waiting_key = True
            self.skipped += 1
            return
        self._waiting_key = False
        self.stdin.write(chunk)

    def put_head(self, chunk: bytes) -> None:
        if not self._closed and not self.stdin.is_closing():
            self.stdin.write(chunk)

    def close(self, reason: str = "the camera stopped") -> None:
        """The main stream ended (or restarted): end of input, so the encoder ends too."""
        if not self._closed:
            self._closed = True
            self.stdin.close()


class SubstreamSupervisor(CameraSupervisor):
    def __init__(self, main: CameraSupervisor, sub: Substream, encoder: Callable[[], Awaitable[str]]):
        super().__init__(
            main.printer_id,
            main.source,
            main.access,
            main.tasks,
            idle_timeout=0.0,
            ffmpeg=main.ffmpeg,
            log=main.log,
        )
        self.main = main
        self.sub = sub
        self.encoder = encoder
        self.encoder_name: str | None = None  # as probed, once the encoder has run

    def status(self) -> dict[str, Any]:
        out = super().status()
        if self.main.state == "error" and out["state"] in ("starting", "error"):
            out["state"], out["error"] = "error", self.main.error  # why no picture comes: the camera
        return out

    async def _stream_once(self) -> None:
        self.starts += 1
        self.encoder_name = await self.encoder()
        self.log.info("camera: sub-stream %dp with %s", self.sub.height, self.encoder_name)
        argv = ffmpeg_args.fmp4_argv(
            ffmpeg_args.STDIN_FMP4, ffmpeg=self.ffmpeg, substream=self.sub, encoder=self.encoder_name
        )
        await self._run_ffmpeg(argv, None, feed=self._feed)

    def _feed(self, stdin: asyncio.StreamWriter) -> Viewer:
        return self.main.attach_viewer(lambda head: StdinFeed(stdin, head), client=False)

    def _unfeed(self, fed: Viewer) -> None:
        self.main.detach(fed)

    async def snapshot(self, max_age: float = 2.0, timeout: float = 12.0) -> bytes:
        """The main stream's: full size, and no encoder started for it."""
        return await self.main.snapshot(max_age, timeout)
