"""A camera's pictures, as the depacketizer gives them, remuxed into the fragmented MP4 a browser
plays: ffmpeg decodes every frame at its size and time, fragments start where a viewer can join
(the keyframes), the timeline runs on across the RTP clock's wrap, and a camera that changes its
picture size is told apart from one that repeats its parameter sets."""

from __future__ import annotations

import itertools
import struct
import subprocess
from pathlib import Path

import pytest

from bambu_edge.camera.fmp4 import Fmp4Splitter, Fragment
from bambu_edge.camera.h264 import NAL_IDR, NAL_PPS, NAL_SPS, nal_type
from bambu_edge.camera.h264_remux import FormatChanged, H264Remuxer
from bambu_edge.camera.rtp_h264 import AccessUnit, H264Depacketizer
from tests.unit.test_camera_fmp4_mux import child, ffprobe
from tests.unit.test_camera_rtp_h264 import FRAMES, PT, STEP, encode, flat, packetize, pictures

START = 2**32 - STEP * 5  # the RTP clock wraps after the fifth picture


@pytest.fixture(scope="module")
def units() -> list[AccessUnit]:
    pics = pictures(encode())
    d = H264Depacketizer(PT)
    units = [u for p in flat(packetize(pics, ts=START)) for u in d.feed(p)]
    assert [u.nals for u in units] == pics
    return units


def remux(
    units: list[AccessUnit], batches: list[int], remuxer: H264Remuxer | None = None
) -> tuple[bytes, list[Fragment]]:
    """Push ``units`` in batches of the sizes given (cycled): the init segment and the fragments."""
    remuxer = remuxer or H264Remuxer()
    frags: list[Fragment] = []
    i = n = 0
    while i < len(units):
        size = batches[n % len(batches)]
        frags += remuxer.push(units[i : i + size])
        i, n = i + size, n + 1
    assert remuxer.init is not None
    return remuxer.init, frags


def tfdt(fragment: bytes) -> int:
    at, _ = child(fragment, "moof/traf/tfdt")
    version, time = struct.unpack_from(">B3xQ", fragment, at)
    assert version == 1
    return time


def durations(fragment: bytes) -> list[int]:
    at, _ = child(fragment, "moof/traf/trun")
    flags, count = struct.unpack_from(">II", fragment, at)
    assert flags & 0xFFFFFF == 0x000701  # data offset; duration, size, flags per sample
    return list(struct.unpack_from(f">{3 * count}I", fragment, at + 12)[::3])


def decodes(path: Path) -> None:
    run = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(path), "-f", "null", "-"], capture_output=True, timeout=60
    )
    assert (run.returncode, run.stderr.decode()) == (0, "")


@pytest.mark.parametrize("batches", [[1], [4, 1, 7, 2], [FRAMES]])
def test_the_remuxed_stream_plays(units: list[AccessUnit], tmp_path: Path, batches: list[int]) -> None:
    init, frags = remux(units, batches)
    path = tmp_path / "camera.mp4"
    path.write_bytes(init + b"".join(f.data for f in frags))
    decodes(path)
    (stream,) = ffprobe(path, "-count_frames", "-show_streams")["streams"]
    assert (stream["codec_name"], stream["width"], stream["height"]) == ("h264", 640, 360)
    assert int(stream["nb_read_frames"]) == FRAMES
    frames = ffprobe(path, "-show_frames", "-show_entries", "frame=pkt_dts,key_frame")["frames"]
    assert [f["pkt_dts"] for f in frames] == [STEP * i for i in range(FRAMES)]  # across the wrap
    assert [i for i, f in enumerate(frames) if f["key_frame"]] == [0, 10, 20]


@pytest.mark.parametrize("batches", [[1], [4, 1, 7, 2], [3], [FRAMES]])
def test_fragments_start_at_keyframes_on_one_timeline(units: list[AccessUnit], batches: list[int]) -> None:
    init, frags = remux(units, batches)
    assert units[5].timestamp < units[4].timestamp  # the RTP clock did wrap
    assert sum(f.samples for f in frags) == FRAMES
    first = [sum(f.samples for f in frags[:k]) for k in range(len(frags))]  # each fragment's first picture
    assert [f.keyframe for f in frags] == [units[i].keyframe for i in first]
    assert {0, 10, 20} <= set(first)  # every keyframe starts a fragment: a viewer can join there
    assert [tfdt(f.data) for f in frags] == [STEP * i for i in first]
    for f, nxt in itertools.pairwise(frags):
        assert tfdt(f.data) + sum(durations(f.data)) == tfdt(nxt.data)  # no gap, no overlap
    # what the daemon says of each fragment is what its bytes say (Fmp4Splitter reads them)
    splitter = Fmp4Splitter()
    assert splitter.feed(init + b"".join(f.data for f in frags)) == frags
    assert splitter.init == init


