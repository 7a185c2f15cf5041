"""Per-viewer buffers: bounded, a slow viewer skips to the next keyframe, the init segment first."""

from __future__ import annotations

import asyncio

import pytest

from bambu_edge.camera.viewers import ViewerClosed, ViewerQueue


def drain(q: ViewerQueue) -> list[bytes]:
    async def run() -> list[bytes]:
        out = []
        q.close()
        try:
            while True:
                out.append(await q.get())
        except ViewerClosed:
            return out

    return asyncio.run(run())


def test_a_joiner_gets_the_init_segment_then_starts_at_a_keyframe() -> None:
    q = ViewerQueue(head=[b"init"])
    q.put(b"delta1", keyframe=False)
    q.put(b"key", keyframe=True)
    q.put(b"delta2", keyframe=False)
    assert drain(q) == [b"init", b"key", b"delta2"]


def test_a_slow_viewer_never_holds_more_than_its_bound() -> None:
    q = ViewerQueue(head=[b"I" * 10], max_bytes=1000)
    for i in range(1000):
        q.put(b"x" * 100, keyframe=i % 25 == 0)
        assert q.buffered <= 1000
    assert q.skipped > 900


def test_a_slow_viewer_resumes_at_the_next_keyframe_with_the_init_kept() -> None:
    q = ViewerQueue(head=[b"init"], max_bytes=300)
    q.put(b"K1" * 50, keyframe=True)  # 100 bytes
    q.put(b"d1" * 50, keyframe=False)
    q.put(b"d2" * 50, keyframe=False)  # over the bound: backlog dropped, wait for a keyframe
    q.put(b"d3" * 50, keyframe=False)
    q.put(b"K2" * 50, keyframe=True)
    q.put(b"d4" * 50, keyframe=False)
    out = drain(q)
    assert out[0] == b"init"
    assert out[1:] == [b"K2" * 50, b"d4" * 50]


def test_jpeg_frames_are_all_keyframes_so_a_slow_viewer_gets_the_newest() -> None:
    q = ViewerQueue(max_bytes=250)
    for i in range(10):
        q.put(bytes([i]) * 100, keyframe=True)
    out = drain(q)
    assert out[-1] == bytes([9]) * 100
    assert len(out) <= 2


def test_get_waits_for_the_producer_and_close_ends_it() -> None:
    async def run() -> None:
        q = ViewerQueue()
        waiter = asyncio.ensure_future(q.get())
        await asyncio.sleep(0)
        assert not waiter.done()
        q.put(b"k", keyframe=True)
        assert await asyncio.wait_for(waiter, 1) == b"k"
        q.close("camera unreachable")
        with pytest.raises(ViewerClosed, match="unreachable"):
            await q.get()

    asyncio.run(run())
