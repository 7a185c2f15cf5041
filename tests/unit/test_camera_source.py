"""The `camera:` key (DESIGN §3), `auto` by model, the ffmpeg command lines, JPEG stream splitting."""

from __future__ import annotations

import glob
import subprocess

import pytest

from bambu_edge.camera import ffmpeg_args
from bambu_edge.camera.jpeg_stream import JpegSplitter, last_jpeg
from bambu_edge.camera.source import CameraSettingError, CameraSource, parse_camera, resolve, tls_target


@pytest.mark.parametrize(
    ("value", "model", "expected"),
    [
        ("auto", "X1C", CameraSource("rtsps", port=322)),
        ("auto", "H2D", CameraSource("rtsps", port=322)),
        ("auto", "P2S", CameraSource("rtsps", port=322)),
        ("auto", "P1S", CameraSource("jpeg6000", port=6000)),
        ("auto", "A1 mini", CameraSource("jpeg6000", port=6000)),
        (None, "A1", CameraSource("jpeg6000", port=6000)),
        ("off", "X1C", CameraSource("off")),
        ({"kind": "jpeg6000", "port": 16000}, "X1C", CameraSource("jpeg6000", port=16000)),
        ({"kind": "rtsps"}, "P1S", CameraSource("rtsps", port=322)),
        ({"url": "rtsp://cam.local/live"}, None, CameraSource("url", url="rtsp://cam.local/live")),
        ("rtsp://cam.local/live", None, CameraSource("url", url="rtsp://cam.local/live")),
        ({"device": "/dev/video0"}, None, CameraSource("device", device="/dev/video0")),
        (
            {"url": "rtsps://cam.lan/live", "ca_file": "/etc/ca.pem"},
            None,
            CameraSource("url", url="rtsps://cam.lan/live", ca_file="/etc/ca.pem"),
        ),
    ],
)
def test_camera_setting_resolves_to_a_source(
    value: object, model: str | None, expected: CameraSource
) -> None:
    assert resolve(parse_camera(value), model) == expected


def test_codec_is_known_from_the_kind() -> None:
    assert CameraSource("rtsps", port=322).codec == "h264"
    assert CameraSource("jpeg6000", port=6000).codec == "mjpeg"
    assert CameraSource("off").codec is None


@pytest.mark.parametrize(
    ("value", "key"),
    [
        ("sometimes", ""),
        ({"kind": "webcam"}, "kind"),
        ({"kind": "rtsps", "port": 70000}, "port"),
        ({"kind": "rtsps", "port": True}, "port"),
        ({"url": "ftp://x"}, "url"),
        ({"device": "video0"}, "device"),
        ({"url": "rtsp://cam/live", "ca_file": "/etc/ca.pem"}, "ca_file"),  # no TLS to verify
        ({"url": "https://cam/live", "ca_file": "ca.pem"}, "ca_file"),
        ({"kind": "rtsps", "colour": 1}, "colour"),
        (["rtsps"], ""),
    ],
)
def test_bad_camera_settings_name_the_key(value: object, key: str) -> None:
    with pytest.raises(CameraSettingError) as e:
        parse_camera(value)
    assert e.value.key == key


def test_fmp4_argv_copies_h264_over_rtsp_tcp() -> None:
    argv = ffmpeg_args.fmp4_argv(ffmpeg_args.input_args(url="rtsp://127.0.0.1:5/streaming/live/1"))
    assert argv[argv.index("-rtsp_transport") + 1] == "tcp"
    assert argv[argv.index("-c:v") + 1] == "copy"
    assert argv[argv.index("-movflags") + 1] == "frag_keyframe+empty_moov+default_base_moof"
    assert argv[-1] == "pipe:1"


def test_substream_is_the_only_reencode() -> None:
    sub = ffmpeg_args.Substream(height=360)
    sw = ffmpeg_args.fmp4_argv(["-i", "x"], substream=sub, encoder="libx264")
    assert sw[sw.index("-c:v") + 1] == "libx264" and "ultrafast" in sw and "scale=-2:360" in sw
    hw = ffmpeg_args.fmp4_argv(["-i", "x"], substream=sub, encoder="h264_v4l2m2m")
    assert hw[hw.index("-c:v") + 1] == "h264_v4l2m2m" and "ultrafast" not in hw


