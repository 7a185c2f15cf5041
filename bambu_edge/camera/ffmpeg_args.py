"""ffmpeg command lines (pure): copy H.264 into fragmented MP4 for MSE, pass a USB camera's MJPEG
through, decode one snapshot, and the optional scaled sub-stream, the only re-encode."""

from __future__ import annotations

from dataclasses import dataclass

FMP4_FLAGS = "frag_keyframe+empty_moov+default_base_moof"
HW_ENCODER = "h264_v4l2m2m"  # Pi 4; the Pi 5 has no H.264 encoder
SW_ENCODER = "libx264"
COMMON = ("-hide_banner", "-nostdin", "-nostats", "-loglevel", "warning")
# The main stream's fragmented MP4 on stdin (the sub-stream's encoder): the moov says what it is,
# so nothing is held back to analyse it.
STDIN_FMP4 = ["-fflags", "nobuffer", "-probesize", "32", "-analyzeduration", "0", "-f", "mp4", "-i", "pipe:0"]


@dataclass(frozen=True, slots=True)
class Substream:
    """A scaled re-encode for many viewers or a slow link."""

    height: int = 360
    bitrate_kbps: int = 600
    gop: int = 30


def input_args(
    url: str | None = None, device: str | None = None, host_header: str | None = None
) -> list[str]:
    """``host_header``: the Host an HTTP camera reached through our loopback relay must see."""
    if device is not None:
        return ["-f", "v4l2", "-input_format", "mjpeg", "-i", device]
    if url is None:
        raise ValueError("an input needs a URL or a device")
    if url.startswith(("rtsp://", "rtsps://")):
        # Interleaved over the one TCP connection: through our TLS relay, and no UDP ports to open.
        return ["-rtsp_transport", "tcp", "-fflags", "nobuffer", "-i", url]
    headers = ["-headers", f"Host: {host_header}\r\n"] if host_header else []
    return ["-fflags", "nobuffer", *headers, "-i", url]


def encoder_args(encoder: str, sub: Substream) -> list[str]:
    out = [
        "-vf",
        f"scale=-2:{sub.height}",
        "-c:v",
        encoder,
        "-b:v",
        f"{sub.bitrate_kbps}k",
        "-g",
        str(sub.gop),
    ]
    if encoder == SW_ENCODER:
        out += ["-preset", "ultrafast", "-tune", "zerolatency"]
    return [*out, "-pix_fmt", "yuv420p"]


def fmp4_argv(
    inputs: list[str],
    *,
    ffmpeg: str = "ffmpeg",
    fragment_ms: int = 200,
    substream: Substream | None = None,
    encoder: str = SW_ENCODER,
) -> list[str]:
    """H.264 copied (or the sub-stream encoded) into fragmented MP4 on stdout. Fragments are cut at
    keyframes and every ``fragment_ms`` between them, so a viewer waits a fraction of a second for
    video, not a whole keyframe interval."""
    video = encoder_args(encoder, substream) if substream else ["-c:v", "copy"]
    return [
        ffmpeg, *COMMON, *inputs, "-map", "0:v:0", "-an", *video,
        "-f", "mp4", "-movflags", FMP4_FLAGS, "-frag_duration", str(fragment_ms * 1000), "pipe:1",
    ]  # fmt: skip


def mjpeg_argv(inputs: list[str], *, ffmpeg: str = "ffmpeg") -> list[str]:
    """A USB camera's MJPEG frames passed through unchanged, concatenated on stdout."""
    return [ffmpeg, *COMMON, *inputs, "-map", "0:v:0", "-an", "-c:v", "copy", "-f", "mjpeg", "pipe:1"]


def snapshot_argv(frame_index: int, *, ffmpeg: str = "ffmpeg") -> list[str]:
    """Fragmented MP4 (init + one keyframe interval) on stdin -> the JPEG of frame ``frame_index``
    (the newest) on stdout. Frames before it are decoded, not encoded."""
    return [
        ffmpeg, *COMMON, "-f", "mp4", "-i", "pipe:0",
        "-vf", f"select=eq(n\\,{max(frame_index, 0)})", "-frames:v", "1",
        "-c:v", "mjpeg", "-q:v", "4", "-f", "image2pipe", "pipe:1",
    ]  # fmt: skip


def probe_argv(encoder: str, *, ffmpeg: str = "ffmpeg") -> list[str]:
    """Encode a few test frames with ``encoder``: exit status 0 when it works on this machine."""
    return [
        ffmpeg, *COMMON[:-2], "-loglevel", "error", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=10",
        "-frames:v", "5", "-c:v", encoder, "-f", "null", "-",
    ]  # fmt: skip


def timelapse_argv(
    pattern: str, out: str, *, fps: int = 25, encoder: str = SW_ENCODER, ffmpeg: str = "ffmpeg"
) -> list[str]:
    """A print's spooled JPEGs (``pattern``, a glob) -> an H.264 MP4 that starts playing at once
    (``+faststart``) in any browser (yuv420p, even dimensions)."""
    quality = ["-preset", "veryfast", "-crf", "26"] if encoder == SW_ENCODER else ["-b:v", "4M"]
    return [
        ffmpeg, *COMMON, "-y", "-framerate", str(fps), "-pattern_type", "glob", "-i", pattern,
        "-vf", "scale=trunc(iw/2)*2:trunc(ih/2)*2,format=yuv420p", "-c:v", encoder, *quality,
        "-movflags", "+faststart", "-f", "mp4", out,
    ]  # fmt: skip


def picture_argv(size: int, *, ffmpeg: str = "ffmpeg") -> list[str]:
    """A JPEG on stdin -> a PNG at most ``size`` px on its long side on stdout."""
    return [
        ffmpeg, *COMMON, "-f", "image2pipe", "-c:v", "mjpeg", "-i", "pipe:0",
        "-vf", f"scale='min({size},iw)':'min({size},ih)':force_original_aspect_ratio=decrease",
        "-frames:v", "1", "-c:v", "png", "-f", "image2pipe", "pipe:1",
    ]  # fmt: skip
