"""Each TLS connection the daemon accepts reads into a 64 KiB buffer, not asyncio's 256 KiB: a
browser keeps several connections open, and each buffer is allocated and zeroed up front. A large
request body still arrives whole through the smaller reads."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

from bambu_edge import certs
from bambu_edge.web.tls import TLS_READ_BUFFER, trim_tls_read_buffers
from tests.integration.waiting import dashboard_tls


async def test_accepted_tls_connections_read_into_64_kib_and_lose_nothing(tmp_path: Path) -> None:
    trim_tls_read_buffers()
    certs.ensure_dashboard_cert(tmp_path, ["localhost", "127.0.0.1"])
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(tmp_path / certs.DASHBOARD_CERT, tmp_path / certs.DASHBOARD_KEY)
    got = bytearray()
    done = asyncio.Event()
    buffers: list[int] = []
    payload = bytes(range(256)) * 4096  # 1 MiB

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        proto = writer.transport.get_protocol()  # the SSL layer under the stream
        buffers.append(len(getattr(writer.transport, "_ssl_protocol", proto)._ssl_buffer))
        while len(got) < len(payload):
            chunk = await reader.read(1 << 20)
            if not chunk:
                break
            got.extend(chunk)
        done.set()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=server_ctx)
    port = server.sockets[0].getsockname()[1]
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port, ssl=dashboard_tls())
        writer.write(payload)
        await writer.drain()
        await asyncio.wait_for(done.wait(), 10)
        writer.close()
    finally:
        server.close()
        await server.wait_closed()
    assert buffers == [TLS_READ_BUFFER]
    assert bytes(got) == payload
