"""The bounded pipes between the event loop and an FTPS worker thread: data flows in order, the
faster side waits, and either side ending (or going quiet) wakes the other."""

from __future__ import annotations

import asyncio
import threading

import pytest

from bambu_edge.printers.bambu.streams import Drain, FeedReader, PipeClosed, StallError


async def test_feed_reader_delivers_in_order_and_applies_back_pressure() -> None:
    loop = asyncio.get_running_loop()
    feed = FeedReader(loop, max_chunks=2, timeout=5)
    got: list[bytes] = []

    def reader() -> None:
        while chunk := feed.read(3):
            got.append(chunk)

    await feed.put(b"abcdef")
    await feed.put(b"gh")
    blocked = asyncio.ensure_future(feed.put(b"ij"))  # the buffer is full: this one waits
    await asyncio.sleep(0.05)
    assert not blocked.done()
    thread = threading.Thread(target=reader)
    thread.start()
    await blocked
    feed.finish()
    await asyncio.to_thread(thread.join, 5)
    assert b"".join(got) == b"abcdefghij" and all(len(c) <= 3 for c in got)
    assert feed.consumed == 10


async def test_a_failed_source_reaches_the_reader() -> None:
    feed = FeedReader(asyncio.get_running_loop(), timeout=5)
    await feed.put(b"x")
    feed.fail(ValueError("browser went away"))
    assert feed.read() == b"x"  # what arrived is still delivered
    with pytest.raises(ValueError, match="browser went away"):
        feed.read()


async def test_a_stalled_source_times_out_and_a_closed_reader_stops_the_writer() -> None:
    feed = FeedReader(asyncio.get_running_loop(), max_chunks=1, timeout=0.1)
    with pytest.raises(StallError):
        await asyncio.to_thread(feed.read)
    await feed.put(b"a")
    writer = asyncio.ensure_future(feed.put(b"b"))
    await asyncio.sleep(0.02)
    feed.close()
    with pytest.raises(PipeClosed):
        await writer


async def test_drain_passes_data_and_stops_a_writer_when_closed() -> None:
    loop = asyncio.get_running_loop()
    drain = Drain(loop, max_chunks=1, timeout=5)

    def producer() -> None:
        drain.start(6)
        drain.write(b"abc")
        drain.write(b"def")

    thread = threading.Thread(target=producer)
    thread.start()
    assert await drain.get() == ("start", 6)
    assert await drain.get() == ("data", b"abc")
    assert await drain.get() == ("data", b"def")
    await asyncio.to_thread(thread.join, 5)

    errors: list[BaseException] = []

    def stuck_producer() -> None:
        try:
            for _ in range(10):
                drain.write(b"x")
        except PipeClosed as exc:
            errors.append(exc)

    thread = threading.Thread(target=stuck_producer)
    thread.start()
    await asyncio.sleep(0.05)  # it fills the one slot and waits for the consumer
    drain.close()  # the browser went away
    await asyncio.to_thread(thread.join, 5)
    assert not thread.is_alive() and errors


async def test_drain_times_out_when_nobody_reads() -> None:
    drain = Drain(asyncio.get_running_loop(), max_chunks=1, timeout=0.1)

    def producer() -> None:
        drain.write(b"1")
        drain.write(b"2")  # nobody took the first: times out

    with pytest.raises(StallError):
        await asyncio.to_thread(producer)
