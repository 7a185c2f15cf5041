"""The picture size and profile of a camera's H.264, read from its SPS: checked against ffprobe on
real x264 output (cropped, odd, interlaced, 4:0:0 to 4:4:4, 10 bit, scaling lists, every POC type);
and untrusted bytes only ever raise H264Error."""

from __future__ import annotations

import json
import random
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from bambu_edge.camera.h264 import (
    NAL_IDR,
    NAL_PPS,
    NAL_SPS,
    H264Error,
    SpsInfo,
    avcc_sample,
    nal_type,
    parse_sps,
    unescape,
)

YUV420 = ["-pix_fmt", "yuv420p"]
INTERLACED = ["-flags", "+ildct", "-x264-params", "interlaced=1"]
# name: (size, profile_idc, ffmpeg encoder options)
CASES = {
    "720p-high": ("1280x720", 100, [*YUV420, "-profile:v", "high"]),
    "1080p-high-cropped": ("1920x1080", 100, [*YUV420, "-profile:v", "high"]),
    "360p-main-cropped": ("640x360", 77, [*YUV420, "-profile:v", "main", "-bf", "2"]),  # POC type 0
    "854x480-baseline": ("854x480", 66, [*YUV420, "-profile:v", "baseline"]),
    "853x481-high444": ("853x481", 244, ["-pix_fmt", "yuv444p", "-profile:v", "high444"]),
    "854x480-high422": ("854x480", 122, ["-pix_fmt", "yuv422p", "-profile:v", "high422"]),
    "854x480-high10": ("854x480", 110, ["-pix_fmt", "yuv420p10le", "-profile:v", "high10"]),
    "854x482-monochrome": ("854x482", 100, ["-pix_fmt", "gray", "-profile:v", "high"]),
    "720p-high-cqm": ("1280x720", 100, [*YUV420, "-profile:v", "high", "-x264-params", "cqm=jvt"]),
    "720p-interlaced": ("1280x720", 100, [*YUV420, "-profile:v", "high", *INTERLACED]),
    "854x480-interlaced": ("854x480", 100, [*YUV420, "-profile:v", "high", *INTERLACED]),
}


def split_annexb(data: bytes) -> list[bytes]:
    """NAL units of an Annex B byte stream (start codes 00 00 01 and 00 00 00 01)."""
    nals = (n.rstrip(b"\x00") for n in data.split(b"\x00\x00\x01"))  # a NAL never ends in 00
    return [n for n in nals if n]


def escape(rbsp: bytes) -> bytes:
    """Insert emulation prevention bytes, as an encoder does (7.4.1)."""
    out = bytearray()
    zeros = 0
    for b in rbsp:
        if zeros >= 2 and b <= 3:
            out.append(3)
            zeros = 0
        out.append(b)
        zeros = zeros + 1 if b == 0 else 0
    return bytes(out)


@dataclass
class Encoded:
    path: Path
    nals: list[bytes]
    probe: dict  # ffprobe's video stream

    @property
    def sps(self) -> bytes:
        return next(n for n in self.nals if nal_type(n) == NAL_SPS)


def probe(path: Path) -> dict:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_streams", "-of", "json", str(path)],
        check=True, capture_output=True, timeout=60,
    ).stdout  # fmt: skip
    return json.loads(out)["streams"][0]


def decode_errors(path: Path) -> str:
    run = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(path), "-f", "null", "-"], capture_output=True, timeout=60
    )
    return f"exit {run.returncode}: {run.stderr.decode()}" if run.returncode or run.stderr else ""


def write_stream(path: Path, nals: list[bytes]) -> Encoded:
    path.write_bytes(b"".join(b"\x00\x00\x00\x01" + n for n in nals))
    return Encoded(path, nals, probe(path))


@pytest.fixture(scope="module")
def encoded(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Encoded]:
    d = tmp_path_factory.mktemp("h264")
    out = {}
    for name, (size, _profile, options) in CASES.items():
        path = d / f"{name}.h264"
        subprocess.run(
            ["ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", f"testsrc=size={size}:rate=30",
             "-frames:v", "3", "-c:v", "libx264", *options, "-f", "h264", "-y", str(path)],
            check=True, timeout=60,
        )  # fmt: skip
        out[name] = Encoded(path, split_annexb(path.read_bytes()), probe(path))
    return out


@pytest.mark.parametrize("name", CASES)
def test_parse_sps_agrees_with_ffprobe(encoded: dict[str, Encoded], name: str) -> None:
    size, profile, _ = CASES[name]
    enc = encoded[name]
    info = parse_sps(enc.sps)
    assert (info.width, info.height) == (enc.probe["width"], enc.probe["height"])
    assert f"{info.width}x{info.height}" == size
    assert info.profile_idc == profile
    assert info.level_idc == enc.probe["level"]


