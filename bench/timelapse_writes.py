"""Bytes written to the SD card per hour of timelapse recording, at the default settings.

The recorder (camera/recorder.py) runs in this process against a real camera: GStreamer's RTSPS
server as an X1C's camera (1280x720, 30 fps, through the daemon's verified relay and ffmpeg; noise
by default, the largest JPEGs a camera makes, so an upper bound), each frame the recorder's
snapshot of it, a frame per layer change of a driven layer counter (the bus's
``printer`` events, as the printer link publishes them). Counted: ``write_bytes`` of /proc/self/io
(what this process made the kernel send to block storage; tmpfs writes are not) while recording,
and the finished MP4, the one file a print leaves on the card. Run twice: the spool where it goes by
default (RAM, /dev/shm, where the daemon may write there) and on the disk (``spool_dir`` set, or no
/dev/shm), so the difference is the SD card's share.

Per hour: at the default, one frame per layer; a layer takes 10-60 s on a Bambu printer (0.2 mm
layers), so 60-360 frames an hour; the figures are given for 120 (a layer every 30 s) and 360.

    python bench/timelapse_writes.py [--layers 30] [--layer-s 2.5]
"""

from __future__ import annotations

import argparse
import asyncio
import ssl
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bambu_edge.bus import Event, EventBus  # noqa: E402
from bambu_edge.camera.recorder import TimelapseRecorder  # noqa: E402
from bambu_edge.camera.source import CameraSource  # noqa: E402
from bambu_edge.camera.supervisor import CameraAccess, CameraSupervisor  # noqa: E402
from bambu_edge.camera.timelapse import TimelapseConfig, default_spool_dir  # noqa: E402
from bambu_edge.certs import make_server_cert  # noqa: E402
from bambu_edge.jobs.history_service import HISTORY_EVENT, RecordChange  # noqa: E402
from bambu_edge.jobs.records import PrintRecord  # noqa: E402
from bambu_edge.printers.base import PRINTER_EVENT, PrinterUpdate  # noqa: E402
from bambu_edge.tasks import TaskSet  # noqa: E402
from tests.integration.rtsp_camera import RtspCamera  # noqa: E402

CODE = "12345678"
PER_HOUR = (120, 360)


def write_bytes() -> int:
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("write_bytes:"):
            return int(line.split()[1])
    return 0


async def settle(tasks: TaskSet, suffix: str) -> None:
    """Until the recorder's tasks named ``*suffix`` (a frame being taken, the encoding) have ended."""
    pending = [t for t in tasks.tasks if t.get_name().endswith(suffix)]
    if pending:
        await asyncio.wait(pending)


async def record(
    cam: RtspCamera, tls: ssl.SSLContext, data: Path, spool: Path, layers: int, layer_s: float
) -> dict[str, float]:
    async def context() -> ssl.SSLContext:
        return tls

    tasks = TaskSet("bench")
    bus = EventBus()
    sup = CameraSupervisor(
        "x1c",
        CameraSource("rtsps", port=cam.port),
        CameraAccess(host="127.0.0.1", access_code=CODE, context=context),
        tasks,
    )

    async def camera(_pid: str) -> CameraSupervisor:
        return sup

    cfg = TimelapseConfig(enabled=True)  # the defaults, switched on
    rec = TimelapseRecorder(
        cfg, bus, tasks, camera, lambda: None, out_dir=data / "timelapses", spool_dir=spool
    )
    rec.start()
    record_ = PrintRecord(uid=f"bench{time.monotonic_ns()}", printer_id="x1c", started_at=time.time(), id=1)
    try:
        before = write_bytes()
        bus.publish(Event(HISTORY_EVENT, "x1c", RecordChange("started", record_)))
        for layer in range(1, layers + 1):
            bus.publish(
                Event(PRINTER_EVENT, "x1c", PrinterUpdate(changes={"print": {"layer": layer}}, view={}))
            )
            await asyncio.sleep(layer_s)  # the printer's pace; each frame is a fresh snapshot
        await settle(tasks, "-frame")
        spooled = write_bytes() - before
        frames = rec.recordings["x1c"].spool.count
        held = rec.recordings["x1c"].spool.written
        bus.publish(Event(HISTORY_EVENT, "x1c", RecordChange("ended", record_)))
        out = data / "timelapses" / f"{record_.uid}.mp4"
        await settle(tasks, "-encode")
        return {
            "frames": frames,
            "spooled": spooled,
            "jpeg": held / max(frames, 1),
            "mp4": out.stat().st_size,
        }
    finally:
        await rec.stop()
        await sup.close()
        await tasks.close()


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--layers", type=int, default=30)
    ap.add_argument("--layer-s", type=float, default=2.5)
    ap.add_argument("--pattern", default="snow", help="the camera's picture (videotestsrc): snow, ball, ...")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="timelapse-writes-"))
    pair = make_server_cert("camera", ["127.0.0.1"])
    # snow: noise, the largest JPEGs a 720p camera can make (the ball's are a few kB): an upper bound
    cam = RtspCamera(work / "rtsp", pair, password=CODE, size="1280x720", fps=30, pattern=args.pattern)
    await asyncio.to_thread(cam.start)
    tls = ssl.create_default_context(cadata=pair.cert_pem.decode())
    print(f"timelapse of a 1280x720 RTSPS camera, {args.layers} layers, a frame per layer (the default)")
    try:
        for name, data, spool in (
            ("spool by default", work / "a", default_spool_dir(work / "a")),
            ("spool on the disk", work / "b", work / "b" / "timelapse-spool"),
        ):
            data.mkdir(parents=True)
            r = await record(cam, tls, data, spool, args.layers, args.layer_s)
            per_frame_disk = r["spooled"] / max(r["frames"], 1)
            per_frame_mp4 = r["mp4"] / max(r["frames"], 1)
            hours = ", ".join(
                f"{n} frames/h: {(per_frame_disk + per_frame_mp4) * n / 1e6:.2f} MB"
                f" ({per_frame_disk * n / 1e6:.2f} spool + {per_frame_mp4 * n / 1e6:.2f} MP4)"
                for n in PER_HOUR
            )
            print(
                f"{name:<18} ({spool}): {r['frames']:.0f} frames of {r['jpeg'] / 1e3:.0f} kB;"
                f" written to disk while recording {r['spooled'] / 1e3:.0f} kB, MP4 {r['mp4'] / 1e3:.0f} kB"
            )
            print(f"{'':<18} per hour: {hours}")
    finally:
        cam.stop()


if __name__ == "__main__":
    asyncio.run(main())
