"""What the daemon reads from and says to an RTSP camera: the interleaved byte stream split into
video packets and answers however TCP cuts it, the logins a camera asks for (checked against
RFC 2617's own example), and the video track found in the camera's stream description."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import random
import re
import struct

import pytest

from bambu_edge.camera import rtsp_messages
from bambu_edge.camera.rtsp_messages import (
    MAX_HEAD_BYTES,
    Demuxer,
    Login,
    RtspError,
    RtspMessage,
    VideoTrack,
    interleaved_channel,
    request,
    session_id,
    video_track,
)

# --- the interleaved stream --------------------------------------------------------------------

SDP = (
    b"v=0\r\n"
    b"o=- 1188340656180883 1 IN IP4 192.168.1.20\r\n"
    b"s=Session streamed by GStreamer\r\n"
    b"t=0 0\r\n"
    b"a=control:*\r\n"
    b"m=video 0 RTP/AVP 96\r\n"
    b"c=IN IP4 0.0.0.0\r\n"
    b"a=rtpmap:96 H264/90000\r\n"
    b"a=fmtp:96 packetization-mode=1;profile-level-id=64001f;"
    b"sprop-parameter-sets=Z2QAH6zZQFAFuwEQAAADABAAAAMDyPGDGWA=,aOvjyyLA\r\n"
    b"a=control:stream=0\r\n"
)


def interleaved(channel: int, payload: bytes) -> bytes:
    return b"$" + struct.pack(">BH", channel, len(payload)) + payload


def answer(cseq: int, extra: str = "", body: bytes = b"") -> bytes:
    head = f"RTSP/1.0 200 OK\r\nCSeq: {cseq}\r\n{extra}"
    if body:
        head += f"Content-Length: {len(body)}\r\n"
    return (head + "\r\n").encode() + body


def rtp_like(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


# What a camera sends around PLAY: video and RTCP between the answers, a request of its own, an
# empty packet, and payloads that look like the text around them.
PARTS: list[tuple[bytes, tuple[int, bytes] | tuple[int | None, str, dict[str, str], bytes]]] = [
    (
        answer(2, "Content-Type: application/sdp\r\nContent-Base: rtsp://cam/live/\r\n", SDP),
        (200, "OK", {}, SDP),
    ),
    (interleaved(0, rtp_like(1400, 1)), (0, rtp_like(1400, 1))),
    (interleaved(1, rtp_like(28, 2)), (1, rtp_like(28, 2))),
    (answer(3, "Session: 12345678;timeout=60\r\n"), (200, "OK", {}, b"")),
    (interleaved(0, b"RTSP/1.0 200 OK\r\n\r\n$\x00\x00\x10"), (0, b"RTSP/1.0 200 OK\r\n\r\n$\x00\x00\x10")),
    (interleaved(0, b""), (0, b"")),
    (
        b"GET_PARAMETER rtsp://bambu-edge/ RTSP/1.0\r\nCSeq: 9\r\nContent-Length: 5\r\n\r\nping\n",
        (None, "GET_PARAMETER rtsp://bambu-edge/ RTSP/1.0", {}, b"ping\n"),
    ),
    (interleaved(0, rtp_like(65535, 3)), (0, rtp_like(65535, 3))),
    (answer(4, "RTP-Info: url=rtsp://cam/live/stream=0;seq=1;rtptime=0\r\n"), (200, "OK", {}, b"")),
    (interleaved(2, rtp_like(300, 4)), (2, rtp_like(300, 4))),
]
STREAM = b"".join(wire for wire, _ in PARTS)


def summary(items: list) -> list:
    """Packets as they are, messages as (status, reason, body): what the session looks at."""
    return [i if isinstance(i, tuple) else (i.status, i.reason, i.body) for i in items]


EXPECTED = [e if len(e) == 2 else (e[0], e[1], e[3]) for _, e in PARTS]


def test_packets_and_answers_whole() -> None:
    items = Demuxer().feed(STREAM)
    assert summary(items) == EXPECTED
    described = items[0]
    assert isinstance(described, RtspMessage)
    assert described.cseq == 2
    assert described.headers["content-base"] == "rtsp://cam/live/"  # names in lower case
    assert (
        video_track(described.body, described.headers["content-base"]).control == "rtsp://cam/live/stream=0"
    )
    assert isinstance(items[3], RtspMessage) and items[3].headers["session"] == "12345678;timeout=60"
    assert isinstance(items[6], RtspMessage) and items[6].cseq == 9


def test_packets_and_answers_one_byte_at_a_time() -> None:
    demux = Demuxer()
    items = []
    for i in range(len(STREAM)):
        items += demux.feed(STREAM[i : i + 1])
    assert summary(items) == EXPECTED


def test_packets_and_answers_split_anywhere() -> None:
    head = STREAM[:3000]  # every kind of item, and every boundary between them, is in here
    assert len(Demuxer().feed(head)) == 7
    expected = summary(Demuxer().feed(head))
    for cut in range(len(head) + 1):
        demux = Demuxer()
        items = demux.feed(head[:cut])
        items += demux.feed(memoryview(head)[cut:])
        assert summary(items) == expected, cut


def test_an_incomplete_item_waits_for_the_rest() -> None:
    demux = Demuxer()
    assert summary(demux.feed(STREAM[:-1])) == EXPECTED[:-1]
    assert demux.feed(STREAM[-1:]) == [(2, rtp_like(300, 4))]
    assert demux.feed(b"") == []


def test_an_answer_without_cseq() -> None:
    (msg,) = Demuxer().feed(b"RTSP/1.0 454 Session Not Found\r\n\r\n")
    assert isinstance(msg, RtspMessage)
    assert (msg.status, msg.reason, msg.cseq, msg.body) == (454, "Session Not Found", None, b"")


def test_a_request_reads_back_as_the_camera_sees_it() -> None:
    data = request("DESCRIBE", "rtsp://cam/live", 2, {"Accept": "application/sdp"})
    assert data.endswith(b"\r\n\r\n")
    (msg,) = Demuxer().feed(data)
    assert isinstance(msg, RtspMessage)
    assert msg.status is None and msg.reason == "DESCRIBE rtsp://cam/live RTSP/1.0"
    assert msg.cseq == 2
    assert msg.headers == {"cseq": "2", "user-agent": "bambu-edge", "accept": "application/sdp"}


def test_an_endless_header_is_refused() -> None:
    demux = Demuxer()
    assert demux.feed(b"RTSP/1.0 200 OK\r\nX-Pad: ") == []
    with pytest.raises(RtspError, match="16 KiB"):
        for _ in range(20):
            demux.feed(b"a" * 1024)  # no CRLFCRLF ever comes
    with pytest.raises(RtspError):
        Demuxer().feed(b"RTSP/1.0 200 OK\r\n" + b"X: y\r\n" * (MAX_HEAD_BYTES // 6) + b"\r\n")


@pytest.mark.parametrize(
    "data",
    [
        b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",  # a web server on the RTSP port
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",  # TLS where plain RTSP was expected
        b"RTSP/1.0 OK\r\n\r\n",  # no status code
        b"hello\r\n\r\n",
    ],
)
def test_what_is_not_rtsp_is_refused(data: bytes) -> None:
    with pytest.raises(RtspError):
        Demuxer().feed(data)


def test_binary_garbage_is_refused_within_the_header_limit() -> None:
    junk = bytes(b if b != 0x24 else 0 for b in random.Random(7).randbytes(MAX_HEAD_BYTES + 100)).replace(
        b"\r\n\r\n", b"...."
    )
    with pytest.raises(RtspError):
        Demuxer().feed(junk)


@pytest.mark.parametrize("length", ["abc", "-1", "1e3", str(10**9)])
def test_a_bad_content_length_is_refused(length: str) -> None:
    with pytest.raises(RtspError):
        Demuxer().feed(f"RTSP/1.0 200 OK\r\nCSeq: 2\r\nContent-Length: {length}\r\n\r\nv=0\r\n".encode())


# --- logins ----------------------------------------------------------------------------------------

RFC2617_CHALLENGE = (
    'Digest realm="testrealm@host.com", qop="auth,auth-int", '
    'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41"'
)


def digest_fields(header: str) -> dict[str, str]:
    scheme, _, rest = header.partition(" ")
    assert scheme == "Digest"
    return {
        m[1]: m[2] if m[2] is not None else m[3] for m in re.finditer(r'(\w+)=(?:"([^"]*)"|([^\s,]+))', rest)
    }


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def test_digest_matches_rfc2617s_example(monkeypatch: pytest.MonkeyPatch) -> None:
    """RFC 2617 section 3.5: the same request, the same response."""
    monkeypatch.setattr(rtsp_messages.os, "urandom", lambda n: bytes.fromhex("0a4f113b"))
    login = Login("Mufasa", "Circle Of Life")
    login.challenge(RFC2617_CHALLENGE)
    (name, value), *_ = login.header("GET", "/dir/index.html").items()
    assert name == "Authorization"
    assert digest_fields(value) == {
        "username": "Mufasa",
        "realm": "testrealm@host.com",
        "nonce": "dcd98b7102dd2f0e8b11d0f600bfb0c093",
        "uri": "/dir/index.html",
        "qop": "auth",
        "nc": "00000001",
        "cnonce": "0a4f113b",
        "response": "6629fae49393a05397450978507c4ef1",
        "opaque": "5ccc069c403ebaf9f0171e9517f40e41",
    }


def test_digest_counts_its_requests_with_fresh_cnonces() -> None:
    login = Login("Mufasa", "Circle Of Life")
    login.challenge(RFC2617_CHALLENGE)
    ha1 = md5("Mufasa:testrealm@host.com:Circle Of Life")
    seen = []
    for n, method in enumerate(["DESCRIBE", "SETUP", "PLAY"], 1):
        uri = f"rtsp://cam/live/{n}"
        f = digest_fields(login.header(method, uri)["Authorization"])
        assert f["nc"] == f"{n:08x}" and f["uri"] == uri
        nonce = "dcd98b7102dd2f0e8b11d0f600bfb0c093"
        assert f["response"] == md5(f"{ha1}:{nonce}:{f['nc']}:{f['cnonce']}:auth:{md5(f'{method}:{uri}')}")
        seen.append(f["cnonce"])
    assert len(set(seen)) == 3
    login.challenge(RFC2617_CHALLENGE.replace("dcd98b", "aaaaaa"))  # a new nonce: counting restarts
    f = digest_fields(login.header("PLAY", "rtsp://cam/live")["Authorization"])
    assert f["nc"] == "00000001" and f["nonce"] == "aaaaaa7102dd2f0e8b11d0f600bfb0c093"


def test_digest_without_qop() -> None:
    """RFC 2069 style, as live555 servers ask: response = MD5(HA1:nonce:HA2), no nc, no cnonce."""
    login = Login("bblp", "12345678")
    login.challenge('Digest realm="LIVE555 Streaming Media", nonce=4f1d0a3b2c')
    f = digest_fields(login.header("DESCRIBE", "rtsps://10.0.0.5:322/streaming/live/1")["Authorization"])
    ha1 = md5("bblp:LIVE555 Streaming Media:12345678")
    ha2 = md5("DESCRIBE:rtsps://10.0.0.5:322/streaming/live/1")
    assert f == {
        "username": "bblp",
        "realm": "LIVE555 Streaming Media",
        "nonce": "4f1d0a3b2c",
        "uri": "rtsps://10.0.0.5:322/streaming/live/1",
        "response": md5(f"{ha1}:4f1d0a3b2c:{ha2}"),
    }


def test_basic() -> None:
    login = Login("Aladdin", "open sesame")
    assert login.header("OPTIONS", "rtsp://cam/") == {}  # nothing sent before the camera asks
    login.challenge('Basic realm="WallyWorld"')
    assert login.header("OPTIONS", "rtsp://cam/") == {"Authorization": "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="}
    assert base64.b64decode("QWxhZGRpbjpvcGVuIHNlc2FtZQ==") == b"Aladdin:open sesame"


def test_the_password_is_not_in_the_repr() -> None:
    assert "s3cret" not in repr(Login("bblp", "s3cret"))


@pytest.mark.parametrize(
    "challenge",
    [
        'Bearer realm="cam"',
        "NTLM",
        "",
        'Digest realm="cam", nonce="abc", algorithm=SHA-256',
        'Digest realm="cam", nonce="abc", algorithm="MD5-sess"',
        'Digest realm="cam"',  # no nonce
    ],
)
def test_a_login_this_daemon_cannot_give_is_a_401(challenge: str) -> None:
    with pytest.raises(RtspError) as e:
        Login("bblp", "12345678").challenge(challenge)
    assert e.value.status == 401


# --- the stream description ------------------------------------------------------------------------

SPS = base64.b64decode("Z2QAH6zZQFAFuwEQAAADABAAAAMDyPGDGWA=")
PPS = base64.b64decode("aOvjyyLA")


@pytest.mark.parametrize(
    ("base", "control"),
    [
        ("rtsp://cam:8554/live", "rtsp://cam:8554/live/stream=0"),
        ("rtsp://cam:8554/live/", "rtsp://cam:8554/live/stream=0"),
        ("rtsps://10.0.0.5:322/streaming/live/1", "rtsps://10.0.0.5:322/streaming/live/1/stream=0"),
    ],
)
def test_gstreamer_sdp(base: str, control: str) -> None:
    assert video_track(SDP, base) == VideoTrack(control, 96, "H264", 90000, (SPS, PPS))
    assert SPS[0] & 0x1F == 7 and PPS[0] & 0x1F == 8


def test_the_first_video_after_audio_with_an_absolute_control() -> None:
    sdp = (
        b"v=0\ns=cam\nt=0 0\n"
        b"m=audio 0 RTP/AVP 97\na=rtpmap:97 MPEG4-GENERIC/16000/1\na=control:rtsp://cam/audio\n"
        b"m=video 0 RTP/AVP 98\na=rtpmap:98 H264/90000\na=control:rtsp://other:554/media/video1\n"
        b"m=video 0 RTP/AVP 99\na=rtpmap:99 H265/90000\na=control:trackID=2\n"
    )
    assert video_track(sdp, "rtsp://cam/") == VideoTrack("rtsp://other:554/media/video1", 98, "H264", 90000)


def test_a_session_control_url_is_the_base_of_the_tracks() -> None:
    sdp = b"v=0\r\na=control:rtsp://cam/live/\r\nm=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\na=control:trackID=1\r\n"
    assert video_track(sdp, "rtsp://elsewhere/").control == "rtsp://cam/live/trackID=1"


def test_no_track_control_means_the_base() -> None:
    sdp = b"v=0\r\nm=video 0 RTP/AVP 96\r\na=rtpmap:96 h264/90000\r\n"
    assert video_track(sdp, "rtsp://cam/live") == VideoTrack("rtsp://cam/live", 96, "H264", 90000)


def test_h265_is_named() -> None:
    sdp = SDP.replace(b"H264/90000", b"H265/90000")
    assert video_track(sdp, "rtsp://cam/live").codec == "H265"


def test_jpeg_static_payload_type() -> None:
    sdp = b"v=0\r\nm=video 0 RTP/AVP 26\r\na=control:track1\r\n"
    assert video_track(sdp, "rtsp://cam/") == VideoTrack("rtsp://cam/track1", 26, "JPEG", 90000)


def test_no_video_is_an_error() -> None:
    sdp = b"v=0\r\nm=audio 0 RTP/AVP 0\r\na=control:track1\r\n"
    with pytest.raises(RtspError, match="no video"):
        video_track(sdp, "rtsp://cam/")
    with pytest.raises(RtspError):
        video_track(b"", "rtsp://cam/")


@pytest.mark.parametrize(
    "sprop", ["Z2QAH6zZ!!!,aOvjyyLA", "Z,aOvjyyLA", "Z2QAH6zZQFAFuwEQ AAADABAA,aOvjyyLA"]
)
def test_broken_parameter_sets_are_no_parameter_sets(sprop: str) -> None:
    sdp = re.sub(rb"sprop-parameter-sets=[^\r]*", f"sprop-parameter-sets={sprop}".encode(), SDP)
    track = video_track(sdp, "rtsp://cam/live")
    assert (track.codec, track.parameter_sets) == ("H264", ())


def test_a_torn_description_is_an_rtsp_error_or_a_track() -> None:
    """Whatever a camera sends as its SDP, the session gets a track or a clear RtspError."""
    rng = random.Random(5)
    samples = [SDP[:cut] for cut in range(len(SDP) + 1)]
    for _ in range(2000):
        data = bytearray(SDP)
        for _ in range(rng.randint(1, 8)):
            data[rng.randrange(len(data))] = rng.choice(b" =:/\r\n;,0123456789amv")
        samples.append(bytes(data))
    for sdp in samples:
        with contextlib.suppress(RtspError):
            video_track(sdp, "rtsp://cam/live")


# --- SETUP's answer --------------------------------------------------------------------------------


def test_session_header() -> None:
    assert session_id("12345678;timeout=60") == ("12345678", 60.0)
    assert session_id(" 6E5B7A2F ; timeout = 30") == ("6E5B7A2F", 30.0)
    assert session_id("abc") == ("abc", 60.0)  # RFC 2326 12.37's default
    assert session_id("abc;timeout=1") == ("abc", 5.0)  # keep-alives not every half second
    assert session_id("abc;timeout=soon") == ("abc", 60.0)
    assert session_id("abc;timeout=nan") == ("abc", 60.0)  # keep-alives still go out
    assert session_id("abc;timeout=inf") == ("abc", 60.0)
    assert session_id("abc;timeout=86400") == ("abc", 3600.0)
    with pytest.raises(RtspError):
        session_id("")


def test_interleaved_channel() -> None:
    assert interleaved_channel("RTP/AVP/TCP;unicast;interleaved=0-1") == 0
    assert interleaved_channel("RTP/AVP/TCP;unicast;interleaved=4-5;ssrc=1A2B3C4D;mode=play") == 4
    with pytest.raises(RtspError, match="did not agree"):
        interleaved_channel("RTP/AVP;unicast;client_port=5000-5001;server_port=6970-6971")


def test_a_camera_offering_basic_and_digest_gets_digest() -> None:
    for order in (("Basic", "Digest"), ("Digest", "Basic")):
        offers = {"Basic": 'Basic realm="cam"', "Digest": 'Digest realm="cam", nonce="abc"'}
        head = "RTSP/1.0 401 Unauthorized\r\nCSeq: 1\r\n" + "".join(
            f"WWW-Authenticate: {offers[o]}\r\n" for o in order
        )
        (answer,) = Demuxer().feed((head + "\r\n").encode())
        assert isinstance(answer, RtspMessage)
        login = Login("bblp", "12345678")
        login.challenge(answer.headers["www-authenticate"])
        assert login.header("DESCRIBE", "rtsp://cam/")["Authorization"].startswith("Digest ")
