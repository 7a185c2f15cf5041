"""decrypt_available: every complete record a camera sent comes out in one call, also the one whose
start the TLS engine took in with the previous batch (else it waited for the next batch, or, at the
end of a stream, forever)."""

from __future__ import annotations

import ssl
from pathlib import Path

from bambu_edge.camera.tls_memory import decrypt_available
from bambu_edge.certs import make_server_cert

RECORD = 1400


def connected_pair(tmp_path: Path) -> tuple[ssl.SSLObject, ssl.MemoryBIO, ssl.SSLObject, ssl.MemoryBIO]:
    """(client, its incoming buffer, server, its outgoing buffer), handshake done in memory."""
    pair = make_server_cert("camera", ["127.0.0.1"])
    pair.write(tmp_path / "cert.pem", tmp_path / "key.pem")
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    client_ctx = ssl.create_default_context(cadata=pair.cert_pem.decode())
    c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
    client = client_ctx.wrap_bio(c_in, c_out, server_hostname="127.0.0.1")
    server = server_ctx.wrap_bio(s_in, s_out, server_side=True)
    for _ in range(10):
        for side in (client, server):
            try:
                side.do_handshake()
            except ssl.SSLWantReadError:
                pass
        s_in.write(c_out.read())
        c_in.write(s_out.read())
    client.do_handshake()
    return client, c_in, server, s_out


def test_a_record_split_across_batches_comes_out_whole_and_the_end_is_seen(tmp_path: Path) -> None:
    client, incoming, server, wire = connected_pair(tmp_path)
    assert decrypt_available(client, incoming) == (b"", False)  # the session ticket: no video
    payload = bytes(range(256)) * 60
    for i in range(0, len(payload), RECORD):
        server.write(payload[i : i + RECORD])  # a record each
    sent = wire.read()
    incoming.write(sent[:-100])  # the last record's start arrives with this batch
    first, ended = decrypt_available(client, incoming)
    assert not ended and payload.startswith(bytes(first))
    incoming.write(sent[-100:])  # ... its last 100 bytes with the next
    rest, ended = decrypt_available(client, incoming)
    assert bytes(first) + bytes(rest) == payload and not ended
    try:
        server.unwrap()  # the camera ends the stream: close_notify
    except ssl.SSLWantReadError:
        pass
    incoming.write(wire.read())
    end, ended = decrypt_available(client, incoming)
    assert bytes(end) == b"" and ended
