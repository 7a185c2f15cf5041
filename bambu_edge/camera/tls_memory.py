"""TLS through memory buffers, for the camera connections that read a batch at a time (the RTSP
session on the loop, the HTTPS relay's thread): the socket's bytes go into the TLS engine in one go,
and every complete record comes out into one buffer. An SSLSocket would make two syscalls per
record, and a camera sends hundreds of small records a second."""

from __future__ import annotations

import ssl

BLOCK = 64 * 1024  # one recv
RECEIVE_MAX = 1024 * 1024  # the most taken in a batch: a 40 Mbit/s camera at 0.2 s batches
RECORD_MAX = 16384 + 2048  # a TLS record's plaintext and its largest expansion (RFC 5246 6.2.3)


def decrypt_available(obj: ssl.SSLObject, incoming: ssl.MemoryBIO) -> tuple[memoryview | bytes, bool]:
    """(the plaintext of every complete record taken in, whether the peer ended the stream), in one
    buffer: a TLS engine gives a record per read."""
    waiting = incoming.pending + obj.pending()
    if not waiting:
        return b"", False
    # Plaintext is never longer than the records that carry it, but the engine may already hold
    # the start of a record it took from the buffer last time: room for one more record.
    size = waiting + RECORD_MAX
    plain = bytearray(size)
    view = memoryview(plain)
    pos = 0
    while pos < size:
        try:
            n = obj.read(size - pos, view[pos:])
        except ssl.SSLWantReadError:
            break
        except ssl.SSLZeroReturnError:
            return view[:pos], True
        if not n:
            return view[:pos], True
        pos += n
    return view[:pos], False
