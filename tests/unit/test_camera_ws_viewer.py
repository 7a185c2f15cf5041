"""The WebSocket viewer fed straight from the upstream: RFC 6455 frames, and a slow viewer bounded by
its transport's buffer, resuming at a keyframe (over a real socket pair, the far end not reading)."""

from __future__ import annotations

import asyncio
import socket
import struct

import pytest

from bambu_edge.camera.ws_viewer import WsViewer
from bambu_edge.web.ws_frames import OP_BINARY, OP_TEXT, frame_header


@pytest.mark.parametrize(
    ("size", "header"),
    [
        (0, b"\x82\x00"),
        (125, b"\x82\x7d"),
        (126, b"\x82\x7e\x00\x7e"),
        (65535, b"\x82\x7e\xff\xff"),
        (65536, b"\x82\x7f" + struct.pack(">Q", 65536)),
    ],
)
def test_frames_are_final_unmasked_binary_with_the_shortest_length(size: int, header: bytes) -> None:
    assert frame_header(size, OP_BINARY) == header
    assert frame_header(size, OP_TEXT) == bytes((0x81,)) + header[1:]  # the dashboard's JSON frames


def parse_frames(data: bytes) -> list[bytes]:
    out, pos = [], 0
    while pos < len(data):
        assert data[pos] == 0x82
        n, pos = data[pos + 1], pos + 2
        if n == 126:
            n, pos = struct.unpack_from(">H", data, pos)[0], pos + 2
        elif n == 127:
            n, pos = struct.unpack_from(">Q", data, pos)[0], pos + 8
        out.append(data[pos : pos + n])
        pos += n
    return out


async def _pair() -> tuple[asyncio.WriteTransport, socket.socket]:
    ours, theirs = socket.socketpair()
    for s in (ours, theirs):
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    transport, _ = await asyncio.get_running_loop().create_connection(asyncio.Protocol, sock=ours)
    assert isinstance(transport, asyncio.WriteTransport)
    return transport, theirs


async def test_a_joiner_gets_the_head_then_starts_at_a_keyframe() -> None:
    transport, theirs = await _pair()
    try:
        v = WsViewer(transport, head=[b"init"])
        v.put(b"delta", keyframe=False)
        v.put(b"key", keyframe=True)
        v.put(b"delta2", keyframe=False)
        theirs.setblocking(False)
        got = b""
        while len(got) < 2 + 4 + 2 + 3 + 2 + 6:
            await asyncio.sleep(0)
            try:
                got += theirs.recv(65536)
            except BlockingIOError:
                continue
        assert parse_frames(got) == [b"init", b"key", b"delta2"]
        assert v.skipped == 1
    finally:
        transport.close()
        theirs.close()


async def test_a_viewer_that_does_not_read_stays_bounded_and_resumes_at_a_keyframe() -> None:
    transport, theirs = await _pair()
    try:
        v = WsViewer(transport, max_bytes=20_000)
        for i in range(2000):
            v.put(bytes([i % 256]) * 1000, keyframe=i % 30 == 0)
            assert v.buffered <= 20_000 + 20  # a frame header over at most
        assert v.skipped > 1500
        # It reads again: what it gets is whole frames, and after the gap a keyframe's.
        theirs.setblocking(False)
        got = b""
        while v.buffered:
            await asyncio.sleep(0)
            try:
                got += theirs.recv(65536)
            except BlockingIOError:
                continue
        with_gap = parse_frames(got)
        assert all(len(f) == 1000 for f in with_gap)
        v.put(b"d" * 1000, keyframe=False)  # still waiting for a keyframe after skipping
        v.put(b"K" * 1000, keyframe=True)
        await asyncio.sleep(0)
        tail = b""
        while len(tail) < 1004:
            await asyncio.sleep(0)
            try:
                tail += theirs.recv(65536)
            except BlockingIOError:
                continue
        assert parse_frames(tail) == [b"K" * 1000]
    finally:
        transport.close()
        theirs.close()


async def test_closing_says_why_once() -> None:
    transport, theirs = await _pair()
    try:
        v = WsViewer(transport)
        v.close("the camera stream restarted")
        v.close("viewer left")
        assert v.closed.result() == "the camera stream restarted"
        v.put(b"K", keyframe=True)  # nothing is written after the close
        assert v.buffered == 0
    finally:
        transport.close()
        theirs.close()
