"""The camera subsystem as a component: one ``CameraSupervisor`` per printer camera, made when
the camera is first asked for, and the camera routes (camera/api.py).

Its config section ``cameras`` (optional) tunes all cameras:
``cameras: {idle_timeout_s: 30, ffmpeg: ffmpeg}``. Which camera a printer has is its own
``camera:`` key (DESIGN §3).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiohttp import web

from bambu_edge.camera import api
from bambu_edge.camera.source import OFF, CameraSource, resolve
from bambu_edge.camera.supervisor import DEFAULT_IDLE_TIMEOUT_S, CameraAccess, CameraSupervisor
from bambu_edge.component import Component, Context
from bambu_edge.config import ConfigNode, SectionSpec
from bambu_edge.printers.bambu import camera as bambu_camera
from bambu_edge.printers.bambu.link import BambuLink
from bambu_edge.printers.base import PrinterLink, printer_logger
from bambu_edge.printers.components import PrintersComponent


@dataclass(frozen=True)
class CamerasConfig:
    idle_timeout_s: int = int(DEFAULT_IDLE_TIMEOUT_S)
    ffmpeg: str = "ffmpeg"


def parse_cameras(node: ConfigNode) -> CamerasConfig:
    s = node.mapping({"idle_timeout_s", "ffmpeg"})
    return CamerasConfig(
        idle_timeout_s=s.int("idle_timeout_s", int(DEFAULT_IDLE_TIMEOUT_S), lo=1, hi=3600) or 1,
        ffmpeg=s.str("ffmpeg", "ffmpeg") or "ffmpeg",
    )


CAMERAS_SECTION = SectionSpec("cameras", parse_cameras)


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

    async def stop(self) -> None:
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
            old = self._cameras.pop(printer_id, None)
            if old is not None:
                await old[2].close()
            return None
        access = _access(link)
        source = resolve(cfg.camera, link.state.model)
        if access is None and source.kind not in ("url", "device"):
            source = CameraSource(OFF)  # a printer type without a camera protocol of ours
        cached = self._cameras.get(printer_id)
        if cached is not None and cached[0] is link and cached[1] == source:
            return cached[2]
        if cached is not None:
            await cached[2].close()
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
