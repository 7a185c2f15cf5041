"""H.264 (ITU-T H.264 / ISO/IEC 14496-10) just far enough to remux a camera's stream into MP4: the
NAL unit types a remuxer looks at, the picture size and profile from the sequence parameter set, and
NAL units as MP4 samples (length-prefixed, ISO/IEC 14496-15).

Pure, no I/O. The bytes come from an RTSP camera, so they are untrusted: anything malformed raises
``H264Error``, never an ``IndexError`` or a huge allocation.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

NAL_SLICE = 1
NAL_IDR = 5
NAL_SPS = 7
NAL_PPS = 8
NAL_AUD = 9

# Profiles whose SPS carries chroma_format_idc, bit depths and scaling matrices (7.3.2.1.1).
HIGH_PROFILES = frozenset({100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135})
MAX_MBS = 1024  # 16384 px a side: more than any level allows (level 6.2: 139264 macroblocks a frame)
_MAX_LEADING_ZEROS = 31  # ue(v) values up to 2**32 - 2, the largest any syntax element takes
_LENGTH = struct.Struct(">I")


class H264Error(ValueError):
    """Malformed H.264: truncated, or a value no encoder writes."""


def nal_type(nal: bytes | memoryview) -> int:
    if not nal:
        raise H264Error("an empty NAL unit")
    return nal[0] & 0x1F


def unescape(rbsp: bytes) -> bytes:
    """Drop the emulation prevention bytes (00 00 03 -> 00 00, 7.4.1). After a 03 the zero count
    restarts, so the non-overlapping matches of ``replace`` are exactly the ones a decoder drops."""
    return rbsp.replace(b"\x00\x00\x03", b"\x00\x00")


@dataclass(frozen=True, slots=True)
class SpsInfo:
    width: int  # displayed (cropped) size in pixels
    height: int
    profile_idc: int
    constraints: int  # constraint_set flags byte
    level_idc: int
    # What an avcC record's high-profile trailer repeats (ISO/IEC 14496-15 5.3.3.1.2).
    chroma_format_idc: int = 1
    bit_depth_luma: int = 8
    bit_depth_chroma: int = 8


class _Bits:
    """MSB-first bit reader over an RBSP; reading past the end raises H264Error."""

    __slots__ = ("_bits", "_n", "_pos")

    def __init__(self, data: bytes):
        self._bits = int.from_bytes(data, "big")
        self._n = len(data) * 8
        self._pos = 0

    def u(self, n: int) -> int:
        end = self._pos + n
        if end > self._n:
            raise H264Error("the SPS is truncated")
        self._pos = end
        return (self._bits >> (self._n - end)) & ((1 << n) - 1)

    def flag(self) -> bool:
        return self.u(1) == 1

    def ue(self, limit: int = 2**32 - 2) -> int:
        zeros = 0
        while self.u(1) == 0:
            zeros += 1
            if zeros > _MAX_LEADING_ZEROS:
                raise H264Error("an Exp-Golomb code longer than 32 bits")
        value = (1 << zeros) - 1 + self.u(zeros)
        if value > limit:
            raise H264Error(f"an SPS value of {value} (at most {limit})")
        return value

    def se(self) -> int:
        k = self.ue()
        return (k + 1) // 2 if k & 1 else -(k // 2)


def _skip_scaling_list(bits: _Bits, size: int) -> None:
    last = next_scale = 8
    for _ in range(size):
        if next_scale:
            delta = bits.se()
            if not -128 <= delta <= 127:
                raise H264Error(f"a delta_scale of {delta}")
            next_scale = (last + delta) % 256
        last = next_scale or last


def parse_sps(sps: bytes) -> SpsInfo:
    """Picture size and profile of a sequence parameter set (7.3.2.1.1): the whole NAL unit,
    header byte included, emulation prevention bytes still in."""
    if len(sps) < 4 or nal_type(sps) != NAL_SPS:
        raise H264Error("not an SPS NAL unit")
    bits = _Bits(unescape(bytes(sps[1:])))
    profile_idc, constraints, level_idc = bits.u(8), bits.u(8), bits.u(8)
    bits.ue(31)  # seq_parameter_set_id
    chroma_format_idc, depth_luma, depth_chroma = 1, 8, 8
    separate_planes = False
    if profile_idc in HIGH_PROFILES:
        chroma_format_idc = bits.ue(3)
        if chroma_format_idc == 3:
            separate_planes = bits.flag()
        depth_luma = 8 + bits.ue(6)
        depth_chroma = 8 + bits.ue(6)
        bits.u(1)  # qpprime_y_zero_transform_bypass_flag
        if bits.flag():  # seq_scaling_matrix_present_flag
            for i in range(12 if chroma_format_idc == 3 else 8):
                if bits.flag():
                    _skip_scaling_list(bits, 16 if i < 6 else 64)
    bits.ue(12)  # log2_max_frame_num_minus4
    poc_type = bits.ue(2)
    if poc_type == 0:
        bits.ue(12)  # log2_max_pic_order_cnt_lsb_minus4
    elif poc_type == 1:
        bits.u(1)  # delta_pic_order_always_zero_flag
        bits.se()  # offset_for_non_ref_pic
        bits.se()  # offset_for_top_to_bottom_field
        for _ in range(bits.ue(255)):
            bits.se()  # offset_for_ref_frame
    bits.ue(16)  # max_num_ref_frames
    bits.u(1)  # gaps_in_frame_num_value_allowed_flag
    width_mbs = bits.ue(MAX_MBS - 1) + 1
    height_map_units = bits.ue(MAX_MBS - 1) + 1
    frame_mbs_only = bits.flag()
    if not frame_mbs_only:
        bits.u(1)  # mb_adaptive_frame_field_flag
    bits.u(1)  # direct_8x8_inference_flag
    field_factor = 1 if frame_mbs_only else 2  # a map unit is a field macroblock pair then
    width = width_mbs * 16
    height = height_map_units * 16 * field_factor
    if bits.flag():  # frame_cropping_flag
        left, right, top, bottom = (bits.ue(MAX_MBS * 16) for _ in range(4))
        # CropUnitX/Y (7.4.2.1.1): in chroma samples unless monochrome or coded as separate planes.
        if chroma_format_idc == 0 or separate_planes:
            unit_x, unit_y = 1, field_factor
        else:
            unit_x = 1 if chroma_format_idc == 3 else 2
            unit_y = (2 if chroma_format_idc == 1 else 1) * field_factor
        width -= unit_x * (left + right)
        height -= unit_y * (top + bottom)
        if width <= 0 or height <= 0:
            raise H264Error("the SPS crops away the whole picture")
    return SpsInfo(
        width, height, profile_idc, constraints, level_idc, chroma_format_idc, depth_luma, depth_chroma
    )


def avcc_sample(nals: list[bytes]) -> bytes:
    """One access unit's NAL units as an MP4 sample: each prefixed with its 4-byte length."""
    parts: list[bytes] = []
    for nal in nals:
        parts.append(_LENGTH.pack(len(nal)))
        parts.append(nal)
    return b"".join(parts)
