"""The dashboard's camera in Chromium, against the real daemon and real cameras (test_camera.py's
``cams``: GStreamer's RTSPS server as an X1C camera, the port-6000 TLS JPEG camera of a P1S)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from tests.integration.browser import chromium, login, new_page, screenshot_on_failure
from tests.integration.running_daemon import PASSWORD
from tests.integration.test_camera import cams  # noqa: F401  (the fixture)

H264 = 'video/mp4; codecs="avc1.42E01E"'


@contextlib.asynccontextmanager
async def _printer_page(
    cameras: dict[str, Any], shot: str, route: str = "/", **page_kw: Any
) -> AsyncIterator[tuple[Any, Any]]:
    """A Chromium page logged in to the cameras' daemon at ``route`` (screenshot ``shot`` if the
    test fails); the page must have logged no console error by the end."""
    farm = cameras["farm"]
    errors: list[str] = []
    async with chromium() as browser:
        pg = await new_page(browser, errors, **page_kw)
        async with screenshot_on_failure(pg, shot):
            await login(pg, farm.https, PASSWORD, route)
            yield pg, farm
    assert errors == []


async def test_the_printer_page_plays_the_h264_camera_through_media_source_extensions(
    cams: dict[str, Any],  # noqa: F811
) -> None:
    async with _printer_page(cams, "camera-mse", "/#/printer/x1c") as (pg, farm):
        # Debian's Chromium decodes H.264 (proprietary codecs built in): the player is tested
        # for real, not only that MSE takes the init segment.
        assert await pg.evaluate(f"MediaSource.isTypeSupported('{H264}')")
        video = pg.locator("[data-testid=camera-panel] video")
        await video.wait_for(state="visible", timeout=20_000)
        # The codec string comes from the init segment's avcC box (the test pattern is x264's).
        await pg.wait_for_function(
            "() => document.querySelector('[data-testid=camera-video]').dataset.codec?.startsWith('video/mp4; codecs=\"avc1.')",
            timeout=20_000,
        )
        await pg.wait_for_function(
            "() => document.querySelector('[data-testid=camera-video]').currentTime > 0.5", timeout=30_000
        )
        t1 = await video.evaluate("v => v.currentTime")
        # The video plays on (a busy machine may stall it for a moment: give it time).
        await pg.wait_for_function(
            "t1 => document.querySelector('[data-testid=camera-video]').currentTime > t1 + 1.0",
            arg=t1,
            timeout=15_000,
        )
        # Kept at the live edge: a player that fell behind jumps forward.
        await pg.wait_for_function(
            "() => { const v = document.querySelector('[data-testid=camera-video]');"
            " return v.buffered.length && v.buffered.end(v.buffered.length - 1) - v.currentTime < 2.0; }",
            timeout=15_000,
        )
        played = await video.evaluate("v => ({w: v.videoWidth, h: v.videoHeight, paused: v.paused})")
        assert not played["paused"]
        assert (played["w"], played["h"]) == (640, 360)  # RtspCamera's picture, decoded
        fullscreen = pg.locator("[data-testid=camera-fullscreen]")
        assert await fullscreen.is_visible()
        status = await farm.ok("GET", "/api/printers/x1c/camera")
        assert (status["state"], status["viewers"]) == ("streaming", 1)
        # Leaving the page closes the stream.
        await pg.goto(farm.https + "/#/")
        await pg.wait_for_selector("[data-testid=printer-card]")
        status = await farm.ok("GET", "/api/printers/x1c/camera")
        assert status["viewers"] == 0


async def test_cards_show_the_jpeg_stream_and_h264_snapshots_and_nothing_for_a_camera_off(
    cams: dict[str, Any],  # noqa: F811
) -> None:
    async with _printer_page(cams, "camera-cards", viewport={"width": 1280, "height": 3000}) as (pg, farm):
        card = "[data-testid=printer-card][data-printer-id={}] "
        p1s_img = pg.locator(card.format("p1s") + "[data-testid=camera-img]")
        await p1s_img.wait_for(state="visible", timeout=20_000)
        seen: list[str] = []
        for _ in range(40):
            src = await p1s_img.evaluate("i => i.complete && i.naturalWidth > 0 ? i.src : null")
            if src and src not in seen:
                seen.append(src)
            if len(seen) >= 3:
                break
            await pg.wait_for_timeout(150)
        assert len(seen) >= 3  # a new frame, a new object URL
        assert all(s.startswith("blob:") for s in seen)
        assert await p1s_img.evaluate("i => i.naturalWidth") == 1280  # make_jpegs' frames
        # Frames shown before are revoked: their URLs no longer load.
        old = seen[0]  # shown two or more frames ago
        revoked = await pg.evaluate(
            "u => new Promise((done) => { const i = new Image();"
            " i.onload = () => done(false); i.onerror = () => done(true); i.src = u; })",
            old,
        )
        assert revoked
        # The X1C card refreshes a snapshot, it does not stream.
        x1c_img = pg.locator(card.format("x1c") + "[data-testid=camera-img]")
        await x1c_img.wait_for(state="visible", timeout=30_000)
        await pg.wait_for_function(
            "() => document.querySelector('[data-printer-id=x1c] [data-testid=camera-img]').naturalWidth > 0",
            timeout=30_000,
        )
        assert await pg.locator(card.format("x1c") + "video:visible").count() == 0
        status = await farm.ok("GET", "/api/printers/x1c/camera")
        assert status["viewers"] == 0  # snapshots are not viewers
        # A camera that is off shows nothing; an unreachable one says why.
        assert await pg.locator(card.format("off") + "[data-testid=camera-tile]").is_hidden()
        gone = pg.locator(card.format("gone") + "[data-testid=camera-message]")
        await gone.wait_for(state="visible", timeout=30_000)
        assert "refused the connection" in (await gone.inner_text())
        fake = pg.locator(card.format("fake") + "[data-testid=camera-message]")
        await fake.wait_for(state="visible", timeout=30_000)
        assert "trusted certificate" in (await fake.inner_text())
        assert (await farm.ok("GET", "/api/printers/p1s/camera"))["viewers"] == 1


async def test_low_bandwidth_plays_the_scaled_sub_stream_and_is_remembered(
    cams: dict[str, Any],  # noqa: F811
) -> None:
    async with _printer_page(cams, "camera-sub", "/#/printer/x1c") as (pg, farm):
        low = pg.locator("[data-testid=camera-low-bandwidth]")
        await low.wait_for(state="visible", timeout=20_000)  # the X1C's camera has a sub-stream
        assert await low.get_attribute("aria-pressed") == "false"
        await low.click()
        assert await low.get_attribute("aria-pressed") == "true"
        await pg.wait_for_function(
            "() => { const v = document.querySelector('[data-testid=camera-video]');"
            " return v.videoHeight === 180 && v.currentTime > 0.5; }",
            timeout=40_000,
        )
        video = pg.locator("[data-testid=camera-video]")
        t1 = await video.evaluate("v => v.currentTime")
        await pg.wait_for_function(
            "t1 => document.querySelector('[data-testid=camera-video]').currentTime > t1 + 1.0",
            arg=t1,
            timeout=15_000,
        )
        assert await video.evaluate("v => v.videoWidth") == 320
        sub = await farm.ok("GET", "/api/printers/x1c/camera?stream=sub")
        assert (sub["state"], sub["viewers"]) == ("streaming", 1)
        # Remembered: the page opened again plays the sub-stream at once.
        await pg.reload()
        await pg.wait_for_function(
            "() => { const v = document.querySelector('[data-testid=camera-video]');"
            " return v && v.videoHeight === 180 && v.currentTime > 0.5; }",
            timeout=40_000,
        )
        assert await pg.locator("[data-testid=camera-low-bandwidth]").get_attribute("aria-pressed") == "true"
