"""H.264 into fragmented MP4 (ISO/IEC 14496-12 and -15) for a browser's Media Source Extensions,
without ffmpeg: an init segment (``ftyp`` + ``moov``) from the SPS and PPS, then one ``moof`` +
``mdat`` per group of samples, shaped like ffmpeg's ``frag_keyframe+empty_moov+default_base_moof``
so ``fmp4.Fmp4Splitter`` and the viewers treat both alike.

Pure, no I/O. ``fragment`` runs several times a second per camera on a Pi Zero: it packs the
headers with ``struct`` and copies the sample data once, in the final join.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from bambu_edge.camera.h264 import SpsInfo, parse_sps

TIMESCALE = 90000  # the RTP clock of H.264: RTP timestamp deltas are durations as they are
TRACK_ID = 1

_MATRIX = struct.pack(">9I", 0x00010000, 0, 0, 0, 0x00010000, 0, 0, 0, 0x40000000)  # identity
_UND = (ord("u") - 0x60) << 10 | (ord("n") - 0x60) << 5 | (ord("d") - 0x60)  # ISO 639-2, 5 bits a letter
_AVCC_TRAILER_PROFILES = frozenset({100, 110, 122, 144})  # ISO/IEC 14496-15 5.3.3.1.2

# Sample flags (14496-12 8.8.3.1): sample_depends_on 2 = an I picture; 1 plus non-sync otherwise.
KEYFRAME_FLAGS = 0x02000000
DELTA_FLAGS = 0x01010000

_TFHD_DEFAULT_BASE_IS_MOOF = 0x020000
_TRUN_FLAGS = 0x000701  # data-offset, sample-duration, sample-size, sample-flags
_MOOF_HEAD = struct.Struct(">I4s I4sII I4s I4sII I4sIQ I4sIII")
_TRUN_ENTRY = struct.Struct(">III")
_MDAT_HEAD = struct.Struct(">I4s")
# moof: header 8, mfhd 16, traf header 8, tfhd 16, tfdt 20, trun 20 + 12 a sample
_MOOF_FIXED = 8 + 16 + 8 + 16 + 20 + 20


def _box(kind: bytes, *payload: bytes) -> bytes:
    body = b"".join(payload)
    return struct.pack(">I4s", 8 + len(body), kind) + body


def _full_box(kind: bytes, version: int, flags: int, *payload: bytes) -> bytes:
    return _box(kind, struct.pack(">I", version << 24 | flags), *payload)


def _avcc(sps: bytes, pps: bytes, info: SpsInfo) -> bytes:
    # version 1; profile, compatibility, level as in the SPS; 0xFF: 4-byte NAL lengths; 0xE1: one SPS
    record = [bytes((1, sps[1], sps[2], sps[3], 0xFF, 0xE1)), struct.pack(">H", len(sps)), sps]
    record += [struct.pack(">BH", 1, len(pps)), pps]
    if info.profile_idc in _AVCC_TRAILER_PROFILES:
        # chroma_format, bit depths minus 8 (reserved bits set), numOfSequenceParameterSetExt 0
        depths = (0xF8 | (info.bit_depth_luma - 8), 0xF8 | (info.bit_depth_chroma - 8))
        record.append(bytes((0xFC | info.chroma_format_idc, *depths, 0)))
    return _box(b"avcC", *record)


def init_segment(sps: bytes, pps: bytes, *, timescale: int = TIMESCALE) -> bytes:
    """``ftyp`` + ``moov`` for one H.264 video track; ``sps`` and ``pps`` are whole NAL units
    (no start code, no length). Raises ``H264Error`` for an SPS that does not parse."""
    info = parse_sps(sps)
    width, height = info.width, info.height
    if width > 0xFFFF or height > 0xFFFF:  # parse_sps caps them far below; the sample entry has 16 bits
        raise ValueError(f"a {width}x{height} picture")
    ftyp = _box(b"ftyp", b"isom", struct.pack(">I", 0x200), b"isomiso6avc1mp41")
    mvhd = _full_box(
        b"mvhd", 0, 0,
        struct.pack(">IIIIIH10x", 0, 0, timescale, 0, 0x00010000, 0x0100),  # times, rate 1.0, volume 1.0
        _MATRIX,
        bytes(24),  # pre_defined
        struct.pack(">I", TRACK_ID + 1),  # next_track_ID
    )  # fmt: skip
    tkhd = _full_box(
        b"tkhd", 0, 3,  # enabled, in movie
        struct.pack(">IIIII8xhhhH", 0, 0, TRACK_ID, 0, 0, 0, 0, 0, 0),  # volume 0: video
        _MATRIX,
        struct.pack(">II", width << 16, height << 16),  # 16.16 fixed point
    )  # fmt: skip
    mdhd = _full_box(b"mdhd", 0, 0, struct.pack(">IIIIHH", 0, 0, timescale, 0, _UND, 0))
    hdlr = _full_box(b"hdlr", 0, 0, struct.pack(">I4s12x", 0, b"vide"), b"VideoHandler\0")
    vmhd = _full_box(b"vmhd", 0, 1, bytes(8))  # graphicsmode copy, opcolor 0
    dinf = _box(b"dinf", _full_box(b"dref", 0, 0, struct.pack(">I", 1), _full_box(b"url ", 0, 1)))
    avc1 = _box(
        b"avc1",
        struct.pack(">6xH", 1),  # data_reference_index
        struct.pack(">HH12xHHIIIH", 0, 0, width, height, 0x00480000, 0x00480000, 0, 1),  # 72 dpi, 1 frame
        bytes(32),  # compressorname
        struct.pack(">Hh", 0x18, -1),  # depth, pre_defined
        _avcc(sps, pps, info),
    )
    stbl = _box(
        b"stbl",
        _full_box(b"stsd", 0, 0, struct.pack(">I", 1), avc1),
        _full_box(b"stts", 0, 0, bytes(4)),  # empty: the samples are in the fragments
        _full_box(b"stsc", 0, 0, bytes(4)),
        _full_box(b"stsz", 0, 0, bytes(8)),
        _full_box(b"stco", 0, 0, bytes(4)),
    )
    mdia = _box(b"mdia", mdhd, hdlr, _box(b"minf", vmhd, dinf, stbl))
    trex = _full_box(b"trex", 0, 0, struct.pack(">IIIII", TRACK_ID, 1, 0, 0, 0))
    moov = _box(b"moov", mvhd, _box(b"trak", tkhd, mdia), _box(b"mvex", trex))
    return ftyp + moov


@dataclass(frozen=True, slots=True)
class Sample:
    data: bytes  # avcc_sample(...)
    duration: int  # in timescale units
    keyframe: bool


def fragment(sequence: int, base_time: int, samples: list[Sample]) -> bytes:
    """One ``moof`` + ``mdat``: ``samples`` decoded from ``base_time`` (timescale units) on,
    ``sequence`` counting fragments from 1."""
    if not samples:
        raise ValueError("a fragment needs at least one sample")
    count = len(samples)
    moof_size = _MOOF_FIXED + 12 * count
    traf_size = moof_size - 8 - 16
    payload = sum(len(s.data) for s in samples)
    head = _MOOF_HEAD.pack(
        moof_size, b"moof",
        16, b"mfhd", 0, sequence,
        traf_size, b"traf",
        16, b"tfhd", _TFHD_DEFAULT_BASE_IS_MOOF, TRACK_ID,
        20, b"tfdt", 1 << 24, base_time,  # version 1: a 64-bit decode time
        20 + 12 * count, b"trun", _TRUN_FLAGS, count, moof_size + _MDAT_HEAD.size,  # data offset
    )  # fmt: skip
    pack = _TRUN_ENTRY.pack
    entries = [pack(s.duration, len(s.data), KEYFRAME_FLAGS if s.keyframe else DELTA_FLAGS) for s in samples]
    mdat = _MDAT_HEAD.pack(_MDAT_HEAD.size + payload, b"mdat")
    return b"".join([head, *entries, mdat, *(s.data for s in samples)])
