"""One RTSP session with a camera, on the event loop: connect (TLS verified with the caller's
context), DESCRIBE / SETUP / PLAY with RTP interleaved on the same TCP connection, then the video
track's RTP packets a batch at a time until the camera stops.

Batches, not a wake-up per packet: a camera sends a few hundred small TLS records a second, and an
event-loop round for each cost a Pi more than the video does. The session looks at its socket on a
``BATCH_S`` beat (shared by every camera, so several cameras wake the daemon together), takes in
everything that has arrived (up to ``RECEIVE_MAX``), and decrypts it in one go through the TLS
engine's memory buffers. When nothing has come for a whole beat it waits for the socket instead,
up to ``SILENCE_S``. ``stream_h264`` turns a session's packets into fragmented MP4.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from collections.abc import Callable
from urllib.parse import urlsplit, urlunsplit

from bambu_edge.camera.fmp4 import Fragment
from bambu_edge.camera.h264 import H264Error
from bambu_edge.camera.h264_remux import FormatChanged, H264Remuxer
from bambu_edge.camera.relay import connect_tcp
from bambu_edge.camera.rtp_h264 import AccessUnit, H264Depacketizer
from bambu_edge.camera.rtsp_messages import (
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
from bambu_edge.camera.tls_memory import BLOCK, RECEIVE_MAX, decrypt_available
from bambu_edge.printers.beat import sleep_to_beat

BATCH_S = 0.3
SILENCE_S = 10.0  # a stream this long without a byte is gone
TIMEOUT_S = 10.0  # connecting, the TLS handshake, and each answer before PLAY


class RtspSession:
    def __init__(
        self,
        url: str,
        *,
        username: str | None = None,
        password: str | None = None,
        context: ssl.SSLContext | None = None,
        check_peer: Callable[[ssl.SSLObject], None] | None = None,
    ):
        """``url``: the stream's ``rtsp://`` or ``rtsps://`` URL without a login (the login is
        sent only when the camera asks for it, and only over the verified connection).
        ``check_peer(ssl_object)``: a further check after the handshake (a printer's serial)."""
        parts = urlsplit(url)
        if parts.scheme not in ("rtsp", "rtsps") or not parts.hostname:
            raise ValueError(f"not an RTSP URL: {url}")
        self.url = urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], parts.path, parts.query, ""))
        self.host = parts.hostname
        self.port = parts.port or (322 if parts.scheme == "rtsps" else 554)
        self.context = context
        self.check_peer = check_peer
        self._login = Login(username, password or "") if username is not None else None
        self._sock: socket.socket | None = None
        self._tls: ssl.SSLObject | None = None
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._buf = bytearray(BLOCK)
        self._view = memoryview(self._buf)
        self._demux = Demuxer()
        self._cseq = 0
        self._session: str | None = None
        self._keepalive_s = 30.0
        self._keepalive_at = 0.0
        self._keepalive_method = "OPTIONS"
        self._channel = 0
        self._early: list[bytes] = []  # video that came with the PLAY answer
        self._eof = False
        self._base = self.url  # the presentation's URL (DESCRIBE's Content-Base)

    # --- the session ---------------------------------------------------------------------------------

    async def open(self) -> VideoTrack:
        """Connect and start the stream; the video track it plays. RtspError when the camera says
        no (``status`` 401: the login), OSError / TimeoutError / ssl.SSLError when it cannot be
        reached or trusted."""
        async with asyncio.timeout(TIMEOUT_S):
            self._sock = await connect_tcp(self.host, self.port)
            if self.context is not None:
                await self._handshake()
            try:
                options = await self._ask("OPTIONS", self.url)
            except RtspError as e:
                if e.status in (None, 401):
                    raise
                # A camera without OPTIONS (some answer 405 or 501): the rest may still work.
            else:
                if "GET_PARAMETER" in options.headers.get("public", "").upper():
                    self._keepalive_method = "GET_PARAMETER"
            described = await self._ask("DESCRIBE", self.url, {"Accept": "application/sdp"})
            headers = described.headers
            self._base = headers.get("content-base") or headers.get("content-location") or self.url
            track = video_track(described.body, self._base)
            setup = await self._ask(
                "SETUP", track.control, {"Transport": "RTP/AVP/TCP;unicast;interleaved=0-1"}
            )
            self._session, timeout = session_id(setup.headers.get("session", ""))
            self._channel = interleaved_channel(setup.headers.get("transport", ""))
            await self._ask("PLAY", self._base, {"Range": "npt=0.000-"})
        loop = asyncio.get_running_loop()
        self._keepalive_s = timeout / 2
        self._keepalive_at = loop.time() + self._keepalive_s
        return track

    async def batch(self) -> list[bytes]:
        """The video's RTP packets that arrived since the last batch (waiting for the next beat
        first). EOFError when the camera closes, TimeoutError after ``SILENCE_S`` without a byte."""
        if self._early:
            packets, self._early = self._early, []
            return packets
        await sleep_to_beat(BATCH_S)
        loop = asyncio.get_running_loop()
        if loop.time() >= self._keepalive_at:
            self._keepalive_at = loop.time() + self._keepalive_s
            await self._send_request(self._keepalive_method, self._base)
        while True:
            items = self._demux.feed(self._read())
            if self._eof and not items:
                raise EOFError("the camera closed the connection")
            if self._outgoing.pending:
                await self._flush()  # what the TLS engine owes the camera (a key update's answer)
            packets = self._sort(items)
            if packets or self._eof:
                return packets
            if not items:
                await self._readable(SILENCE_S)

    async def close(self) -> None:
        """Ask the camera to end the session (not waiting for its answer), then close."""
        sock = self._sock
        if sock is None:
            return
        try:
            if self._session is not None and not self._eof:
                with contextlib.suppress(Exception):  # a courtesy: the camera frees the session at once
                    async with asyncio.timeout(1.0):
                        await self._send_request("TEARDOWN", self._base)
        finally:
            self._sock = None
            sock.close()

    # --- requests ------------------------------------------------------------------------------------

    async def _ask(self, method: str, url: str, headers: dict[str, str] | None = None) -> RtspMessage:
        """Send a request (again with the login when the camera asks for one) and read its answer."""
        answer = await self._request_answer(method, url, headers)
        challenge = answer.headers.get("www-authenticate", "")
        stale = "stale=true" in challenge.replace(" ", "").lower()  # a Digest nonce that expired
        if answer.status == 401 and self._login is not None and (self._login.scheme is None or stale):
            if challenge:
                self._login.challenge(challenge)
                answer = await self._request_answer(method, url, headers)
        if answer.status == 401:
            raise RtspError(
                "the camera refused the access code (401 Unauthorized)"
                if self._login is not None
                else "the camera asks for a login (401 Unauthorized); put it in the camera's URL",
                401,
            )
        if answer.status != 200:
            raise RtspError(
                f"the camera answered {method} with {answer.status} {answer.reason}".rstrip(), answer.status
            )
        return answer

    async def _request_answer(self, method: str, url: str, headers: dict[str, str] | None) -> RtspMessage:
        cseq = await self._send_request(method, url, headers)
        while True:
            for item in self._demux.feed(await self._read_some()):
                if isinstance(item, RtspMessage):
                    if item.status is not None and item.cseq in (cseq, None):
                        return item
                elif item[0] == self._channel and self._session is not None:
                    self._early.append(item[1])  # the stream began before PLAY's answer was read
            if self._eof:
                raise EOFError(f"the camera closed the connection after {method}")

    async def _send_request(self, method: str, url: str, headers: dict[str, str] | None = None) -> int:
        self._cseq += 1
        extra = dict(headers or {})
        if self._session is not None:
            extra["Session"] = self._session
        if self._login is not None:
            extra.update(self._login.header(method, url))
        await self._send(request(method, url, self._cseq, extra))
        return self._cseq

    def _sort(self, items: list[tuple[int, bytes] | RtspMessage]) -> list[bytes]:
        packets = []
        for item in items:
            if isinstance(item, RtspMessage):
                # A keep-alive's answer; a refusal means the session is gone.
                if item.status is not None and item.status in (401, 454):
                    raise RtspError(
                        f"the camera ended the session ({item.status} {item.reason})", item.status
                    )
            elif item[0] == self._channel:
                packets.append(item[1])
        return packets

    # --- bytes ---------------------------------------------------------------------------------------

    async def _handshake(self) -> None:
        assert self.context is not None and self._sock is not None
        self._tls = self.context.wrap_bio(self._incoming, self._outgoing, server_hostname=self.host)
        loop = asyncio.get_running_loop()
        while True:
            try:
                self._tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                await self._flush()
                n = await loop.sock_recv_into(self._sock, self._view)
                if not n:
                    raise ConnectionResetError(
                        "the camera closed the connection during the TLS handshake"
                    ) from None
                self._incoming.write(self._view[:n])
            except ssl.SSLError:
                with contextlib.suppress(OSError):
                    await self._flush()  # the alert: the camera learns why
                raise
        await self._flush()
        if self.check_peer is not None:
            self.check_peer(self._tls)

    async def _send(self, data: bytes) -> None:
        assert self._sock is not None
        if self._tls is None:
            await asyncio.get_running_loop().sock_sendall(self._sock, data)
            return
        self._tls.write(data)
        await self._flush()

    async def _flush(self) -> None:
        if self._outgoing.pending and self._sock is not None:
            await asyncio.get_running_loop().sock_sendall(self._sock, self._outgoing.read())

    async def _read_some(self) -> bytes | memoryview:
        """At least a byte of plaintext (or the end) during the requests."""
        while True:
            data = self._read()
            if data or self._eof:
                return data
            await self._readable(TIMEOUT_S)

    async def _readable(self, timeout: float) -> None:
        assert self._sock is not None
        loop = asyncio.get_running_loop()
        ready = loop.create_future()
        fd = self._sock.fileno()
        loop.add_reader(fd, lambda: ready.done() or ready.set_result(None))
        try:
            async with asyncio.timeout(timeout):
                await ready
        except TimeoutError:
            raise TimeoutError(f"the camera sent nothing for {timeout:.0f} s") from None
        finally:
            loop.remove_reader(fd)

    def _read(self) -> bytes | memoryview:
        """Everything that has arrived, decrypted; b"" when nothing has (``_eof`` set at the end)."""
        sock = self._sock
        assert sock is not None
        raw: list[bytes] = []
        total = 0
        while total < RECEIVE_MAX:
            try:
                n = sock.recv_into(self._view)
            except (BlockingIOError, InterruptedError):
                break
            if not n:
                self._eof = True
                break
            if self._tls is None:
                raw.append(bytes(self._view[:n]))
            else:
                self._incoming.write(self._view[:n])
            total += n
            if n < BLOCK:
                break
        if self._tls is None:
            return b"".join(raw)
        plain, ended = decrypt_available(self._tls, self._incoming)
        self._eof = self._eof or ended
        return plain


async def stream_h264(session: RtspSession, on_fragment: Callable[[bytes | None, Fragment], None]) -> str:
    """Open ``session`` and pass its H.264 on as fragmented MP4 (``on_fragment(init, fragment)``)
    until the camera stops (the session's errors; RtspError for a stream that cannot be remuxed).
    Returns at once with the codec's name when the stream is not H.264, for ffmpeg to take."""
    track = await session.open()
    if track.codec != "H264":
        return track.codec
    depacketizer = H264Depacketizer(track.payload_type)
    remuxer = H264Remuxer(track.parameter_sets)
    try:
        while True:
            units: list[AccessUnit] = []
            for packet in await session.batch():
                units += depacketizer.feed(packet)
            if units:
                for frag in remuxer.push(units):
                    on_fragment(remuxer.init, frag)
    except (FormatChanged, H264Error) as e:
        raise RtspError(str(e)) from None
