"""Real x264 output remuxed into fragmented MP4 by the daemon's own muxer: split like ffmpeg's by
Fmp4Splitter, decoded by ffmpeg frame for frame with the right size and timestamps, and its avcC
record byte for byte the one ffmpeg's mp4 muxer writes."""

from __future__ import annotations

import json
import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from bambu_edge.camera.fmp4 import Fmp4Splitter, boxes
from bambu_edge.camera.fmp4_mux import TIMESCALE, Sample, fragment, init_segment
from bambu_edge.camera.h264 import NAL_AUD, NAL_IDR, NAL_PPS, NAL_SPS, H264Error, avcc_sample, nal_type

FRAMES = 60
GOP = 30
GROUP = 6  # frames a fragment: 5 fragments a second at 30 fps, as the daemon sends them
DURATION = TIMESCALE // 30
BASE = 10 * TIMESCALE  # a stream joined 10 s in: the first fragment's decode time is not 0


def split_annexb(data: bytes) -> list[bytes]:
    """NAL units of an Annex B byte stream (start codes 00 00 01 and 00 00 00 01)."""
    nals = (n.rstrip(b"\x00") for n in data.split(b"\x00\x00\x01"))  # a NAL never ends in 00
    return [n for n in nals if n]


def access_units(nals: list[bytes]) -> list[list[bytes]]:
    """Group NAL units into frames: a frame starts at its first slice (first_mb_in_slice 0, coded as
    a single 1 bit), taking the SEI etc. before it along."""
    units: list[list[bytes]] = []
    pending: list[bytes] = []
    for nal in nals:
        kind = nal_type(nal)
        if kind in (NAL_SPS, NAL_PPS, NAL_AUD):
            continue  # the parameter sets live in the init segment
        pending.append(nal)
        if kind in (1, NAL_IDR):
            if nal[1] & 0x80 or not units:
                units.append(pending)
            else:
                units[-1] += pending
            pending = []
    return units


def encode(path: Path, size: str, frames: int, *options: str) -> list[bytes]:
    subprocess.run(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", f"testsrc=size={size}:rate=30",
         "-frames:v", str(frames), "-c:v", "libx264", "-pix_fmt", "yuv420p", "-g", str(GOP), "-bf", "0",
         *options, "-f", "h264", "-y", str(path)],
        check=True, timeout=60,
    )  # fmt: skip
    return split_annexb(path.read_bytes())


@dataclass
class Muxed:
    path: Path
    init: bytes
    fragments: list[bytes]
    groups: list[list[Sample]]
    sps: bytes
    pps: bytes


@pytest.fixture(scope="module")
def muxed(tmp_path_factory: pytest.TempPathFactory) -> Muxed:
    d = tmp_path_factory.mktemp("mux")
    nals = encode(d / "src.h264", "640x360", FRAMES, "-profile:v", "high")
    sps = next(n for n in nals if nal_type(n) == NAL_SPS)
    pps = next(n for n in nals if nal_type(n) == NAL_PPS)
    samples = [
        Sample(avcc_sample(unit), DURATION, any(nal_type(n) == NAL_IDR for n in unit))
        for unit in access_units(nals)
    ]
    assert len(samples) == FRAMES
    groups: list[list[Sample]] = []
    for i, s in enumerate(samples):
        if s.keyframe or i % GROUP == 0 or not groups:
            groups.append([])
        groups[-1].append(s)
    init = init_segment(sps, pps)
    frags, time = [], BASE
    for seq, group in enumerate(groups, 1):
        frags.append(fragment(seq, time, group))
        time += sum(s.duration for s in group)
    path = d / "muxed.mp4"
    path.write_bytes(init + b"".join(frags))
    return Muxed(path, init, frags, groups, sps, pps)


