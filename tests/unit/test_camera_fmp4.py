"""ffmpeg's fragmented MP4 split into the init segment and fragments, keyframes known: what lets a
browser join a running stream and a slow viewer skip ahead."""

from __future__ import annotations

import subprocess

import pytest

from bambu_edge.camera import ffmpeg_args
from bambu_edge.camera.fmp4 import Fmp4Error, Fmp4Splitter, boxes

GOP = 10


@pytest.fixture(scope="module")
def stream(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """3 s of 10 fps H.264 (a keyframe every second), remuxed by the daemon's own ffmpeg argv."""
    d = tmp_path_factory.mktemp("fmp4")
    src = d / "src.mp4"
    subprocess.run(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=10",
         "-t", "3", "-c:v", "libx264", "-preset", "ultrafast", "-g", str(GOP), "-y", str(src)],
        check=True, timeout=60,
    )  # fmt: skip
    argv = ffmpeg_args.fmp4_argv(["-i", str(src)], fragment_ms=200)
    return subprocess.run(argv, check=True, capture_output=True, timeout=60).stdout


def _split(data: bytes, chunk: int) -> tuple[bytes | None, list]:
    s = Fmp4Splitter()
    frags = []
    for i in range(0, len(data), chunk):
        frags += s.feed(data[i : i + chunk])
    return s.init, frags


def test_init_segment_is_ftyp_then_moov(stream: bytes) -> None:
    init, _ = _split(stream, 65536)
    assert init is not None
    assert [k for k, _s, _e in boxes(init)] == ["ftyp", "moov"]


@pytest.mark.parametrize("chunk", [1000, 4096, 65536])
def test_fragments_are_moof_mdat_and_cover_the_stream(stream: bytes, chunk: int) -> None:
    init, frags = _split(stream, chunk)
    assert init is not None
    assert all([k for k, _s, _e in boxes(f.data)] == ["moof", "mdat"] for f in frags)
    # Nothing lost or invented; only the closing index (mfra), which no live viewer needs, is left out.
    video = sum(e - s + 8 for k, s, e in boxes(stream) if k in ("ftyp", "moov", "moof", "mdat"))
    assert {k for k, _s, _e in boxes(stream)} - {"ftyp", "moov", "moof", "mdat"} == {"mfra"}
    assert len(init) + sum(len(f.data) for f in frags) == video
    assert sum(f.samples for f in frags) == 30


def test_keyframes_are_marked_once_per_keyframe_interval(stream: bytes) -> None:
    _, frags = _split(stream, 65536)
    # Fragments of 200 ms at 10 fps: two frames each, a keyframe every 10 frames.
    assert len(frags) > 3
    assert frags[0].keyframe
    frame = 0
    for f in frags:
        assert f.keyframe == (frame % GOP == 0)
        frame += f.samples
    assert sum(f.keyframe for f in frags) == 3


def test_a_stream_that_is_not_mp4_is_refused() -> None:
    with pytest.raises(Fmp4Error):
        Fmp4Splitter(max_box=1000).feed(b"\x7f\xff\xff\xffmdat" + b"x" * 100)