@pytest.mark.skipif(bool(glob.glob("/dev/video*")), reason="this machine may have a V4L2 encoder")
def test_encoder_probe_fails_for_an_encoder_this_machine_lacks() -> None:
    # No /dev/video* here: the V4L2 encoder is built into ffmpeg but cannot open (TESTBED §3c).
    ok = subprocess.run(ffmpeg_args.probe_argv("libx264"), capture_output=True, timeout=60)
    bad = subprocess.run(ffmpeg_args.probe_argv("h264_v4l2m2m"), capture_output=True, timeout=60)
    assert ok.returncode == 0
    assert bad.returncode != 0


def test_jpeg_splitter_recovers_frames_from_any_chunking() -> None:
    frames = [b"\xff\xd8" + bytes([i]) * 50 + b"\xff\xd9" for i in range(5)]
    data = b"junk" + b"".join(frames)
    for chunk in (1, 7, 1000):
        s = JpegSplitter()
        out = []
        for i in range(0, len(data), chunk):
            out += s.feed(data[i : i + chunk])
        assert out == frames[:-1]
        assert s.flush() == frames[-1]
    assert last_jpeg(b"".join(frames)) == frames[-1]


def test_a_tls_camera_url_is_reached_through_loopback_in_plain_words() -> None:
    t = tls_target("rtsps://bblp:secret@cam.lan/streaming/live/1?x=1")
    assert t is not None and (t.host, t.port) == ("cam.lan", 322)
    assert t.loopback_url(4711) == "rtsp://bblp:secret@127.0.0.1:4711/streaming/live/1?x=1"
    h = tls_target("https://192.168.1.9:8443/cam.mjpg")
    assert h is not None and h.loopback_url(80) == "http://127.0.0.1:80/cam.mjpg"
    assert h.host_header == "192.168.1.9:8443"
    assert tls_target("https://cam.lan/x").host_header == "cam.lan"  # type: ignore[union-attr]
    assert tls_target("rtsp://cam.lan/live") is None  # nothing to verify
    args = ffmpeg_args.input_args(url=h.loopback_url(80), host_header=h.host_header)
    assert args[args.index("-headers") + 1] == "Host: 192.168.1.9:8443\r\n"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (
            {"kind": "auto", "substream": True},
            CameraSource("rtsps", port=322, substream=ffmpeg_args.Substream()),
        ),
        (
            {"kind": "rtsps", "port": 8322, "substream": {"height": 241, "bitrate_kbps": 300}},
            CameraSource("rtsps", port=8322, substream=ffmpeg_args.Substream(height=240, bitrate_kbps=300)),
        ),
        (
            {"url": "rtsp://cam.lan/live", "substream": {"height": 480}},
            CameraSource("url", url="rtsp://cam.lan/live", substream=ffmpeg_args.Substream(height=480)),
        ),
        ({"kind": "rtsps", "substream": False}, CameraSource("rtsps", port=322)),
    ],
)
def test_a_camera_may_offer_a_scaled_sub_stream(value: object, expected: CameraSource) -> None:
    source = resolve(parse_camera(value), "X1C")
    assert source == expected
    assert source.sub == expected.substream


def test_a_jpeg_camera_offers_no_sub_stream_it_is_light_already() -> None:
    source = resolve(parse_camera({"kind": "auto", "substream": True}), "P1S")
    assert source.kind == "jpeg6000" and source.sub is None


@pytest.mark.parametrize(
    ("value", "key"),
    [
        ({"kind": "rtsps", "substream": "yes"}, "substream"),
        ({"kind": "rtsps", "substream": {"height": 100}}, "substream.height"),
        ({"kind": "rtsps", "substream": {"bitrate_kbps": True}}, "substream.bitrate_kbps"),
        ({"kind": "rtsps", "substream": {"fps": 5}}, "substream.fps"),
        ({"kind": "auto"}, "kind"),
    ],
)
def test_a_bad_sub_stream_setting_names_its_key(value: object, key: str) -> None:
    with pytest.raises(CameraSettingError) as err:
        parse_camera(value)
    assert err.value.key == key


def test_the_sub_stream_encoder_reads_the_main_stream_on_stdin_and_scales() -> None:
    argv = ffmpeg_args.fmp4_argv(
        ffmpeg_args.STDIN_FMP4, substream=ffmpeg_args.Substream(height=180), encoder="libx264"
    )
    assert argv[argv.index("-i") + 1] == "pipe:0" and argv[-1] == "pipe:1"
    assert "scale=-2:180" in argv and "ultrafast" in argv
    hw = ffmpeg_args.fmp4_argv(
        ffmpeg_args.STDIN_FMP4, substream=ffmpeg_args.Substream(), encoder="h264_v4l2m2m"
    )
    assert "h264_v4l2m2m" in hw and "ultrafast" not in hw
