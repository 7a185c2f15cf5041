"""The camera routes (DESIGN §4): status, a fresh snapshot, MJPEG and the viewer WebSocket."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Callable
from typing import TYPE_CHECKING

from aiohttp import WSMsgType, web

from bambu_edge.camera.supervisor import CameraSupervisor, CameraUnavailable
from bambu_edge.camera.viewers import ViewerClosed
from bambu_edge.camera.ws_viewer import WsViewer
from bambu_edge.web.api_auth import ApiError, json_response
from bambu_edge.web.openapi import documented
from bambu_edge.web.params import path_id

if TYPE_CHECKING:
    from bambu_edge.camera.component import CameraComponent

BOUNDARY = "frame"
VIEWER_LEFT = "viewer left"
MAIN, SUB = "main", "sub"  # camera?stream=, camera/ws?stream=
STREAM_PARAM = {
    "name": "stream",
    "schema": {"type": "string", "enum": [MAIN, SUB], "default": MAIN},
    "description": "sub: the camera's scaled sub-stream (404 no_substream where the camera has none)",
}
STATUS_SCHEMA = {
    "type": "object",
    "properties": {
        "kind": {"type": "string"},
        "state": {"type": "string", "enum": ["off", "idle", "starting", "streaming", "error"]},
        "viewers": {"type": "integer"},
        "codec": {"type": ["string", "null"], "enum": ["h264", "mjpeg", None]},
        "error": {"type": ["string", "null"]},
    },
}


def routes(component: Callable[[], CameraComponent | None]) -> list[web.RouteDef]:
    """The camera routes, served by the component ``component()`` returns (503 while none)."""

    async def supervisor(request: web.Request, *, sub_allowed: bool = False) -> CameraSupervisor:
        cameras = component()
        if cameras is None:
            raise ApiError(503, "unavailable", "The cameras are not running; see the log.")
        stream = request.query.get("stream", MAIN)
        if stream not in (MAIN, SUB) or (stream == SUB and not sub_allowed):
            raise ApiError(400, "bad_request", "stream must be main or sub (sub: camera and camera/ws only).")
        printer_id = request.match_info["id"]
        sup = await cameras.camera(printer_id)
        if sup is None:
            raise ApiError(404, "not_found", "No such printer.")
        if stream == SUB:
            sub = await cameras.substream(printer_id)
            if sub is None:
                raise ApiError(
                    404,
                    "no_substream",
                    "This camera has no sub-stream: add substream: true to the printer's camera setting"
                    " (H.264 cameras only).",
                )
            return sub
        return sup

    async def streaming(request: web.Request, *, sub_allowed: bool = False) -> CameraSupervisor:
        sup = await supervisor(request, sub_allowed=sub_allowed)
        if sup.source.codec is None:
            raise ApiError(404, "camera_off", "This printer's camera is off in the config.")
        return sup

    @documented(response=STATUS_SCHEMA, query=[STREAM_PARAM])
    async def camera_status(request: web.Request) -> web.Response:
        """The printer's camera: its kind, state, viewers, codec and last error (``?stream=sub``: its
        sub-stream's)."""
        return json_response((await supervisor(request, sub_allowed=True)).status())

    @documented(media_type="image/jpeg")
    async def snapshot(request: web.Request) -> web.Response:
        """A JPEG at most 2 s old (503 when the camera cannot be reached, 404 when it is off)."""
        sup = await streaming(request)
        try:
            jpeg = await sup.snapshot()
        except CameraUnavailable as e:
            raise ApiError(503, e.code, str(e)) from None
        return web.Response(body=jpeg, content_type="image/jpeg", headers={"Cache-Control": "no-store"})

    @documented(media_type=f"multipart/x-mixed-replace; boundary={BOUNDARY}")
    async def mjpeg(request: web.Request) -> web.StreamResponse:
        """The JPEG camera's frames as they arrive (multipart/x-mixed-replace)."""
        sup = await streaming(request)
        if sup.source.codec != "mjpeg":
            raise ApiError(
                409,
                "not_mjpeg",
                "This camera sends H.264: watch it over camera/ws, or use camera/snapshot.jpg.",
            )
        resp = web.StreamResponse(
            headers={
                "Content-Type": f"multipart/x-mixed-replace; boundary={BOUNDARY}",
                "Cache-Control": "no-store",
            }
        )
        await resp.prepare(request)
        queue = sup.attach()
        try:
            while True:
                frame = await queue.get()
                head = f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(frame)}\r\n\r\n"
                await resp.write(head.encode() + frame + b"\r\n")
        except (ViewerClosed, ConnectionResetError):
            pass
        finally:
            sup.detach(queue)
        return resp

    async def camera_ws(request: web.Request) -> web.StreamResponse:
        """The live camera (WebSocket of binary messages): fragmented MP4 for H.264 cameras (the init
        segment first), one JPEG per message for JPEG cameras. ``?stream=sub``: the camera's scaled
        sub-stream (fragmented MP4 re-encoded smaller), where the camera's setting has one."""
        sup = await streaming(request, sub_allowed=True)
        # No permessage-deflate (browsers offer it): video does not compress, it only costs CPU.
        ws = web.WebSocketResponse(heartbeat=30.0, max_msg_size=4096, compress=False)
        await ws.prepare(request)  # a request that is no WebSocket handshake ends here (400)
        transport = request.transport
        if transport is None:  # the browser is already gone
            return ws
        viewer = sup.attach_viewer(lambda head: WsViewer(transport, head))
        reader = asyncio.ensure_future(_until_closed(ws))
        try:
            await asyncio.wait({viewer.closed, reader}, return_when=asyncio.FIRST_COMPLETED)
            reason = viewer.closed.result() if viewer.closed.done() else VIEWER_LEFT
            if reason != VIEWER_LEFT and not ws.closed:
                await ws.close(
                    code=1011 if "restarted" not in reason else 1012, message=reason.encode()[:120]
                )
        except ConnectionResetError:
            pass
        finally:
            reader.cancel()
            with contextlib.suppress(BaseException):
                await reader
            sup.detach(viewer)
            if not ws.closed:
                await ws.close()
        return ws

    @documented(media_type="video/mp4")
    async def timelapse(request: web.Request) -> web.StreamResponse:
        """The timelapse the camera recorded of a print (MP4; ranges for seeking); 404 if none."""
        cameras = component()
        found = cameras.history() if cameras is not None else None
        if cameras is None or found is None:
            raise ApiError(503, "unavailable", "The cameras or the print history are not running.")
        rec = await found[0].get(path_id(request))
        if rec is None or not rec.timelapse:
            raise ApiError(404, "not_found", "This print has no timelapse.")
        path = cameras.timelapse_dir / rec.timelapse  # the name is checked by the schema: uid.mp4
        if not path.is_file():
            raise ApiError(404, "not_found", "This print's timelapse is gone from the disk.")
        name = re.sub(r"[^A-Za-z0-9._-]+", "_", f"{rec.job or rec.printer_id}-{rec.id}.mp4")
        return web.FileResponse(
            path,
            headers={
                "Content-Type": "video/mp4",
                "Cache-Control": "private, max-age=86400",
                "Content-Disposition": f'inline; filename="{name}"',
            },
        )

    return [
        web.get(r"/api/history/{id:\d+}/timelapse.mp4", timelapse),
        web.get("/api/printers/{id}/camera", camera_status),
        web.get("/api/printers/{id}/camera/snapshot.jpg", snapshot),
        web.get("/api/printers/{id}/camera/mjpeg", mjpeg),
        web.get("/api/printers/{id}/camera/ws", camera_ws),
    ]


async def _until_closed(ws: web.WebSocketResponse) -> None:
    async for msg in ws:
        if msg.type in (WSMsgType.CLOSE, WSMsgType.ERROR):
            break
