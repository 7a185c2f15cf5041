"""Fragmented MP4 as ffmpeg writes it (``-f mp4 -movflags frag_keyframe+empty_moov+default_base_moof``):
split into the init segment (``ftyp`` + ``moov``) and fragments (``moof`` + ``mdat``), each marked
whether its first sample is a keyframe, so a viewer can join or skip ahead at one.

Fed as the bytes arrive from ffmpeg's stdout; pure, no I/O. A sample is a keyframe when its
``sample_is_non_sync_sample`` flag (ISO/IEC 14496-12 8.8.3.1) is clear; its flags come from the
``trun`` (first-sample or per-sample flags), else the ``tfhd`` default, else the ``trex`` default in
the ``moov``.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass

MAX_BOX_BYTES = 16 * 1024 * 1024  # a 720p fragment is tens of kB; anything this big is not video
_HEADER = struct.Struct(">I4s")
_NON_SYNC = 0x00010000

# tfhd optional fields, in order: flag -> size
_TFHD_FIELDS = ((0x01, 8), (0x02, 4), (0x08, 4), (0x10, 4))
_TFHD_DEFAULT_FLAGS = 0x20
_TRUN_DATA_OFFSET = 0x001
_TRUN_FIRST_FLAGS = 0x004
_TRUN_SAMPLE_FIELDS = ((0x100, 4), (0x200, 4), (0x400, 4), (0x800, 4))  # duration, size, flags, cto
_TRUN_SAMPLE_FLAGS = 0x400


class Fmp4Error(Exception):
    """The stream is not fragmented MP4 (or a box is absurdly large)."""


@dataclass(frozen=True, slots=True)
class Fragment:
    data: bytes  # moof + mdat, ready for a SourceBuffer
    keyframe: bool  # the fragment starts with a keyframe: a decoder can start here
    samples: int  # frames in it


def boxes(data: bytes | memoryview, start: int = 0, end: int | None = None) -> Iterator[tuple[str, int, int]]:
    """(type, payload start, box end) for each complete box in ``data[start:end]``."""
    end = len(data) if end is None else end
    pos = start
    while pos + 8 <= end:
        size, kind = _HEADER.unpack_from(data, pos)
        head = 8
        if size == 1:
            if pos + 16 > end:
                return
            size = struct.unpack_from(">Q", data, pos + 8)[0]
            head = 16
        if size < head:
            raise Fmp4Error(f"a {kind!r} box of {size} bytes")
        if pos + size > end:
            return
        yield kind.decode("latin-1"), pos + head, pos + size
        pos += size


def _full_box_flags(data: bytes, payload: int) -> int:
    return struct.unpack_from(">I", data, payload)[0] & 0xFFFFFF


def trex_default_flags(moov: bytes) -> int | None:
    """The ``trex`` default sample flags of the (first) track, from the init segment's moov."""
    for kind, start, end in boxes(moov):
        if kind == "moov":
            return trex_default_flags(moov[start:end])
        if kind == "mvex":
            for k, s, _e in boxes(moov, start, end):
                if k == "trex":
                    return struct.unpack_from(">I", moov, s + 20)[0]  # after version, track, desc, dur, size
    return None


def _traf_first_sample(data: bytes, start: int, end: int, default: int | None) -> tuple[int | None, int]:
    flags = default
    samples = 0
    first: int | None = None
    for kind, s, _e in boxes(data, start, end):
        if kind == "tfhd":
            tf = _full_box_flags(data, s)
            pos = s + 8  # version/flags, track_ID
            for bit, size in _TFHD_FIELDS:
                if tf & bit:
                    pos += size
            if tf & _TFHD_DEFAULT_FLAGS:
                flags = struct.unpack_from(">I", data, pos)[0]
        elif kind == "trun":
            tr = _full_box_flags(data, s)
            count = struct.unpack_from(">I", data, s + 4)[0]
            pos = s + 8
            if tr & _TRUN_DATA_OFFSET:
                pos += 4
            if first is None and count:
                if tr & _TRUN_FIRST_FLAGS:
                    first = struct.unpack_from(">I", data, pos)[0]
                elif tr & _TRUN_SAMPLE_FLAGS:
                    pos += 4 * sum(
                        1 for bit, _ in _TRUN_SAMPLE_FIELDS if tr & bit and bit < _TRUN_SAMPLE_FLAGS
                    )
                    first = struct.unpack_from(">I", data, pos)[0]
                else:
                    first = flags
            samples += count
    return first, samples


def moof_keyframe(moof: bytes, default_flags: int | None = None) -> tuple[bool, int]:
    """(starts with a keyframe, sample count) of one ``moof`` box (the whole box)."""
    samples = 0
    first_flags: int | None = None
    for kind, start, end in boxes(moof):
        if kind != "moof":
            continue
        for k, s, e in boxes(moof, start, end):
            if k == "traf":
                flags, n = _traf_first_sample(moof, s, e, default_flags)
                if first_flags is None:
                    first_flags = flags
                samples += n
    # No flags anywhere: nothing marks it as a non-sync sample.
    return first_flags is None or not first_flags & _NON_SYNC, samples


class Fmp4Splitter:
    """Feed ffmpeg's bytes; ``init`` is set once ``ftyp`` + ``moov`` have arrived; ``feed`` returns
    the complete fragments. A fragment's bytes are copied out of the buffer once, moof and mdat
    together (a 720p fragment is ~100 kB, five a second)."""

    def __init__(self, max_box: int = MAX_BOX_BYTES):
        self.max_box = max_box
        self.init: bytes | None = None
        self._buf = bytearray()
        self._head: list[bytes] = []  # boxes before the moov (ftyp, free)
        self._trex: int | None = None

    def feed(self, data: bytes | memoryview) -> list[Fragment]:
        self._buf += data
        out: list[Fragment] = []
        consumed = pos = 0  # consumed: handed on or dropped; pos: where the complete boxes end
        moof_at: int | None = None  # a moof waiting for its mdat stays in the buffer
        view = memoryview(self._buf)
        try:
            for kind, _start, end in boxes(view):
                if self.init is None:
                    self._head_box(kind, bytes(view[pos:end]))
                    consumed = end
                elif kind == "moof":
                    moof_at = pos
                elif kind == "mdat" and moof_at is not None:
                    keyframe, samples = moof_keyframe(bytes(view[moof_at:pos]), self._trex)
                    out.append(Fragment(bytes(view[moof_at:end]), keyframe, samples))
                    consumed, moof_at = end, None
                elif moof_at is None:
                    consumed = end  # styp, sidx, prft, free between fragments: nothing a viewer needs
                pos = end
            if len(view) - pos >= 8:  # the box still arriving: not absurdly large
                size = _HEADER.unpack_from(view, pos)[0]
                if size == 1 and len(view) - pos >= 16:
                    size = struct.unpack_from(">Q", view, pos + 8)[0]
                if size > self.max_box:
                    raise Fmp4Error(f"a box of {size} bytes (limit {self.max_box})")
        finally:
            view.release()  # the buffer cannot shrink while a view of it exists
        del self._buf[:consumed]
        return out

    def _head_box(self, kind: str, box: bytes) -> None:
        self._head.append(box)
        if kind == "moov":
            self.init = b"".join(self._head)
            self._head = []
            self._trex = trex_default_flags(box)