def test_nothing_before_the_first_keyframe(units: list[AccessUnit], tmp_path: Path) -> None:
    remuxer = H264Remuxer()
    # joined after the first keyframe: P pictures only, nothing a decoder can start with
    assert remuxer.push(units[1:10]) == []
    assert remuxer.init is None
    frags = remuxer.push(units[10:15]) + remuxer.push(units[15:])
    assert frags[0].keyframe
    assert tfdt(frags[0].data) == 0
    assert sum(f.samples for f in frags) == FRAMES - 10
    path = tmp_path / "joined.mp4"
    assert remuxer.init is not None
    path.write_bytes(remuxer.init + b"".join(f.data for f in frags))
    decodes(path)


def without_parameter_sets(unit: AccessUnit) -> AccessUnit:
    return AccessUnit(
        unit.timestamp, [n for n in unit.nals if nal_type(n) not in (NAL_SPS, NAL_PPS)], unit.keyframe
    )


def test_the_parameter_sets_of_the_stream_description(units: list[AccessUnit], tmp_path: Path) -> None:
    """A camera that gives its SPS and PPS only in the SDP (sprop-parameter-sets)."""
    sps, pps = units[0].nals[0], units[0].nals[1]
    assert (nal_type(sps), nal_type(pps)) == (NAL_SPS, NAL_PPS)
    bare = [without_parameter_sets(u) for u in units]
    assert H264Remuxer().push(bare) == []  # no way to describe the stream
    init, frags = remux(bare, [5], H264Remuxer((sps, pps)))
    path = tmp_path / "sdp.mp4"
    path.write_bytes(init + b"".join(f.data for f in frags))
    decodes(path)
    (stream,) = ffprobe(path, "-count_frames", "-show_streams")["streams"]
    assert (stream["width"], stream["height"], int(stream["nb_read_frames"])) == (640, 360, FRAMES)


def test_the_same_sps_again_is_no_change(units: list[AccessUnit]) -> None:
    assert sum(1 for u in units for n in u.nals if nal_type(n) == NAL_SPS) == 3  # at each keyframe
    remuxer = H264Remuxer()
    remux(units, [1], remuxer)
    init = remuxer.init
    assert len(remuxer.push(units[10:20])) == 1  # again, as after a reconnect to the same camera
    assert remuxer.init == init


@pytest.mark.parametrize(("size", "options"), [("320x240", ()), ("640x360", ("-profile:v", "baseline"))])
def test_another_picture_is_a_format_change(
    units: list[AccessUnit], size: str, options: tuple[str, ...]
) -> None:
    other = pictures(encode(size, 1, *options))[0]
    assert nal_type(other[0]) == NAL_SPS and any(nal_type(n) == NAL_IDR for n in other)
    remuxer = H264Remuxer()
    assert remuxer.push(units[:12])
    with pytest.raises(FormatChanged):
        remuxer.push([AccessUnit(units[12].timestamp + STEP, other, True)])


def test_a_slow_camera_one_picture_a_batch(units: list[AccessUnit]) -> None:
    """2 pictures a second, each alone in its batch: a picture lasts until the next one starts, so a
    browser sees no hole between them (where Media Source drops pictures up to a keyframe)."""
    slow = [AccessUnit(START + 45000 * i, u.nals, u.keyframe) for i, u in enumerate(units)]
    _, frags = remux(slow, [1])
    times = [tfdt(f.data) for f in frags]
    assert times == [45000 * i for i in range(FRAMES)]
    # the first picture has nothing to go by; from the second on, each lasts until the next
    assert [durations(f.data) for f in frags[1:]] == [[45000]] * (FRAMES - 1)


def test_the_last_picture_of_a_batch_lasts_as_long_as_the_one_before(units: list[AccessUnit]) -> None:
    """15 fps: each batch's last picture, whose successor has not come yet, gets its predecessor's
    duration rather than a made-up one."""
    fifteen = [AccessUnit(START + 6000 * i, u.nals, u.keyframe) for i, u in enumerate(units)]
    _, frags = remux(fifteen, [3])
    assert all(durations(f.data) == [6000] * f.samples for f in frags)
