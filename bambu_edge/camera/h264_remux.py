"""A camera's H.264 access units -> the fragmented MP4 a browser's Media Source plays: the init
segment from the stream's parameter sets, then fragments of the pictures, a new one at each
keyframe (where a viewer can join or skip ahead), as ``fmp4.Fragment``. Pure.

Timing comes from the RTP timestamps (90 kHz, unwrapped to 64 bits): each fragment starts at its
first picture's own time, so the timeline never drifts. A picture's duration is the gap to the
next; the last one of a batch has not seen its successor yet and gets the previous gap, so that it
is shown now rather than held back for a batch.
"""

from __future__ import annotations

from bambu_edge.camera.fmp4 import Fragment
from bambu_edge.camera.fmp4_mux import Sample, fragment, init_segment
from bambu_edge.camera.h264 import NAL_PPS, NAL_SPS, H264Error, SpsInfo, avcc_sample, nal_type, parse_sps
from bambu_edge.camera.rtp_h264 import AccessUnit

DEFAULT_DURATION = 3000  # 30 fps at 90 kHz, until the stream shows its own
MAX_GAP = 90000 * 10  # a jump beyond this is a new timeline (the camera restarted its clock)


class FormatChanged(Exception):
    """The camera switched to another picture size or profile: viewers need a new init segment."""


class H264Remuxer:
    def __init__(self, parameter_sets: tuple[bytes, ...] = ()):
        """``parameter_sets``: the SDP's SPS and PPS, used until (unless) the stream carries its own."""
        self.init: bytes | None = None
        self.info: SpsInfo | None = None
        self._sps = next((p for p in parameter_sets if p and nal_type(p) == NAL_SPS), None)
        self._pps = next((p for p in parameter_sets if p and nal_type(p) == NAL_PPS), None)
        self._sequence = 0
        self._time = 0  # the decode time of the last picture, 90 kHz
        self._last_ts: int | None = None
        self._duration = DEFAULT_DURATION

    def push(self, units: list[AccessUnit]) -> list[Fragment]:
        """One batch of pictures -> its fragments (none before the first keyframe with its
        parameter sets). FormatChanged when the picture size or profile changes; H264Error when
        the stream's SPS does not parse."""
        groups: list[list[Sample]] = []
        starts: list[int] = []
        for i, unit in enumerate(units):
            for nal in unit.nals:
                kind = nal_type(nal)
                if kind == NAL_SPS:
                    self._new_sps(nal)
                elif kind == NAL_PPS:
                    self._pps = nal
            if self.init is None:
                if not unit.keyframe or self._sps is None or self._pps is None:
                    continue  # nothing to show before the first keyframe and its parameter sets
                self.info = parse_sps(self._sps)
                self.init = init_segment(self._sps, self._pps)
            when = self._advance(unit.timestamp)
            duration = self._duration  # the gap before it, for a batch's last picture
            if i + 1 < len(units):
                gap = (units[i + 1].timestamp - unit.timestamp) & 0xFFFFFFFF
                if 0 < gap <= MAX_GAP:
                    duration = gap
            sample = Sample(avcc_sample(unit.nals), duration, unit.keyframe)
            if unit.keyframe or not groups:
                groups.append([sample])
                starts.append(when)
            else:
                groups[-1].append(sample)
        out = []
        for start, samples in zip(starts, groups, strict=True):
            self._sequence += 1
            data = fragment(self._sequence, start, samples)
            out.append(Fragment(data, samples[0].keyframe, len(samples)))
        return out

    def _advance(self, ts: int) -> int:
        if self._last_ts is not None:
            gap = (ts - self._last_ts) & 0xFFFFFFFF
            if 0 < gap <= MAX_GAP:
                self._time += gap
                self._duration = gap  # the previous gap, for a batch's last picture
            else:  # backwards (reordered) or a jump: keep the timeline going at the current rate
                self._time += self._duration
        self._last_ts = ts
        return self._time

    def _new_sps(self, nal: bytes) -> None:
        if nal == self._sps:
            return
        if self.init is not None and self.info is not None:
            try:
                info = parse_sps(nal)
            except H264Error:
                return  # the decoder will say more; the init segment still describes the stream
            if (info.width, info.height, info.profile_idc) != (
                self.info.width,
                self.info.height,
                self.info.profile_idc,
            ):
                raise FormatChanged(
                    f"the camera changed its picture from {self.info.width}x{self.info.height} "
                    f"to {info.width}x{info.height}"
                )
        self._sps = nal
