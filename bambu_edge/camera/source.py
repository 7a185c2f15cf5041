"""Which camera a printer has: the ``camera:`` key of a printer (DESIGN §3) and what ``auto``
means for its model. Pure; the config loader calls ``parse_camera`` for its file:line: key errors.

    camera: auto | off | rtsps | jpeg6000 | "rtsp://..."        (strings)
    camera: {kind: rtsps|jpeg6000, port: N} | {url: "rtsp://..."} | {device: /dev/video0}
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from bambu_edge.printers.bambu import camera as bambu_camera

AUTO = "auto"
OFF = "off"
RTSPS = "rtsps"
JPEG6000 = "jpeg6000"
URL = "url"
DEVICE = "device"
KINDS = (RTSPS, JPEG6000)
MODES = (AUTO, OFF, RTSPS, JPEG6000)
URL_RE = re.compile(r"^(rtsps?|https?)://\S+$")
DEVICE_RE = re.compile(r"^/dev/\S+$")


class CameraSettingError(ValueError):
    """``key``: the sub-key at fault ("" for the ``camera`` value itself)."""

    def __init__(self, key: str, message: str):
        super().__init__(message)
        self.key = key


@dataclass(frozen=True, slots=True)
class CameraSetting:
    """As configured: ``mode`` is auto, off, rtsps, jpeg6000, url or device."""

    mode: str = AUTO
    port: int | None = None
    url: str | None = None
    device: str | None = None


@dataclass(frozen=True, slots=True)
class CameraSource:
    """A printer's camera as the daemon reaches it."""

    kind: str  # rtsps | jpeg6000 | url | device | off
    port: int | None = None
    url: str | None = None
    device: str | None = None

    @property
    def codec(self) -> str | None:
        """What its viewers get: ``mjpeg`` (JPEG frames) or ``h264`` (fragmented MP4)."""
        if self.kind == OFF:
            return None
        # A USB camera's own MJPEG is passed through (most give it; few give H.264).
        return "mjpeg" if self.kind in (JPEG6000, DEVICE) else "h264"


def parse_camera(value: Any) -> CameraSetting:
    if value is None:
        return CameraSetting()
    if isinstance(value, str):
        if value in MODES:
            return CameraSetting(mode=value)
        if URL_RE.match(value):
            return CameraSetting(mode=URL, url=value)
        raise CameraSettingError("", f"must be one of {', '.join(MODES)}, a URL or a mapping")
    if not isinstance(value, dict):
        raise CameraSettingError("", "must be auto, off, {kind, port}, {url} or {device}")
    keys = set(value)
    if keys <= {"kind", "port"} and "kind" in keys:
        kind = value["kind"]
        if kind not in KINDS:
            raise CameraSettingError("kind", f"must be one of {', '.join(KINDS)}")
        port = value.get("port")
        if port is not None and (
            isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535
        ):
            raise CameraSettingError("port", "must be a whole number from 1 to 65535")
        return CameraSetting(mode=kind, port=port)
    if keys == {"url"}:
        url = value["url"]
        if not isinstance(url, str) or not URL_RE.match(url):
            raise CameraSettingError("url", "must be an rtsp://, rtsps://, http:// or https:// URL")
        return CameraSetting(mode=URL, url=url)
    if keys == {"device"}:
        device = value["device"]
        if not isinstance(device, str) or not DEVICE_RE.match(device):
            raise CameraSettingError("device", "must be a device path, e.g. /dev/video0")
        return CameraSetting(mode=DEVICE, device=device)
    unknown = sorted(keys - {"kind", "port", "url", "device"})
    if unknown:
        raise CameraSettingError(unknown[0], "unknown key (known: kind, port, url, device)")
    raise CameraSettingError("", "give one of {kind, port}, {url} or {device}")


def resolve(setting: CameraSetting | str, model: str | None) -> CameraSource:
    """The camera to use: ``auto`` by the printer's model (BAMBU.md section 8)."""
    if isinstance(setting, str):
        setting = parse_camera(setting)
    mode = setting.mode
    if mode == AUTO:
        mode = bambu_camera.source_for_model(model)
    if mode in KINDS:
        return CameraSource(mode, port=setting.port or bambu_camera.default_port(mode))
    if mode == URL:
        return CameraSource(URL, url=setting.url)
    if mode == DEVICE:
        return CameraSource(DEVICE, device=setting.device)
    return CameraSource(OFF)
