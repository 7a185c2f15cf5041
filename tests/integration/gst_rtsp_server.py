"""An X1-style printer camera: GStreamer's RTSP server with a live H.264 test pattern.

Run by Debian's /usr/bin/python3 (python3-gi is not importable from the venv; TESTBED.md section 3)
as its own process; ``rtsp_camera.RtspCamera`` starts it. It binds port 0 on 127.0.0.1 and prints
``port N`` once it listens, then ``client`` for every RTSP connection it accepts and ``closed``
when one ends, so a test can count the upstream connections.

    /usr/bin/python3 gst_rtsp_server.py [--tls server.pem] [--user bblp --password CODE]
        [--path /streaming/live/1] [--size 640x360] [--fps 30] [--stamped]
        [--pattern ball] [--digest] [--codec h264|h265]

``--stamped``: instead of the test pattern, frames that carry the wall-clock time they were made
(milliseconds mod 2**32, ``STAMP_BITS`` black or white blocks across the top, most significant
first), so a viewer can tell each frame's age from its pixels (bench/camera_latency.py).
"""

import argparse
import sys
import time

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtsp", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import Gio, GLib, Gst, GstRtsp, GstRtspServer  # noqa: E402

STAMP_BITS = 32
STAMP_ROWS = 3  # block rows, each the same stamp: a viewer reads the middle one


class StampedFrames:
    """I420 frames, mid-grey, the time each is pushed painted into the luma plane as blocks."""

    def __init__(self, appsrc, width: int, height: int, fps: int):
        self.appsrc, self.width, self.height = appsrc, width, height
        self.block = width // STAMP_BITS
        self.grey = bytearray(b"\x80" * (width * height * 3 // 2))
        GLib.timeout_add(1000 // fps, self.push)

    def push(self) -> bool:
        stamp = int(time.time() * 1000) % (1 << STAMP_BITS)
        frame = bytearray(self.grey)
        row = b"".join(
            (b"\xeb" if stamp >> (STAMP_BITS - 1 - bit) & 1 else b"\x10") * self.block
            for bit in range(STAMP_BITS)
        )
        for y in range(self.block * STAMP_ROWS):
            frame[y * self.width : y * self.width + len(row)] = row
        buf = Gst.Buffer.new_wrapped(bytes(frame))  # timestamped by appsrc as it is pushed
        return self.appsrc.emit("push-buffer", buf) == Gst.FlowReturn.OK


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tls", help="PEM file with the certificate and its key (RTSPS)")
    ap.add_argument("--user")
    ap.add_argument("--password")
    ap.add_argument("--path", default="/streaming/live/1")
    ap.add_argument("--size", default="640x360")
    ap.add_argument("--fps", type=int, default=30)
    ap.add_argument("--stamped", action="store_true")
    ap.add_argument("--pattern", default="ball", help="videotestsrc's pattern")
    ap.add_argument("--digest", action="store_true", help="ask for Digest instead of Basic")
    ap.add_argument("--codec", choices=("h264", "h265"), default="h264")
    args = ap.parse_args()
    width, height = args.size.split("x")
    Gst.init(None)
    srv = GstRtspServer.RTSPServer()
    srv.set_address("127.0.0.1")
    srv.set_service("0")
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_shared(True)  # one encoder for every client, as a camera has
    caps = f"video/x-raw,width={width},height={height},framerate={args.fps}/1"
    source = (
        f"appsrc name=stamped is-live=true do-timestamp=true format=time caps={caps},format=I420"
        if args.stamped
        else f"videotestsrc is-live=true pattern={args.pattern} ! {caps}"
    )
    n = args.codec[-1]  # x264enc ! h264parse ! rtph264pay, or the same with 5
    factory.set_launch(
        f"( {source} ! x26{n}enc tune=zerolatency speed-preset=ultrafast "
        f"key-int-max={args.fps} ! h26{n}parse ! rtph26{n}pay name=pay0 pt=96 config-interval=1 )"
    )
    if args.stamped:
        feeds = []  # kept alive with the media

        def configure(_factory, media):
            appsrc = media.get_element().get_by_name("stamped")
            feeds.append(StampedFrames(appsrc, int(width), int(height), args.fps))

        factory.connect("media-configure", configure)
    if args.tls or args.user:
        auth = GstRtspServer.RTSPAuth()
        if args.tls:
            auth.set_tls_certificate(Gio.TlsCertificate.new_from_file(args.tls))
        if args.user:
            token = GstRtspServer.RTSPToken()
            token.set_string(GstRtspServer.RTSP_TOKEN_MEDIA_FACTORY_ROLE, "user")
            if args.digest:
                auth.set_supported_methods(GstRtsp.RTSPAuthMethod.DIGEST)
                auth.add_digest(args.user, args.password, token)
            else:
                auth.add_basic(GstRtspServer.RTSPAuth.make_basic(args.user, args.password), token)
            role = "user, media.factory.access=(boolean)true, media.factory.construct=(boolean)true"
            factory.add_role_from_structure(Gst.Structure.from_string(role)[0])
        srv.set_auth(auth)
    srv.get_mount_points().add_factory(args.path, factory)

    def connected(_srv, client) -> None:
        print("client", flush=True)
        client.connect("closed", lambda _client: print("closed", flush=True))

    srv.connect("client-connected", connected)
    if srv.attach(None) == 0:
        print("could not listen", file=sys.stderr, flush=True)
        return 1
    print("port", srv.get_bound_port(), flush=True)
    GLib.MainLoop().run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
