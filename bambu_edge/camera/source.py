"""Which camera a printer has: the ``camera:`` key of a printer (DESIGN §3) and what ``auto``
means for its model. Pure; the config loader calls ``parse_camera`` for its file:line: key errors.

    camera: auto | off | rtsps | jpeg6000 | "rtsp://..."        (strings)
    camera: {kind: rtsps|jpeg6000, port: N} | {url: "rtsp://...", ca_file: PATH} | {device: /dev/video0}

Added to DESIGN's forms (docs/camera.md): any mapping may carry ``substream: true`` or
``substream: {height: 360, bitrate_kbps: 600}``, the optional scaled re-encode of an H.264 camera
(``camera/ws?stream=sub``), and ``{kind: auto, substream: ...}`` keeps ``auto`` with one.

An ``rtsps://`` or ``https://`` URL is verified by the daemon against the system's CA store, or
``ca_file`` when given, and reaches ffmpeg only through a loopback relay (camera/relay.py): ffmpeg
never opens a TLS connection itself, since it would not verify it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from bambu_edge.camera.ffmpeg_args import Substream
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
TLS_SCHEMES = {"rtsps": ("rtsp", 322), "https": ("http", 443)}  # -> (plain scheme, default port)
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
    ca_file: str | None = None  # a TLS URL's CA bundle instead of the system's
    substream: Substream | None = None  # the optional scaled re-encode


@dataclass(frozen=True, slots=True)
class CameraSource:
    """A printer's camera as the daemon reaches it."""

    kind: str  # rtsps | jpeg6000 | url | device | off
    port: int | None = None
    url: str | None = None
    device: str | None = None
    ca_file: str | None = None
    mjpeg: bool = False  # a URL serving MJPEG (a Klipper printer's mjpg-streamer / crowsnest)
    substream: Substream | None = None  # offered only for H.264 sources (see ``sub``)

    @property
    def sub(self) -> Substream | None:
        """The scaled sub-stream, where there is one: JPEG cameras are light already."""
        return self.substream if self.codec == "h264" else None

    @property
    def codec(self) -> str | None:
        """What its viewers get: ``mjpeg`` (JPEG frames) or ``h264`` (fragmented MP4)."""
        if self.kind == OFF:
            return None
        # A USB camera's own MJPEG is passed through (most give it; few give H.264).
        return "mjpeg" if self.kind in (JPEG6000, DEVICE) or self.mjpeg else "h264"


SUBSTREAM_LIMITS = {"height": (144, 1080), "bitrate_kbps": (100, 8000)}


def parse_substream(value: Any) -> Substream | None:
    if value is None or value is False:
        return None
    if value is True:
        return Substream()
    if not isinstance(value, dict):
        raise CameraSettingError("substream", "must be true, false or {height, bitrate_kbps}")
    unknown = sorted(set(value) - set(SUBSTREAM_LIMITS))
    if unknown:
        raise CameraSettingError(f"substream.{unknown[0]}", "unknown key (known: height, bitrate_kbps)")
    fields = {}
    for key, (lo, hi) in SUBSTREAM_LIMITS.items():
        if key not in value:
            continue
        n = value[key]
        if isinstance(n, bool) or not isinstance(n, int) or not lo <= n <= hi:
            raise CameraSettingError(f"substream.{key}", f"must be a whole number from {lo} to {hi}")
        fields[key] = n - n % 2 if key == "height" else n  # H.264 wants even dimensions
    return Substream(**fields)


def parse_camera(value: Any) -> CameraSetting:
    if isinstance(value, dict) and "substream" in value:
        rest = {k: v for k, v in value.items() if k != "substream"}
        sub = parse_substream(value["substream"])
        if rest.get("kind") == AUTO and set(rest) == {"kind"}:
            return CameraSetting(substream=sub)
        setting = _parse_camera(rest)
        if setting.mode == OFF:
            return setting
        return replace(setting, substream=sub)
    return _parse_camera(value)


def _parse_camera(value: Any) -> CameraSetting:
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
    if keys in ({"url"}, {"url", "ca_file"}):
        url = value["url"]
        if not isinstance(url, str) or not URL_RE.match(url):
            raise CameraSettingError("url", "must be an rtsp://, rtsps://, http:// or https:// URL")
        ca_file = value.get("ca_file")
        if ca_file is not None:
            if not isinstance(ca_file, str) or not ca_file.startswith("/"):
                raise CameraSettingError("ca_file", "must be an absolute path to a PEM file")
            if tls_target(url) is None:
                raise CameraSettingError("ca_file", "is only for rtsps:// and https:// URLs")
        return CameraSetting(mode=URL, url=url, ca_file=ca_file)
    if keys == {"device"}:
        device = value["device"]
        if not isinstance(device, str) or not DEVICE_RE.match(device):
            raise CameraSettingError("device", "must be a device path, e.g. /dev/video0")
        return CameraSetting(mode=DEVICE, device=device)
    unknown = sorted(keys - {"kind", "port", "url", "device", "ca_file"})
    if unknown:
        raise CameraSettingError(
            unknown[0], "unknown key (known: kind, port, url, ca_file, device, substream)"
        )
    raise CameraSettingError("", "give one of {kind, port}, {url} or {device}")


def resolve(setting: CameraSetting | str, model: str | None) -> CameraSource:
    """The camera to use: ``auto`` by the printer's model (BAMBU.md section 8)."""
    if isinstance(setting, str):
        setting = parse_camera(setting)
    mode = setting.mode
    if mode == AUTO:
        mode = bambu_camera.source_for_model(model)
    sub = setting.substream
    if mode in KINDS:
        return CameraSource(mode, port=setting.port or bambu_camera.default_port(mode), substream=sub)
    if mode == URL:
        return CameraSource(URL, url=setting.url, ca_file=setting.ca_file, substream=sub)
    if mode == DEVICE:
        return CameraSource(DEVICE, device=setting.device, substream=sub)
    return CameraSource(OFF)


@dataclass(frozen=True, slots=True)
class TlsTarget:
    """Where a TLS camera URL points, and how ffmpeg reaches it through a loopback relay."""

    host: str
    port: int
    plain_scheme: str  # rtsp | http
    rest: tuple[str, str, str, str]  # userinfo ("user:pass@" or ""), path, query, fragment

    def loopback_url(self, local_port: int) -> str:
        userinfo, path, query, fragment = self.rest
        return urlunsplit((self.plain_scheme, f"{userinfo}127.0.0.1:{local_port}", path, query, fragment))

    @property
    def host_header(self) -> str:
        """What an HTTP camera must see as Host (ffmpeg would send the loopback address)."""
        default = TLS_SCHEMES["https"][1]
        name = f"[{self.host}]" if ":" in self.host else self.host
        return name if self.port == default else f"{name}:{self.port}"


def tls_target(url: str) -> TlsTarget | None:
    """The TLS endpoint of an ``rtsps://`` or ``https://`` URL; None for plain URLs."""
    parts = urlsplit(url)
    if parts.scheme not in TLS_SCHEMES or not parts.hostname:
        return None
    plain, default_port = TLS_SCHEMES[parts.scheme]
    userinfo = parts.netloc.rpartition("@")[0]
    return TlsTarget(
        host=parts.hostname,
        port=parts.port or default_port,
        plain_scheme=plain,
        rest=(f"{userinfo}@" if userinfo else "", parts.path, parts.query, parts.fragment),
    )


def url_password(url: str | None) -> str | None:
    """The password in a camera URL (kept out of the log)."""
    return urlsplit(url).password if url else None
