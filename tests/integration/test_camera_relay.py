"""The camera's TLS relay keeps up with a camera that sends faster than one read a batch allows:
it takes everything that has arrived each batch, not one 64 KiB block (a 2.6 Mbit/s ceiling)."""

from __future__ import annotations

import asyncio
import ssl
import time
from pathlib import Path

from bambu_edge.camera.relay import TlsRelay
from bambu_edge.certs import make_server_cert

PAYLOAD = bytes(range(256)) * (12 * 1024)  # 3 MiB: 8 s of a 3 Mbit/s camera
RECORD = 1400  # a camera writes an RTP packet at a time: many small TLS records


async def test_a_fast_camera_is_carried_whole_and_without_falling_behind(tmp_path: Path) -> None:
    pair = make_server_cert("camera", ["127.0.0.1"])
    pair.write(tmp_path / "cert.pem", tmp_path / "key.pem")
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")

    async def camera(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for i in range(0, len(PAYLOAD), RECORD):
            writer.write(PAYLOAD[i : i + RECORD])  # a TLS record each
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(camera, "127.0.0.1", 0, ssl=server_ctx)
    trust = ssl.create_default_context(cadata=pair.cert_pem.decode())

    async def context() -> ssl.SSLContext:
        return trust

    relay = TlsRelay("127.0.0.1", server.sockets[0].getsockname()[1], context)
    try:
        port = await relay.start()
        t0 = time.monotonic()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)  # ffmpeg's side
        got = await asyncio.wait_for(reader.read(-1), 30)
        took = time.monotonic() - t0
        writer.close()
    finally:
        await relay.close()
        server.close()
        await server.wait_closed()
    assert got == PAYLOAD
    # One 64 KiB block per 0.2 s batch cannot take less than 9.6 s; everything each batch takes
    # about a second here (more on a loaded machine, never near that floor).
    assert took < 8.0, f"3 MiB took {took:.1f} s through the relay"
