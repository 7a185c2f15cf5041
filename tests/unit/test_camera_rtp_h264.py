"""A camera's RTP packets back into pictures: real x264 output, packetized here exactly as RFC 6184
says (single NAL units, STAP-A for the parameter sets, FU-A for large slices), comes out of the
depacketizer byte for byte; a lost packet costs the pictures up to the next keyframe, never a
broken picture; what is not our video is ignored, and nothing a camera sends makes it raise."""

from __future__ import annotations

import functools
import random
import struct
import subprocess

import pytest

from bambu_edge.camera.h264 import NAL_IDR, NAL_PPS, NAL_SLICE, NAL_SPS, nal_type
from bambu_edge.camera.rtp_h264 import FU_A, STAP_A, AccessUnit, H264Depacketizer
from tests.unit.test_camera_fmp4_mux import split_annexb

PT = 96
SSRC = 0x1A2B3C4D
MTU = 1200  # payload bytes a packet: RTP under an Ethernet frame, as cameras send it
FRAMES = 30
GOP = 10  # IDRs at 0, 10, 20
STEP = 3000  # 30 fps at 90 kHz


@functools.cache
def encode(size: str = "640x360", frames: int = FRAMES, *options: str) -> tuple[bytes, ...]:
    """NAL units of x264's Annex B output. Noise makes every picture several packets long."""
    run = subprocess.run(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", f"testsrc=size={size}:rate=30",
         "-frames:v", str(frames), "-vf", "noise=alls=8:allf=t", "-c:v", "libx264", "-pix_fmt", "yuv420p",
         "-g", str(GOP), "-sc_threshold", "0", "-bf", "0", *options, "-f", "h264", "-"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return tuple(split_annexb(run.stdout))


def is_slice(nal: bytes) -> bool:
    return nal_type(nal) in (NAL_SLICE, NAL_IDR)


def pictures(nals: tuple[bytes, ...]) -> list[list[bytes]]:
    """Access units as the encoder wrote them: a new one at a parameter set or SEI after a slice, or
    at a slice with first_mb_in_slice 0 (a single 1 bit) after a slice."""
    units: list[list[bytes]] = []
    for nal in nals:
        if not units or (any(map(is_slice, units[-1])) and (not is_slice(nal) or nal[1] & 0x80)):
            units.append([])
        units[-1].append(nal)
    return units


def is_keyframe(picture: list[bytes]) -> bool:
    return any(nal_type(n) == NAL_IDR for n in picture)


def rtp(
    payload: bytes,
    seq: int,
    ts: int,
    *,
    marker: bool = False,
    pt: int = PT,
    version: int = 2,
    csrc: int = 0,
    extension: bytes | None = None,
    padding: int = 0,
) -> bytes:
    first = version << 6 | (0x20 if padding else 0) | (0x10 if extension is not None else 0) | csrc
    packet = struct.pack(">BBHII", first, (0x80 if marker else 0) | pt, seq & 0xFFFF, ts & 0xFFFFFFFF, SSRC)
    packet += struct.pack(f">{csrc}I", *range(1, csrc + 1))
    if extension is not None:
        packet += struct.pack(">HH", 0xBEDE, len(extension) // 4) + extension
    packet += payload
    if padding:
        packet += bytes(padding - 1) + bytes([padding])
    return packet


def payloads(picture: list[bytes]) -> list[bytes]:
    """One picture's RTP payloads (RFC 6184, packetization-mode 1): SPS and PPS aggregated in a
    STAP-A (5.7.1), a NAL unit over the MTU in FU-A fragments (5.8), others alone (5.6)."""
    out: list[bytes] = []
    i = 0
    while i < len(picture):
        nal = picture[i]
        if nal_type(nal) == NAL_SPS and i + 1 < len(picture) and nal_type(picture[i + 1]) == NAL_PPS:
            sps, pps = nal, picture[i + 1]
            nri = max(sps[0] & 0x60, pps[0] & 0x60)
            out.append(
                bytes([nri | STAP_A]) + struct.pack(">H", len(sps)) + sps + struct.pack(">H", len(pps)) + pps
            )
            i += 2
            continue
        if len(nal) <= MTU:
            out.append(nal)
        else:
            body = nal[1:]
            chunks = [body[j : j + MTU - 2] for j in range(0, len(body), MTU - 2)]
            for k, chunk in enumerate(chunks):
                start, end = 0x80 if k == 0 else 0, 0x40 if k == len(chunks) - 1 else 0
                out.append(bytes([nal[0] & 0xE0 | FU_A, start | end | nal[0] & 0x1F]) + chunk)
        i += 1
    return out


def packetize(
    pics: list[list[bytes]], *, seq: int = 0, ts: int = 0, step: int = STEP, **header
) -> list[list[bytes]]:
    """Each picture's RTP packets; the marker bit on a picture's last one (RFC 6184 5.1)."""
    out: list[list[bytes]] = []
    n = 0
    for i, picture in enumerate(pics):
        parts = payloads(picture)
        out.append(
            [
                rtp(p, seq + n + k, ts + step * i, marker=k == len(parts) - 1, **header)
                for k, p in enumerate(parts)
            ]
        )
        n += len(parts)
    return out


def flat(packets: list[list[bytes]]) -> list[bytes]:
    return [p for picture in packets for p in picture]


def depacketize(packets: list[bytes], d: H264Depacketizer | None = None) -> list[AccessUnit]:
    d = d or H264Depacketizer(PT)
    return [unit for p in packets for unit in d.feed(p)]


def nals_of(units: list[AccessUnit]) -> list[list[bytes]]:
    return [u.nals for u in units]


@pytest.fixture(scope="module")
def pics() -> list[list[bytes]]:
    pics = pictures(encode())
    assert len(pics) == FRAMES
    assert [i for i, p in enumerate(pics) if is_keyframe(p)] == [0, 10, 20]
    return pics


def test_the_pictures_come_out_as_the_encoder_made_them(pics: list[list[bytes]]) -> None:
    packets = packetize(pics, seq=1000, ts=123456)
    kinds = {p[12] & 0x1F for p in flat(packets)}
    assert {STAP_A, FU_A} <= kinds and kinds & set(range(1, 24))  # every kind of packet
    assert all(len(p) >= 3 for p in packets[1:GOP])  # P pictures of several packets
    d = H264Depacketizer(PT)
    units = []
    for picture, its_packets in zip(pics, packets, strict=True):
        out = [u for p in its_packets[:-1] for u in d.feed(p)]
        assert out == []  # nothing until the picture's last packet ...
        (unit,) = d.feed(its_packets[-1])  # ... and then at once, not a picture late
        assert unit.nals == picture
        units.append(unit)
    assert [u.keyframe for u in units] == [is_keyframe(p) for p in pics]
    assert [u.timestamp for u in units] == [123456 + STEP * i for i in range(FRAMES)]
    assert d.dropped == 0
    assert (d.sps, d.pps) == (pics[0][0], pics[0][1])


def test_without_marker_bits_a_picture_ends_at_the_next_timestamp(pics: list[list[bytes]]) -> None:
    packets = [bytes([p[0], p[1] & 0x7F]) + p[2:] for p in flat(packetize(pics))]
    units = depacketize(packets)
    assert nals_of(units) == pics[:-1]  # the last one waits for its successor


def test_multi_slice_pictures() -> None:
    pics = pictures(encode("640x360", FRAMES, "-slices", "4"))
    assert len(pics) == FRAMES
    assert all(sum(map(is_slice, p)) == 4 for p in pics)
    units = depacketize(flat(packetize(pics)))
    assert nals_of(units) == pics
    assert [u.keyframe for u in units] == [is_keyframe(p) for p in pics]


def test_nothing_before_the_first_keyframe(pics: list[list[bytes]]) -> None:
    packets = packetize(pics)
    d = H264Depacketizer(PT)
    assert depacketize(flat(packets[3:10]), d) == []  # joined between keyframes
    units = depacketize(flat(packets[10:]), d)
    assert nals_of(units) == pics[10:]
    assert units[0].keyframe
    # Joined in the middle of a picture: its tail is not a picture.
    assert nals_of(depacketize(flat(packets)[len(flat(packets[:4])) + 1 :])) == pics[10:]


def lose(packets: list[list[bytes]], picture: int, which: slice) -> list[bytes]:
    kept = [list(p) for p in packets]
    del kept[picture][which]
    return flat(kept)


def test_a_lost_packet_costs_the_pictures_up_to_the_next_keyframe(pics: list[list[bytes]]) -> None:
    packets = packetize(pics)
    middle = len(packets[4]) // 2
    assert 0 < middle < len(packets[4]) - 1
    d = H264Depacketizer(PT)
    units = depacketize(lose(packets, 4, slice(middle, middle + 1)), d)
    assert nals_of(units) == pics[:4] + pics[10:]
    assert d.dropped == 1
    # and again in the next group of pictures: its last P picture loses its last packet
    kept = [list(p) for p in packets]
    del kept[4][middle]
    del kept[19][-1]
    d = H264Depacketizer(PT)
    assert nals_of(depacketize(flat(kept), d)) == pics[:4] + pics[10:19] + pics[20:]
    assert d.dropped == 2


def test_a_lost_keyframe_packet_costs_the_whole_group(pics: list[list[bytes]]) -> None:
    packets = packetize(pics)
    middle = len(packets[10]) // 2
    d = H264Depacketizer(PT)
    assert nals_of(depacketize(lose(packets, 10, slice(middle, middle + 1)), d)) == pics[:10] + pics[20:]
    assert d.dropped == 1


def test_a_whole_lost_picture(pics: list[list[bytes]]) -> None:
    d = H264Depacketizer(PT)
    assert nals_of(depacketize(lose(packetize(pics), 5, slice(None)), d)) == pics[:5] + pics[10:]
    assert d.dropped == 1


def first_slice_packet(picture_packets: list[bytes]) -> int:
    """The index of the packet that carries (the start of) the picture's first slice."""
    for i, p in enumerate(picture_packets):
        kind = p[12] & 0x1F
        if kind == FU_A:
            kind = p[13] & 0x1F
        if kind in (NAL_SLICE, NAL_IDR):
            return i
    raise AssertionError("no slice")


def test_a_keyframe_that_lost_its_first_slice_is_not_shown() -> None:
    """Cameras cut a picture into slices: a keyframe whose head was lost is still missing a part
    of the picture, whatever its later slices say."""
    pics = pictures(encode("640x360", FRAMES, "-slices", "4"))
    packets = packetize(pics)
    head = first_slice_packet(packets[10])
    # the packets up to and with the first slice's first one lost, the rest of the picture intact
    d = H264Depacketizer(PT)
    units = depacketize(lose(packets, 10, slice(0, head + 1)), d)
    assert nals_of(units) == pics[:10] + pics[20:]
    assert d.dropped == 1
    # a session that starts just there: the first picture shown is the next whole keyframe
    start = len(flat(packets[:10])) + head + 1
    assert nals_of(depacketize(flat(packets)[start:])) == pics[20:]


def test_other_payload_types_and_versions_are_ignored(pics: list[list[bytes]]) -> None:
    packets = flat(packetize(pics))
    mixed = []
    for i, p in enumerate(packets):
        mixed.append(p)
        mixed.append(bytes([p[0], p[1] & 0x80 | 97]) + p[2:])  # another payload on the channel
        mixed.append(bytes([0x40 | p[0] & 0x3F]) + p[1:])  # RTP version 1
        mixed.append(rtp(b"\x65\x88", 60000 + i, 999, marker=True, pt=PT, version=0))
        mixed.append(bytes(11))  # shorter than an RTP header
        mixed.append(bytes([0x80, 200]) + bytes(26))  # an RTCP sender report
    d = H264Depacketizer(PT)
    assert nals_of(depacketize(mixed, d)) == pics
    assert d.dropped == 0


@pytest.mark.parametrize(
    "header",
    [
        {"padding": 1},
        {"padding": 7},
        {"csrc": 2},
        {"extension": b""},
        {"extension": bytes(range(12))},
        {"csrc": 15, "extension": b"\x10\x20\x30\x40", "padding": 4},
    ],
)
def test_padding_csrc_and_header_extensions(pics: list[list[bytes]], header: dict) -> None:
    d = H264Depacketizer(PT)
    assert nals_of(depacketize(flat(packetize(pics, **header)), d)) == pics
    assert d.dropped == 0


def test_sequence_numbers_wrap(pics: list[list[bytes]]) -> None:
    packets = flat(packetize(pics, seq=65535 - 20))
    seqs = [struct.unpack_from(">H", p, 2)[0] for p in packets]
    assert 65535 in seqs and 0 in seqs
    d = H264Depacketizer(PT)
    units = depacketize(packets, d)
    assert nals_of(units) == pics
    assert d.dropped == 0


def test_timestamps_wrap(pics: list[list[bytes]]) -> None:
    units = depacketize(flat(packetize(pics, ts=2**32 - STEP * 5)))
    assert nals_of(units) == pics
    assert units[5].timestamp == 0


def test_garbage_never_raises_and_the_stream_comes_back(pics: list[list[bytes]]) -> None:
    rng = random.Random(20240611)
    good = flat(packetize(pics))
    d = H264Depacketizer(PT)
    for i in range(6000):
        kind = i % 4
        if kind == 0:  # anything at all
            packet = rng.randbytes(rng.randrange(0, 1500))
        elif kind == 1:  # an RTP header of ours, then anything
            packet = rtp(rng.randbytes(rng.randrange(0, 200)), rng.randrange(65536), rng.randrange(2**32))
            packet = (
                bytes([packet[0] | rng.randrange(0, 0x40)])
                + bytes([packet[1] | rng.randrange(2) << 7])
                + packet[2:]
            )
        elif kind == 2:  # a real packet with a few bytes changed
            packet = bytearray(rng.choice(good))
            for _ in range(rng.randrange(1, 6)):
                packet[rng.randrange(len(packet))] = rng.randrange(256)
            packet = bytes(packet)
        else:  # a real packet cut short, in order of sequence: the depacketizer takes it in
            packet = good[i // 4 % len(good)][: rng.randrange(12, 40)]
        for unit in d.feed(packet):
            assert unit.nals and all(unit.nals)
    again = flat(packetize(pics, seq=30000, ts=2**31))
    assert nals_of(depacketize(again, d)) == pics  # a clean stream plays again from its keyframe
