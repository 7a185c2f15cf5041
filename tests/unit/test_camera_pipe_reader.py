"""ffmpeg's stdout read in the loop's callback: every byte in order up to the end, a bad stream
ends the reading with its error, and cancelling leaves nothing watching the pipe."""

from __future__ import annotations

import asyncio
import os

import pytest

from bambu_edge.camera.pipe_reader import pipe_for_child, read_pipe


async def test_every_byte_arrives_in_order_until_the_end() -> None:
    r, w = pipe_for_child()
    os.set_blocking(w, False)  # the writer runs on the same loop: it must not block it
    got = bytearray()
    data = os.urandom(700_000)  # more than the buffer and the pipe hold: several reads

    async def writer() -> None:
        view = memoryview(data)
        while view:
            try:
                n = os.write(w, view[:65536])
            except BlockingIOError:
                n = 0
            view = view[n:]
            await asyncio.sleep(0)
        os.close(w)

    try:
        await asyncio.gather(writer(), read_pipe(r, got.extend))
    finally:
        os.close(r)
    assert bytes(got) == data


async def test_an_error_from_the_consumer_ends_the_reading() -> None:
    r, w = pipe_for_child()

    def refuse(_data: memoryview) -> None:
        raise ValueError("not video")

    os.write(w, b"garbage")
    try:
        with pytest.raises(ValueError, match="not video"):
            await asyncio.wait_for(read_pipe(r, refuse), 5)
    finally:
        os.close(w)
        os.close(r)


async def test_cancelling_stops_watching_the_pipe() -> None:
    r, w = pipe_for_child()
    loop = asyncio.get_running_loop()
    task = asyncio.create_task(read_pipe(r, lambda _d: None))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not loop.remove_reader(r)  # nothing was still registered
    os.close(w)
    os.close(r)
