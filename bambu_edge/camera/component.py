"""The camera subsystem as a component: one ``CameraSupervisor`` per printer camera, made when
the camera is first asked for, and the camera routes (camera/api.py).

Its config section ``cameras`` (optional) tunes all cameras:
``cameras: {idle_timeout_s: 30, ffmpeg: ffmpeg, timelapse: {...}}`` (timelapse: camera/timelapse.py).
Which camera a printer has is its own ``camera:`` key (DESIGN §3).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from bambu_edge.camera import api, ffmpeg_args
from bambu_edge.camera.recorder import TimelapseRecorder
from bambu_edge.camera.source import AUTO, OFF, URL, CameraSetting, CameraSource, resolve
from bambu_edge.camera.substream import SubstreamSupervisor
from bambu_edge.camera.supervisor import DEFAULT_IDLE_TIMEOUT_S, CameraAccess, CameraSupervisor
from bambu_edge.camera.timelapse import TimelapseConfig, default_spool_dir, parse_timelapse
from bambu_edge.component import Component, Context
from bambu_edge.config import ConfigNode, SectionSpec
from bambu_edge.files.thumbnails import ThumbnailCache
from bambu_edge.jobs.components import HistoryComponent
from bambu_edge.jobs.history import HistoryRepository
from bambu_edge.printers.bambu import camera as bambu_camera
from bambu_edge.printers.bambu.link import BambuLink
from bambu_edge.printers.base import PrinterLink, printer_logger
from bambu_edge.printers.components import PrintersComponent
from bambu_edge.printers.moonraker.link import MoonrakerLink
from bambu_edge.printers.moonraker.records import Webcam


@dataclass(frozen=True)
class CamerasConfig:
    idle_timeout_s: int = int(DEFAULT_IDLE_TIMEOUT_S)
    ffmpeg: str = "ffmpeg"
    timelapse: TimelapseConfig = field(default_factory=TimelapseConfig)


def parse_cameras(node: ConfigNode) -> CamerasConfig:
    s = node.mapping({"idle_timeout_s", "ffmpeg", "timelapse"})
    return CamerasConfig(
        idle_timeout_s=s.int("idle_timeout_s", int(DEFAULT_IDLE_TIMEOUT_S), lo=1, hi=3600) or 1,
        ffmpeg=s.str("ffmpeg", "ffmpeg") or "ffmpeg",
        timelapse=parse_timelapse(s.node("timelapse")),
    )


CAMERAS_SECTION = SectionSpec("cameras", parse_cameras)


def klipper_source(setting: Any, webcams: list[Webcam]) -> CameraSource | None:
    """``camera: auto`` on a Klipper printer: its first Moonraker webcam that streams MJPEG
    (mjpg-streamer, crowsnest's ustreamer); one that offers only WebRTC cannot be relayed. None
    when another setting was made."""
    mode = setting.mode if isinstance(setting, CameraSetting) else setting
    if mode != AUTO:
        return None
    for cam in webcams:
        if cam.stream_url and not cam.webrtc_only:
            return CameraSource(URL, url=cam.stream_url, mjpeg=True)
    return CameraSource(OFF)


def _access(link: PrinterLink) -> CameraAccess | None:
    if not isinstance(link, BambuLink):
        return None
    st = link.settings
    return CameraAccess(
        host=st.host,
        access_code=st.access_code,
        context=link.storage_context,  # the MQTT link's trust: pinned leaf, or CA + serial
        serial=st.serial if st.ca_file else None,
        live_view_disabled=lambda: bambu_camera.live_view_disabled(link.state.raw),
    )


class CameraComponent(Component):
    name = "camera"
    optional = True
    requires = ("printers",)
    config_section = CAMERAS_SECTION

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.settings: CamerasConfig = ctx.section or CamerasConfig()
        # printer id -> (the link it was made for, its source, its supervisor)
        self._cameras: dict[str, tuple[PrinterLink, CameraSource, CameraSupervisor]] = {}
        self._subs: dict[str, SubstreamSupervisor] = {}  # printer id -> its sub-stream, once asked for
        self.recorder: TimelapseRecorder | None = None
        self._encoder: asyncio.Task[str] | None = None

    @property
    def timelapse_dir(self) -> Path:
        return self.ctx.data_dir / "timelapses"

    async def start(self) -> None:
        tl = self.settings.timelapse
        if not tl.enabled:
            return
        self.recorder = TimelapseRecorder(
            tl,
            self.ctx.bus,
            self.ctx.tasks,
            self.camera,
            self.history,
            out_dir=self.timelapse_dir,
            spool_dir=Path(tl.spool_dir) if tl.spool_dir else default_spool_dir(self.ctx.data_dir),
            ffmpeg=self.settings.ffmpeg,
            encoder=self.encoder,
        )
        self.recorder.start()

    def history(self) -> tuple[HistoryRepository, ThumbnailCache | None] | None:
        """The print history, while it runs (timelapses attach to its records)."""
        comp = self.ctx.running("history", HistoryComponent)
        if comp is None or comp.service is None:
            return None
        return comp.service.repo, comp.thumbnails

    async def encoder(self) -> str:
        """The H.264 encoder (timelapses, sub-streams): the hardware one if it works here (probed once)."""
        if self._encoder is None:
            self._encoder = self.ctx.tasks.spawn(self._probe(), name="camera-encoder-probe")
        return await asyncio.shield(self._encoder)

    async def _probe(self) -> str:
        proc = await self.ctx.tasks.spawn_process(
            *ffmpeg_args.probe_argv(ffmpeg_args.HW_ENCODER, ffmpeg=self.settings.ffmpeg)
        )
        try:
            async with asyncio.timeout(30):
                rc = await proc.wait()
        except TimeoutError:
            rc = -1
        finally:
            await self.ctx.tasks.stop_process(proc)
        return ffmpeg_args.HW_ENCODER if rc == 0 else ffmpeg_args.SW_ENCODER

    async def stop(self) -> None:
        if self.recorder is not None:
            await self.recorder.stop()
        subs, self._subs = list(self._subs.values()), {}
        for sub in subs:
            await sub.close()
        cameras, self._cameras = list(self._cameras.values()), {}
        for _link, _source, sup in cameras:
            await sup.close()

    def routes(self) -> list[web.RouteDef]:
        return api.routes(lambda: self)

    def health(self) -> dict[str, Any]:
        return {"streaming": sum(1 for *_, s in self._cameras.values() if s.state == "streaming")}

    async def camera(self, printer_id: str) -> CameraSupervisor | None:
        """The printer's camera supervisor; None for an unknown printer. A printer that was
        re-added or whose camera setting changed gets a new one."""
        manager = self.ctx.require("printers", PrintersComponent).manager
        link = manager.get(printer_id)
        cfg = manager.config_of(printer_id)
        if link is None or cfg is None:
            await self._forget(printer_id)
            return None
        access = _access(link)
        source = resolve(cfg.camera, link.state.model)
        if isinstance(link, MoonrakerLink):
            source = klipper_source(cfg.camera, link.webcams) or source
        if access is None and source.kind not in ("url", "device"):
            source = CameraSource(OFF)  # a printer type without a camera protocol of ours
        cached = self._cameras.get(printer_id)
        if cached is not None and cached[0] is link and cached[1] == source:
            return cached[2]
        if cached is not None:
            await self._forget(printer_id)
        sup = CameraSupervisor(
            printer_id,
            source,
            access,
            self.ctx.tasks,
            idle_timeout=float(self.settings.idle_timeout_s),
            ffmpeg=self.settings.ffmpeg,
            log=printer_logger(__name__, printer_id),
        )
        self._cameras[printer_id] = (link, source, sup)
        return sup

    async def substream(self, printer_id: str) -> SubstreamSupervisor | None:
        """The printer camera's scaled sub-stream; None when it has none (or no such printer)."""
        main = await self.camera(printer_id)
        if main is None or main.source.sub is None:
            return None
        sub = self._subs.get(printer_id)
        if sub is None or sub.main is not main:
            sub = SubstreamSupervisor(main, main.source.sub, self.encoder)
            self._subs[printer_id] = sub
        return sub

    async def _forget(self, printer_id: str) -> None:
        sub = self._subs.pop(printer_id, None)
        if sub is not None:
            await sub.close()
        old = self._cameras.pop(printer_id, None)
        if old is not None:
            await old[2].close()