def test_interlaced_sps_counts_field_pairs(encoded: dict[str, Encoded]) -> None:
    # frame_mbs_only_flag 0: the coded height is in macroblock pairs, 736 lines cropped to 720
    enc = encoded["720p-interlaced"]
    assert enc.probe["field_order"] != "progressive"
    assert parse_sps(enc.sps).height == 720


def test_high_profile_fields(encoded: dict[str, Encoded]) -> None:
    assert parse_sps(encoded["853x481-high444"].sps).chroma_format_idc == 3
    assert parse_sps(encoded["854x480-high422"].sps).chroma_format_idc == 2
    assert parse_sps(encoded["854x482-monochrome"].sps).chroma_format_idc == 0
    ten = parse_sps(encoded["854x480-high10"].sps)
    assert (ten.bit_depth_luma, ten.bit_depth_chroma) == (10, 10)
    hd = encoded["720p-high"]
    assert parse_sps(hd.sps) == SpsInfo(1280, 720, 100, 0, hd.probe["level"], 1, 8, 8)


# --- SPS rewritten in the syntax x264 never writes, still decoded by ffmpeg ---------------------


def ue(v: int) -> str:
    b = bin(v + 1)[2:]
    return "0" * (len(b) - 1) + b


def se(v: int) -> str:
    return ue(2 * v - 1 if v > 0 else -2 * v)


def read_ue(bits: str, pos: int) -> tuple[int, int]:
    zeros = bits.index("1", pos) - pos
    end = pos + 2 * zeros + 1
    return int(bits[pos + zeros : end], 2) - 1, end


def rbsp_bits(nal: bytes) -> str:
    """The SPS fields as a bit string: header byte, stop bit and alignment dropped."""
    bits = "".join(f"{b:08b}" for b in unescape(nal[1:])).rstrip("0")
    return bits[:-1]


