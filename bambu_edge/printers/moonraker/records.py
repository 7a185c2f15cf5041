"""Moonraker's history jobs and webcams as plain records. Pure; nothing here raises on input.

History (``server.history.list`` / ``notify_history_changed``): one ``HistoryJob`` per finished
job; jobs still ``in_progress`` are left to the live tracker. Webcams (``server.webcams.list``):
the enabled ones with a stream or snapshot URL, relative URLs resolved against the printer's web
server (Mainsail/Fluidd serve ``/webcam/`` through nginx on port 80, not Moonraker's port).
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bambu_edge.printers.values import integer, num, text

# Moonraker's job status -> the history's outcome words (as for Bambu prints).
JOB_STATUS = {
    "completed": "success",
    "cancelled": "cancelled",
    "error": "failed",
    "klippy_shutdown": "failed",
    "klippy_disconnect": "failed",
    "server_exit": "failed",
    "interrupted": "failed",
}
MJPEG_SERVICES = frozenset({"mjpegstreamer", "mjpegstreamer-adaptive", "uv4l-mjpeg", "ipstream"})
WEBRTC_SERVICES = frozenset({"webrtc-camerastreamer", "webrtc-go2rtc", "webrtc-janus", "webrtc-mediamtx"})
_VALID_TIME = (1_000_000_000.0, 10_000_000_000.0)


@dataclass(frozen=True, slots=True)
class HistoryJob:
    job_id: str
    filename: str | None
    status: str  # success | cancelled | failed
    start_time: float
    end_time: float | None
    print_duration_s: float | None
    filament_used_mm: float | None
    filament_type: str | None
    filament_weight_g: float | None
    thumbnail: str | None  # the largest thumbnail's path, relative to the gcodes root


def largest_thumbnail(metadata: Mapping[str, Any], filename: str | None) -> str | None:
    thumbs = metadata.get("thumbnails")
    best: tuple[int, str] | None = None
    for t in thumbs[:16] if type(thumbs) is list else ():
        if type(t) is not dict:
            continue
        rel = text(t.get("relative_path"), 512)
        if not rel or ".." in rel.split("/"):
            continue
        area = (integer(t.get("width"), 0, 10_000) or 0) * (integer(t.get("height"), 0, 10_000) or 0)
        if best is None or area > best[0]:
            best = (area, rel)
    if best is None:
        return None
    folder = filename.rsplit("/", 1)[0] + "/" if filename and "/" in filename else ""
    return folder + best[1]


def history_job(job: Any) -> HistoryJob | None:
    """A finished Moonraker history job; None for one under way or one that does not parse."""
    if type(job) is not dict:
        return None
    job_id = text(job.get("job_id"), 64)
    status = JOB_STATUS.get(text(job.get("status"), 32) or "")
    start = num(job.get("start_time"), *_VALID_TIME)
    if job_id is None or status is None or start is None:
        return None
    meta = job.get("metadata")
    meta = meta if type(meta) is dict else {}
    filename = text(job.get("filename"))
    return HistoryJob(
        job_id=job_id,
        filename=filename,
        status=status,
        start_time=start,
        end_time=num(job.get("end_time"), *_VALID_TIME),
        print_duration_s=num(job.get("print_duration"), 0.0, 1e8),
        filament_used_mm=num(job.get("filament_used"), 0.0, 1e9),
        filament_type=text(meta.get("filament_type"), 64),
        filament_weight_g=num(meta.get("filament_weight_total"), 0.0, 1e6),
        thumbnail=largest_thumbnail(meta, filename),
    )


def history_jobs(result: Any) -> list[HistoryJob]:
    jobs = result.get("jobs") if type(result) is dict else None
    return [j for j in map(history_job, jobs[:1000] if type(jobs) is list else ()) if j is not None]


@dataclass(frozen=True, slots=True)
class Webcam:
    name: str
    service: str | None
    stream_url: str | None  # absolute http(s) URL
    snapshot_url: str | None
    webrtc_only: bool  # only a WebRTC stream exists: the camera component cannot relay it


def resolve_url(url: str | None, host: str) -> str | None:
    """An absolute http(s) URL; a relative one is on the printer's web server (port 80)."""
    if not url:
        return None
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme in ("http", "https") and parsed.netloc:
        return url
    if parsed.scheme or parsed.netloc or not url.startswith("/"):
        return None
    netloc = f"[{host}]" if ":" in host else host
    return f"http://{netloc}{url}"


def webcams(result: Any, host: str) -> list[Webcam]:
    cams = result.get("webcams") if type(result) is dict else None
    out = []
    for c in cams[:16] if type(cams) is list else ():
        if type(c) is not dict or c.get("enabled") is False:
            continue
        name = text(c.get("name"), 100)
        service = text(c.get("service"), 64)
        stream = resolve_url(text(c.get("stream_url"), 2000), host)
        snapshot = resolve_url(text(c.get("snapshot_url"), 2000), host)
        if name is None or (stream is None and snapshot is None):
            continue
        out.append(Webcam(name, service, stream, snapshot, service in WEBRTC_SERVICES))
    return out