def ffprobe(path: Path, *args: str) -> dict:
    run = subprocess.run(
        ["ffprobe", "-v", "error", "-of", "json", *args, str(path)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return json.loads(run.stdout)


def test_splitter_sees_what_the_muxer_made(muxed: Muxed) -> None:
    splitter = Fmp4Splitter()
    data = muxed.path.read_bytes()
    got = []
    for i in range(0, len(data), 1000):
        got += splitter.feed(data[i : i + 1000])
    assert splitter.init == muxed.init
    assert [f.data for f in got] == muxed.fragments
    assert [f.keyframe for f in got] == [g[0].keyframe for g in muxed.groups]
    assert [f.samples for f in got] == [len(g) for g in muxed.groups]
    # the IDRs x264 put at 0 and 30 start fragments; the fragments between them do not
    assert [f.keyframe for f in got].count(True) == FRAMES // GOP
    assert [f.keyframe for f in got].count(False) == len(got) - FRAMES // GOP > 0


def test_ffmpeg_decodes_every_frame(muxed: Muxed) -> None:
    run = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(muxed.path), "-f", "null", "-"], capture_output=True, timeout=60
    )
    assert (run.returncode, run.stderr.decode()) == (0, "")
    (stream,) = ffprobe(muxed.path, "-count_frames", "-show_streams")["streams"]
    assert stream["codec_name"] == "h264" and stream["profile"] == "High"
    assert (stream["width"], stream["height"]) == (640, 360)
    assert int(stream["nb_read_frames"]) == FRAMES


def test_frame_timestamps_follow_base_time_and_durations(muxed: Muxed) -> None:
    entries = "frame=pkt_dts,best_effort_timestamp,key_frame"
    frames = ffprobe(muxed.path, "-show_frames", "-show_entries", entries)["frames"]
    expected = [BASE + DURATION * i for i in range(FRAMES)]
    assert [f["pkt_dts"] for f in frames] == expected
    assert [f["best_effort_timestamp"] for f in frames] == expected
    assert [i for i, f in enumerate(frames) if f["key_frame"]] == list(range(0, FRAMES, GOP))


def test_data_offset_points_at_the_first_sample(muxed: Muxed) -> None:
    for data, group in zip(muxed.fragments, muxed.groups, strict=True):
        (moof,) = [(s, e) for k, s, e in boxes(data) if k == "moof"]
        (traf,) = [(s, e) for k, s, e in boxes(data, *moof) if k == "traf"]
        (trun,) = [s for k, s, _ in boxes(data, *traf) if k == "trun"]
        flags, count, offset = struct.unpack_from(">IIi", data, trun)
        assert count == len(group) and flags & 0x1  # data-offset-present
        moof_start = moof[0] - 8
        first = group[0].data
        assert data[moof_start + offset : moof_start + offset + len(first)] == first
        sizes = struct.unpack_from(f">{3 * count}I", data, trun + 12)[1::3]
        assert list(sizes) == [len(s.data) for s in group]
        assert data[moof_start + offset :] == b"".join(s.data for s in group)  # the mdat holds them all


def child(data: bytes, path: str) -> tuple[int, int]:
    """(payload start, end) of the box at a path like "moov/trak/tkhd"."""
    start, end = 0, len(data)
    for kind in path.split("/"):
        start, end = next((s, e) for k, s, e in boxes(data, start, end) if k == kind)
    return start, end


def test_init_segment_declares_the_picture_size_and_clock(muxed: Muxed) -> None:
    init = muxed.init
    tkhd, _ = child(init, "moov/trak/tkhd")
    assert struct.unpack_from(">II", init, tkhd + 76) == (640 << 16, 360 << 16)  # 16.16 fixed point
    stsd, _ = child(init, "moov/trak/mdia/minf/stbl/stsd")
    avc1, _ = child(init[stsd + 8 :], "avc1")  # after version/flags, entry_count
    assert struct.unpack_from(">HH", init, stsd + 8 + avc1 + 24) == (640, 360)
    mdhd, _ = child(init, "moov/trak/mdia/mdhd")
    assert struct.unpack_from(">I", init, mdhd + 12)[0] == TIMESCALE


@pytest.mark.parametrize("profile", ["baseline", "main", "high"])
def test_avcc_is_the_record_ffmpeg_writes(tmp_path: Path, profile: str) -> None:
    src = tmp_path / "src.h264"
    nals = encode(src, "854x480", 2, "-profile:v", profile)
    ref = tmp_path / "ref.mp4"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(src), "-c", "copy", "-y", str(ref)], check=True, timeout=60
    )
    sps = next(n for n in nals if nal_type(n) == NAL_SPS)
    pps = next(n for n in nals if nal_type(n) == NAL_PPS)
    assert avcc(init_segment(sps, pps)) == avcc(ref.read_bytes())


def avcc(data: bytes) -> bytes:
    at = data.index(b"avcC") - 4
    return data[at : at + int.from_bytes(data[at : at + 4], "big")]


def test_init_segment_rejects_a_bad_sps(muxed: Muxed) -> None:
    with pytest.raises(H264Error):
        init_segment(muxed.sps[:6], muxed.pps)
    with pytest.raises(H264Error):
        init_segment(muxed.pps, muxed.pps)