def nal_from_bits(header: int, bits: str) -> bytes:
    bits += "1"
    bits += "0" * (-len(bits) % 8)
    return bytes([header]) + escape(int(bits, 2).to_bytes(len(bits) // 8, "big"))


def scaling_list(rng: random.Random, size: int) -> str:
    """delta_scale codes of a list of random scales, or one that ends early (a 0 repeats the last)."""
    values = [rng.randint(1, 255) for _ in range(size)]
    if rng.random() < 0.3:
        values = [*values[: rng.randint(0, size - 1)], 0]  # "use the last value for the rest"
    out, last = [], 8
    for v in values:
        delta = (v - last + 128) % 256 - 128
        out.append(se(delta))
        if v == 0:
            break
        last = v
    return "".join(out)


def with_scaling_matrix(sps: bytes, seed: int) -> bytes:
    """x264 puts its scaling lists in the PPS; move some into the SPS (its own PPS lists still win,
    so the stream decodes as before)."""
    bits = rbsp_bits(sps)
    pos = 24
    _, pos = read_ue(bits, pos)  # seq_parameter_set_id
    chroma, pos = read_ue(bits, pos)
    if chroma == 3:
        pos += 1
    for _ in range(2):
        _, pos = read_ue(bits, pos)  # bit depths
    pos += 1  # qpprime_y_zero_transform_bypass_flag
    assert bits[pos] == "0"  # no matrix yet
    rng = random.Random(seed)
    lists = ""
    for i in range(12 if chroma == 3 else 8):
        present = rng.random() < 0.8
        lists += "1" + scaling_list(rng, 16 if i < 6 else 64) if present else "0"
    return nal_from_bits(sps[0], bits[:pos] + "1" + lists + bits[pos + 1 :])


def with_poc_type_1(sps: bytes) -> bytes:
    """A baseline SPS of POC type 2 as POC type 1 with a 3-frame cycle; with
    delta_pic_order_always_zero_flag set the slice headers stay the same."""
    bits = rbsp_bits(sps)
    pos = 24
    for _ in range(2):
        _, pos = read_ue(bits, pos)  # seq_parameter_set_id, log2_max_frame_num_minus4
    poc_type, end = read_ue(bits, pos)
    assert poc_type == 2
    poc1 = ue(1) + "1" + se(-3) + se(70000) + ue(3) + se(2) + se(-1) + se(100000)
    return nal_from_bits(sps[0], bits[:pos] + poc1 + bits[end:])


def rewritten(tmp_path: Path, enc: Encoded, sps: bytes) -> Encoded:
    nals = [sps if nal_type(n) == NAL_SPS else n for n in enc.nals]
    out = write_stream(tmp_path / "rewritten.h264", nals)
    assert decode_errors(out.path) == ""
    return out


@pytest.mark.parametrize("name", ["720p-high-cqm", "853x481-high444", "1080p-high-cropped"])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_sps_scaling_lists_are_skipped(
    encoded: dict[str, Encoded], tmp_path: Path, name: str, seed: int
) -> None:
    enc = encoded[name]
    sps = with_scaling_matrix(enc.sps, seed)
    assert len(sps) > len(enc.sps) + 8
    out = rewritten(tmp_path, enc, sps)
    info = parse_sps(sps)
    assert (info.width, info.height) == (out.probe["width"], out.probe["height"])
    assert (out.probe["width"], out.probe["height"]) == (enc.probe["width"], enc.probe["height"])


def test_poc_type_1(encoded: dict[str, Encoded], tmp_path: Path) -> None:
    enc = encoded["854x480-baseline"]
    sps = with_poc_type_1(enc.sps)
    out = rewritten(tmp_path, enc, sps)
    assert (parse_sps(sps).width, parse_sps(sps).height) == (out.probe["width"], out.probe["height"])
    assert (out.probe["width"], out.probe["height"]) == (854, 480)


# --- untrusted input --------------------------------------------------------------------------


def all_spss(encoded: dict[str, Encoded]) -> list[bytes]:
    spss = [e.sps for e in encoded.values()]
    return [*spss, with_scaling_matrix(encoded["853x481-high444"].sps, 7)]


def test_every_truncation_raises_h264error_until_the_size_is_read(encoded: dict[str, Encoded]) -> None:
    for sps in all_spss(encoded):
        whole = parse_sps(sps)
        failing = []
        for n in range(len(sps)):
            try:
                info = parse_sps(sps[:n])
            except H264Error:
                failing.append(n)
            else:
                assert info == whole  # a parse of a prefix only ever read that prefix
        # Every cut before the last field the parser needs fails, every later one parses.
        assert failing == list(range(len(failing)))
        assert len(failing) > 4


def test_random_bytes_raise_only_h264error(encoded: dict[str, Encoded]) -> None:
    rng = random.Random(20240601)
    spss = all_spss(encoded)
    errors = parsed = 0
    for i in range(20000):
        if i % 2:  # a real SPS with some bytes changed: gets deep into the syntax
            data = bytearray(rng.choice(spss))
            for _ in range(rng.randint(1, 4)):
                data[rng.randrange(1, len(data))] = rng.randrange(256)
            data = bytes(data)
        else:
            profile = rng.choice([66, 77, 100, 244, 44, 118])
            data = bytes([0x67, profile]) + rng.randbytes(rng.randint(0, 40))
        try:
            info = parse_sps(data)
        except H264Error:
            errors += 1
        else:
            parsed += 1
            assert 0 < info.width <= 16384 and 0 < info.height <= 32768
    assert errors > 1000 and parsed > 1000


# After a baseline SPS's profile and level: seq_parameter_set_id, log2_max_frame_num_minus4, POC type
# 2, one reference frame, no gaps, then the size.
_HEAD = ue(0) + ue(0) + ue(2) + ue(1) + "0"


@pytest.mark.parametrize(
    "fields",
    [
        _HEAD + ue(1 << 20) + ue(10),  # 16 million pixels wide
        ue(0) + "0" * 40 + "1",  # an Exp-Golomb code longer than 32 bits
        ue(0) + ue(0) + ue(3),  # POC type 3
        _HEAD + ue(9) + ue(9) + "1" + "0" + "1" + ue(90) + ue(0) * 3,  # 160x160 with 180 cropped off
    ],
)
def test_absurd_values_raise(fields: str) -> None:
    sps = nal_from_bits(0x67, "01000010" + "00000000" + "00011110" + fields + "0" * 8)
    with pytest.raises(H264Error):
        parse_sps(sps)


def test_not_an_sps_raises(encoded: dict[str, Encoded]) -> None:
    pps = next(n for n in encoded["720p-high"].nals if nal_type(n) == NAL_PPS)
    with pytest.raises(H264Error):
        parse_sps(pps)
    with pytest.raises(H264Error):
        nal_type(b"")


# --- emulation prevention, samples -----------------------------------------------------------


def test_unescape_undoes_an_encoders_escaping() -> None:
    rng = random.Random(5)
    for _ in range(2000):
        raw = bytes(rng.choice((0, 0, 0, 1, 2, 3, 4, 255)) for _ in range(rng.randint(0, 30)))
        escaped = escape(raw)
        assert unescape(escaped) == raw
    assert unescape(b"\x00\x00\x03\x00\x00\x03\x01") == b"\x00\x00\x00\x00\x01"
    assert unescape(b"\x00\x00\x03\x03") == b"\x00\x00\x03"


def test_avcc_sample_length_prefixes_each_nal(encoded: dict[str, Encoded]) -> None:
    nals = encoded["720p-high"].nals
    assert NAL_IDR in [nal_type(n) for n in nals]
    sample = avcc_sample(nals)
    back, pos = [], 0
    while pos < len(sample):
        size = int.from_bytes(sample[pos : pos + 4], "big")
        back.append(sample[pos + 4 : pos + 4 + size])
        pos += 4 + size
    assert back == nals and pos == len(sample)
