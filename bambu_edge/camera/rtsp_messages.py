"""RTSP 1.0 (RFC 2326) as a camera client needs it: requests, responses interleaved with the RTP
packets on the one TCP connection (section 10.12), Basic and Digest logins (RFC 2617), and the
H.264 track of the DESCRIBE answer's SDP (RFC 4566, RFC 6184). Pure: bytes in, values out; the
session that sends and reads them is ``rtsp_session``.

A camera is untrusted input: every size is bounded and what does not parse is an ``RtspError``.
"""

from __future__ import annotations

import base64
import hashlib
import math
import os
import re
import struct
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

MAX_HEAD_BYTES = 16 * 1024  # an RTSP answer's status line and headers
MAX_BODY_BYTES = 64 * 1024  # an SDP is a few hundred bytes
USER_AGENT = "bambu-edge"
_INTERLEAVED = struct.Struct(">BBH")  # '$', channel, length
_DOLLAR = 0x24
_DIGEST_PARAM = re.compile(r'(\w+)=(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))')


class RtspError(Exception):
    """The camera answered with an error, or sent something that is not RTSP."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class RtspMessage:
    """An answer (``status`` set) or a request the camera sent us (``status`` None)."""

    status: int | None
    reason: str  # the reason phrase, or the request line
    headers: dict[str, str]  # names in lower case; a repeated header keeps its last value
    body: bytes

    @property
    def cseq(self) -> int | None:
        try:
            return int(self.headers.get("cseq", ""))
        except ValueError:
            return None


def request(method: str, url: str, cseq: int, headers: dict[str, str] | None = None) -> bytes:
    lines = [f"{method} {url} RTSP/1.0", f"CSeq: {cseq}", f"User-Agent: {USER_AGENT}"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")


class Demuxer:
    """Splits what the camera sends into RTP/RTCP packets (``(channel, payload)``) and RTSP
    messages. ``feed`` returns what is complete; the rest waits for the next call."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes | memoryview) -> list[tuple[int, bytes] | RtspMessage]:
        buf = self._buf
        buf += data
        out: list[tuple[int, bytes] | RtspMessage] = []
        pos, end = 0, len(buf)
        unpack = _INTERLEAVED.unpack_from
        while pos < end:
            if buf[pos] == _DOLLAR:
                if end - pos < 4:
                    break
                _, channel, size = unpack(buf, pos)
                if end - pos - 4 < size:
                    break
                out.append((channel, bytes(buf[pos + 4 : pos + 4 + size])))
                pos += 4 + size
                continue
            message = _message(buf, pos, end)
            if message is None:
                break
            msg, pos = message
            out.append(msg)
        del buf[:pos]
        return out


def _message(buf: bytearray, pos: int, end: int) -> tuple[RtspMessage, int] | None:
    head_end = buf.find(b"\r\n\r\n", pos, min(end, pos + MAX_HEAD_BYTES + 4))
    if head_end < 0:
        if end - pos > MAX_HEAD_BYTES:
            raise RtspError("the camera sent an RTSP header over 16 KiB (or something that is not RTSP)")
        return None
    lines = bytes(buf[pos:head_end]).decode("utf-8", "replace").split("\r\n")
    first = lines[0]
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            name = name.strip().lower()
            if name == "www-authenticate" and headers.get(name, "").lower().startswith("digest"):
                continue  # a camera offering Basic and Digest: the one that does not send the code
            headers[name] = value.strip()
    try:
        length = int(headers.get("content-length", "0"))
    except ValueError:
        raise RtspError(
            f"a bad Content-Length in the camera's answer: {headers['content-length']!r}"
        ) from None
    if not 0 <= length <= MAX_BODY_BYTES:
        raise RtspError(f"the camera announced a body of {length} bytes")
    body_at = head_end + 4
    if end - body_at < length:
        return None
    body = bytes(buf[body_at : body_at + length])
    if first.startswith("RTSP/"):
        parts = first.split(" ", 2)
        try:
            status = int(parts[1])
        except (IndexError, ValueError):
            raise RtspError(f"not an RTSP status line: {first[:80]!r}") from None
        return RtspMessage(status, parts[2] if len(parts) > 2 else "", headers, body), body_at + length
    if " RTSP/" not in first:
        raise RtspError(f"the camera sent something that is not RTSP: {first[:80]!r}")
    return RtspMessage(None, first, headers, body), body_at + length


# --- logins --------------------------------------------------------------------------------------


