"""RTP packets of an H.264 stream (RFC 6184, non-interleaved mode) -> access units (one picture's
NAL units). Pure.

Single NAL unit packets, STAP-A aggregates and FU-A fragments; an access unit ends at the RTP
marker bit or where the timestamp changes. A packet lost in between (a sequence gap: cameras drop
packets when their send buffer is full) spoils the picture and every one that refers to it, so the
depacketizer drops what it has and resumes at the next keyframe.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from bambu_edge.camera.h264 import NAL_IDR, NAL_PPS, NAL_SLICE, NAL_SPS, nal_type

_RTP = struct.Struct(">BBHII")  # V/P/X/CC, M/PT, sequence, timestamp, SSRC
STAP_A = 24
FU_A = 28
MAX_AU_BYTES = 8 * 1024 * 1024  # a 4K keyframe is a few hundred kB; beyond this it is not video


@dataclass(slots=True)
class AccessUnit:
    timestamp: int  # RTP clock (32 bits, wraps)
    nals: list[bytes]
    keyframe: bool  # holds an IDR slice: a decoder can start here


class H264Depacketizer:
    def __init__(self, payload_type: int):
        self.payload_type = payload_type
        self.sps: bytes | None = None  # the newest in-band parameter sets
        self.pps: bytes | None = None
        self.dropped = 0  # access units lost to gaps or bad packets
        self._nals: list[bytes] = []
        self._size = 0
        self._ts: int | None = None
        self._keyframe = False
        self._fu: bytearray | None = None
        self._seq: int | None = None
        self._broken = True  # until the first keyframe
        self._spoiled: int | None = None  # the timestamp of the picture a loss cut

    def feed(self, packet: bytes) -> list[AccessUnit]:
        """The access units this packet completes (usually none or one)."""
        if len(packet) < 12:
            return []
        first, second, seq, ts, _ssrc = _RTP.unpack_from(packet)
        if first >> 6 != 2 or second & 0x7F != self.payload_type:
            return []  # not RTP version 2, or another payload on the channel
        start = 12 + 4 * (first & 0x0F)
        if first & 0x10:  # a header extension: its length in 32-bit words
            if len(packet) < start + 4:
                return []
            start += 4 + 4 * struct.unpack_from(">H", packet, start + 2)[0]
        end = len(packet)
        if first & 0x20:  # padding: its count is the last byte
            end -= packet[-1]
        if start >= end:
            return []
        out: list[AccessUnit] = []
        if self._seq is not None and seq != (self._seq + 1) & 0xFFFF:
            self._lose()
        self._seq = seq
        if ts != self._ts:
            if self._nals and self._fu is None:
                out += self._finish()
            elif self._nals or self._fu is not None:
                self._lose()  # a fragment never completed
            self._ts = ts
        if ts == self._spoiled:
            return out  # the rest of a picture that lost a packet
        self._payload(packet, start, end)
        if second & 0x80 and self._fu is None:  # marker: the picture's last packet
            out += self._finish()
        return out

    def _payload(self, p: bytes, start: int, end: int) -> None:
        kind = p[start] & 0x1F
        if 1 <= kind <= 23:
            self._nal(p[start:end])
        elif kind == STAP_A:
            pos = start + 1
            while pos + 2 <= end:
                size = (p[pos] << 8) | p[pos + 1]
                pos += 2
                if size == 0 or pos + size > end:
                    self._lose()
                    return
                self._nal(p[pos : pos + size])
                pos += size
        elif kind == FU_A:
            if end - start < 3:
                return
            indicator, header = p[start], p[start + 1]
            if header & 0x80:  # start of a fragmented NAL unit
                self._fu = bytearray(((indicator & 0xE0) | (header & 0x1F)).to_bytes(1, "big"))
            elif self._fu is None:
                return  # its start was lost (already counted at the gap)
            self._fu += p[start + 2 : end]
            if len(self._fu) > MAX_AU_BYTES:
                self._lose()
            elif header & 0x40:  # its end
                nal, self._fu = bytes(self._fu), None
                self._nal(nal)
        # STAP-B, MTAP and FU-B belong to the interleaved mode, which a camera does not offer us

    def _nal(self, nal: bytes) -> None:
        kind = nal_type(nal)
        if kind == NAL_IDR:
            self._keyframe = True
        elif kind == NAL_SPS:
            self.sps = nal
        elif kind == NAL_PPS:
            self.pps = nal
        self._nals.append(nal)
        self._size += len(nal)
        if self._size > MAX_AU_BYTES:
            self._lose()

    def _finish(self) -> list[AccessUnit]:
        nals, keyframe, ts = self._nals, self._keyframe, self._ts
        self._nals, self._size, self._keyframe, self._fu = [], 0, False, None
        if keyframe and _starts_whole(nals):
            self._broken = False
        if self._broken or not nals or ts is None:
            return []
        return [AccessUnit(ts, nals, keyframe)]

    def _lose(self) -> None:
        if self._nals or self._fu is not None or not self._broken:
            self.dropped += 1
        self._nals, self._size, self._keyframe, self._fu = [], 0, False, None
        self._broken = True
        self._spoiled = self._ts


def _starts_whole(nals: list[bytes]) -> bool:
    """The picture's first slice starts at its first macroblock (first_mb_in_slice 0, coded as a
    single 1 bit): a keyframe that lost its head after a gap, or before the session's first
    packet, is not whole even though its later slices are IDR slices."""
    first = next((n for n in nals if nal_type(n) in (NAL_SLICE, NAL_IDR)), None)
    return first is not None and len(first) > 1 and first[1] & 0x80 != 0