@dataclass
class Login:
    """The ``Authorization`` header for each request once the camera has asked (401)."""

    username: str
    password: str = field(repr=False)
    scheme: str | None = None  # "basic" | "digest" once challenged
    params: dict[str, str] = field(default_factory=dict)
    _nc: int = field(default=0, init=False, repr=False)  # Digest nonce count, per challenge

    def challenge(self, www_authenticate: str) -> None:
        scheme, _, rest = www_authenticate.strip().partition(" ")
        scheme = scheme.lower()
        if scheme not in ("basic", "digest"):
            raise RtspError(f"the camera asks for a login this daemon does not speak ({scheme or '?'})", 401)
        self.scheme = scheme
        self.params = {m[1].lower(): m[2] if m[2] is not None else m[3] for m in _DIGEST_PARAM.finditer(rest)}
        self._nc = 0
        if scheme == "digest":
            algorithm = self.params.get("algorithm", "MD5").upper()
            if algorithm != "MD5":
                raise RtspError(f"the camera asks for Digest with {algorithm}, this daemon speaks MD5", 401)
            if "nonce" not in self.params:
                raise RtspError("the camera's Digest challenge has no nonce", 401)

    def header(self, method: str, uri: str) -> dict[str, str]:
        if self.scheme == "basic":
            token = base64.b64encode(f"{self.username}:{self.password}".encode()).decode("ascii")
            return {"Authorization": f"Basic {token}"}
        if self.scheme == "digest":
            return {"Authorization": self._digest(method, uri)}
        return {}

    def _digest(self, method: str, uri: str) -> str:
        p = self.params
        realm, nonce = p.get("realm", ""), p["nonce"]
        ha1 = _md5(f"{self.username}:{realm}:{self.password}")
        ha2 = _md5(f"{method}:{uri}")
        fields = [f'username="{self.username}"', f'realm="{realm}"', f'nonce="{nonce}"', f'uri="{uri}"']
        qops = [q.strip() for q in p.get("qop", "").split(",") if q.strip()]
        if "auth" in qops:
            self._nc += 1
            nc, cnonce = f"{self._nc:08x}", os.urandom(8).hex()
            response = _md5(f"{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}")
            fields += ["qop=auth", f"nc={nc}", f'cnonce="{cnonce}"']
        else:
            response = _md5(f"{ha1}:{nonce}:{ha2}")
        fields.append(f'response="{response}"')
        if "opaque" in p:
            fields.append(f'opaque="{p["opaque"]}"')
        return "Digest " + ", ".join(fields)


def _md5(text: str) -> str:
    return hashlib.md5(text.encode("utf-8"), usedforsecurity=False).hexdigest()


# --- the SDP -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VideoTrack:
    """The stream's first video track: what to SETUP, and its codec."""

    control: str  # the absolute URL to SETUP
    payload_type: int
    codec: str  # as the rtpmap names it, upper case: "H264", "H265", "JPEG" ...
    clock_rate: int
    parameter_sets: tuple[bytes, ...] = ()  # H.264 sprop-parameter-sets (SPS, PPS), may be empty


def video_track(sdp: bytes, base_url: str) -> VideoTrack:
    """The first ``m=video`` section of a DESCRIBE answer; ``base_url``: its Content-Base (or the
    request's URL), against which a relative ``a=control`` is resolved."""
    text = sdp.decode("utf-8", "replace")
    session_control: str | None = None
    media: list[list[str]] = []
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("m="):
            media.append([line])
        elif media:
            media[-1].append(line)
        elif line.startswith("a=control:"):
            session_control = line[len("a=control:") :].strip()
    if session_control not in (None, "*"):
        base_url = _resolve(base_url, session_control)
    for section in media:
        kind, *rest = section[0][2:].split() or [""]  # a bare "m=" line
        if kind != "video" or len(rest) < 3:
            continue
        try:
            pt = int(rest[2])
        except ValueError:
            continue
        control, codec, clock, sprops = base_url, "", 90000, ()
        for line in section[1:]:
            if line.startswith("a=control:"):
                control = _resolve(base_url, line[len("a=control:") :].strip())
            elif line.startswith(f"a=rtpmap:{pt} "):
                name, _, rate = line.split(" ", 1)[1].partition("/")
                codec = name.strip().upper()
                try:
                    clock = int(rate.partition("/")[0])
                except ValueError:
                    clock = 90000
            elif line.startswith(f"a=fmtp:{pt} "):
                sprops = _sprop_parameter_sets(line.split(" ", 1)[1])
        if not codec and pt == 26:
            codec = "JPEG"  # a static payload type needs no rtpmap
        return VideoTrack(control, pt, codec or f"payload type {pt}", clock, sprops)
    raise RtspError("the camera's stream description has no video")


def _resolve(base: str, control: str) -> str:
    if control in ("", "*"):
        return base
    if urlsplit(control).scheme:
        return control
    return urljoin(base if base.endswith("/") else base + "/", control)


def _sprop_parameter_sets(fmtp: str) -> tuple[bytes, ...]:
    for param in fmtp.split(";"):
        name, _, value = param.strip().partition("=")
        if name.strip().lower() == "sprop-parameter-sets":
            out = []
            for part in value.split(","):
                try:
                    out.append(base64.b64decode(part.strip() + "=" * (-len(part.strip()) % 4), validate=True))
                except ValueError:
                    return ()  # a broken hint: the stream repeats its parameter sets in-band
            return tuple(p for p in out if p)
    return ()


def session_id(header: str) -> tuple[str, float]:
    """``Session: id;timeout=N`` -> (id, timeout in seconds; 60 when not given, RFC 2326 12.37)."""
    ident, *params = [p.strip() for p in header.split(";")]
    timeout = 60.0
    for p in params:
        name, _, value = p.partition("=")
        if name.strip().lower() == "timeout":
            try:
                given = float(value)
            except ValueError:
                continue
            if math.isfinite(given):
                timeout = min(max(given, 5.0), 3600.0)  # keep-alives go out at half of it
    if not ident:
        raise RtspError("the camera's SETUP answer has no session")
    return ident, timeout


def interleaved_channel(transport: str) -> int:
    """The RTP channel the camera chose in its SETUP answer's Transport header."""
    m = re.search(r"interleaved=(\d+)", transport)
    if m is None:
        raise RtspError(
            f"the camera did not agree to send over this connection (Transport: {transport[:80]})"
        )
    return int(m[1])
