"""Daemon memory with 10 printers at 1 Hz and 5 dashboards (DESIGN section 5: RSS <= 60 MB).

Runs the real daemon as a child process (``python -m bambu_edge --config ... run``) with 10 virtual
printers (every virtual model in turn, looping demo prints, so state changes all the time) on one local
mosquitto, and 5 WebSocket clients on ``GET /api/ws`` that read every frame. After the warm-up (a
minute scaled down to 20 s by default) it reads VmRSS and VmHWM of the daemon from /proc/PID/status.

CPU per printer report over the settled second half, against mosquitto relaying the reports and a
bare paho + json.loads subscriber fed the same reports in the same run; with browsers, that subscriber
also writes each report as a WebSocket frame to as many TLS sockets, read by the bench (the least a
program can do to show the reports to that many browsers). Memory baselines, measured the
same way: a bare interpreter, and one importing the daemon's third-party
libraries (aiohttp, aiomqtt/paho, aiosqlite, argon2, PyYAML, orjson, ssl) and nothing
else. Exit code 1 when the daemon's RSS is over the limit.

    python bench/rss_10_printers.py [--warmup 20] [--printers 10] [--clients 5] [--hz 1] [--print-s 120] [--limit-mb 60]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import secrets
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from _proc import cpu_seconds  # noqa: E402  (bench/, the script's folder)

from bambu_edge.demo.broker import LocalBroker, free_port  # noqa: E402
from bambu_edge.printers.virtual import VIRTUAL_MODELS, VirtualPrinter, make_serial  # noqa: E402
from tests.integration.daemon_proc import DaemonProcess  # noqa: E402
from tests.integration.waiting import dashboard_tls  # noqa: E402

# The daemon's own libraries. Not cryptography: certificates are made in a child process.
LIBS = "import aiohttp, aiomqtt, paho.mqtt.client, aiosqlite, argon2, yaml, orjson, ssl"
STATUS_SNIPPET = "print(open('/proc/self/status').read())"
# The least a program can do with the same reports: one paho client per printer (TLS, like the
# daemon's links), every report decoded with json.loads, all sockets polled by one thread. With
# browsers (--clients N), the least it can do to show them the reports too: each report, as it
# came, framed once as a WebSocket text message and written to N TLS sockets (one per browser,
# each read by the bench like a dashboard), as the daemon does over its HTTPS WebSockets.
BARE_SUBSCRIBER = """
import json, selectors, socket, ssl, struct, sys, time
import paho.mqtt.client as mqtt
host, port, ca, code, cert, key, forwards, *serials = sys.argv[1:]
outs = []
if int(forwards):
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert, key)
    listener = socket.create_server((host, 0))
    print(listener.getsockname()[1], flush=True)
    for _ in range(int(forwards)):
        conn, _ = listener.accept()
        outs.append(server.wrap_socket(conn, server_side=True))
    listener.close()
sel = selectors.DefaultSelector()
def frame(payload):
    n = len(payload)
    head = bytes((0x81, n)) if n < 126 else struct.pack("!BBH", 0x81, 126, n) if n < 65536 else struct.pack("!BBQ", 0x81, 127, n)
    return head + payload
def on_message(client, userdata, msg):
    json.loads(msg.payload)
    if outs:
        data = frame(msg.payload)
        for out in outs:
            out.sendall(data)
for serial in serials:
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bare-" + serial)
    c.username_pw_set("bblp", code)
    ctx = ssl.create_default_context(cafile=ca)
    ctx.check_hostname = False
    c.tls_set_context(ctx)
    c.on_message = on_message
    c.on_connect = lambda cl, u, f, rc, p, s=serial: cl.subscribe(f"device/{s}/report")
    c.connect(host, int(port))
    sel.register(c.socket(), selectors.EVENT_READ, c)
misc = time.monotonic()
while True:
    for key, _ in sel.select(timeout=1.0):
        key.data.loop_read()
    for key in list(sel.get_map().values()):
        if key.data.want_write():
            key.data.loop_write()
    if time.monotonic() - misc >= 1.0:
        misc = time.monotonic()
        for key in list(sel.get_map().values()):
            key.data.loop_misc()
"""


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS / VmHWM / VmSize of a process, in kB."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM", "VmSize", "RssAnon", "RssFile"):
            out[key] = int(value.split()[0])
    return out


def baseline(code: str) -> dict[str, int]:
    text = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    out = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0])
    return out


def write_config(
    path: Path, data_dir: Path, broker: LocalBroker, code: str, serials: list[str], https: int
) -> None:
    printers = [
        {
            "id": f"bench-{i}",
            "name": f"Bench {i} ({model})",
            "host": broker.host,
            "mqtt_port": broker.port,
            "serial": serial,
            "access_code": code,
            "tls": {"fingerprint": broker.fingerprint},
            "camera": "off",
        }
        for i, (serial, model) in enumerate(zip(serials, _models(len(serials)), strict=True))
    ]
    config = {
        "data_dir": str(data_dir),
        "log_level": "warning",
        "web": {"bind": "127.0.0.1", "https_port": https, "http_port": None},
        "printers": printers,
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))


def _models(n: int) -> list[str]:
    return [VIRTUAL_MODELS[i % len(VIRTUAL_MODELS)] for i in range(n)]


async def wait_healthy(session: aiohttp.ClientSession, base: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the daemon exited with {proc.returncode}")
        with contextlib.suppress(aiohttp.ClientError):
            async with session.get(base + "/api/health") as r:
                if r.status == 200:
                    return
        await asyncio.sleep(0.1)
    raise RuntimeError("the daemon did not answer /api/health within 30 s")


async def bare_browser(port: int, counts: list[int], i: int) -> None:
    """One of the bare subscriber's browsers: a TLS socket read to the end, counting bytes."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=dashboard_tls())
    try:
        while chunk := await reader.read(65536):
            counts[i] += len(chunk)
    finally:
        writer.close()


async def dashboard(session: aiohttp.ClientSession, url: str, token: str, counts: list[int], i: int) -> None:
    """One browser tab: the WebSocket, read to the end."""
    async with session.ws_connect(url, headers={"Authorization": f"Bearer {token}"}, heartbeat=30) as ws:
        async for msg in ws:
            if msg.type == aiohttp.WSMsgType.TEXT:
                counts[i] += 1
            elif msg.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                break


@dataclass
class Setup:
    tmp: Path
    broker: LocalBroker
    code: str
    serials: list[str]
    https: int
    proc: subprocess.Popen[bytes]
    bare: subprocess.Popen[bytes]  # BARE_SUBSCRIBER
    forward_port: int  # where BARE_SUBSCRIBER takes its browsers' sockets (0: none)


async def measure(args: argparse.Namespace, setup: Setup) -> int:
    broker, code, serials, proc, tmp = setup.broker, setup.code, setup.serials, setup.proc, setup.tmp
    printers: list[VirtualPrinter] = []
    tasks: list[asyncio.Task[None]] = []
    base = f"https://127.0.0.1:{setup.https}"
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=False)) as session:
            await wait_healthy(session, base, proc)
            async with session.post(
                base + "/api/setup/admin", json={"username": "bench", "password": secrets.token_urlsafe(12)}
            ) as r:
                r.raise_for_status()
                token = (await r.json())["token"]
            for serial, model in zip(serials, _models(args.printers), strict=True):
                vp = VirtualPrinter(
                    broker.host,
                    broker.port,
                    serial,
                    code,
                    model,
                    str(broker.ca_path),
                    report_hz=args.hz,
                    demo_prints=True,
                    demo_print_s=args.print_s,
                    demo_phase=len(printers) / (args.printers + 1),
                    demo_pause_s=5.0,
                )
                await vp.start()
                printers.append(vp)
            counts = [0] * args.clients
            ws_url = base.replace("https", "wss") + "/api/ws"
            tasks = [
                asyncio.create_task(dashboard(session, ws_url, token, counts, i)) for i in range(args.clients)
            ]
            bare_bytes = [0] * args.clients
            tasks += [
                asyncio.create_task(bare_browser(setup.forward_port, bare_bytes, i))
                for i in range(args.clients)
            ]
            started = proc_status(proc.pid)
            samples = []
            t0 = time.monotonic()
            cpu0: tuple[float, float, float, float] | None = None  # from half-way: connects and pins are done
            while time.monotonic() - t0 < args.warmup:
                await asyncio.sleep(1.0)
                if proc.poll() is not None:
                    raise RuntimeError(f"the daemon exited with {proc.returncode}; see {tmp / 'daemon.log'}")
                samples.append(proc_status(proc.pid)["VmRSS"])
                if cpu0 is None and time.monotonic() - t0 >= args.warmup / 2:
                    cpu0 = (
                        time.monotonic(),
                        cpu_seconds(proc.pid),
                        cpu_seconds(setup.broker.pid),
                        cpu_seconds(setup.bare.pid),
                    )
                if any(t.done() for t in tasks):
                    failed = next(t for t in tasks if t.done())
                    raise RuntimeError(f"a WebSocket client ended early: {failed.exception()!r}")
            final = proc_status(proc.pid)
            assert cpu0 is not None
            window = time.monotonic() - cpu0[0]
            cpu = (
                cpu_seconds(proc.pid) - cpu0[1],
                cpu_seconds(setup.broker.pid) - cpu0[2],
                cpu_seconds(setup.bare.pid) - cpu0[3],
            )
            async with session.get(base + "/api/printers", headers={"Authorization": f"Bearer {token}"}) as r:
                views = await r.json()
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for vp in printers:
            await vp.stop()

    bare = baseline(STATUS_SNIPPET)
    libs = baseline(f"{LIBS}; {STATUS_SNIPPET}")
    connected = sum(1 for v in views if (v.get("link") or {}).get("state") == "connected")
    mb = 1024.0
    rss, hwm = final["VmRSS"] / mb, final["VmHWM"] / mb
    print(
        f"daemon: {args.printers} printers ({connected} connected) at {args.hz:g} Hz, {args.clients} WebSockets,"
    )
    print(
        f"        {args.warmup:g} s warm-up, {sum(counts)} frames received"
        + (f" ({min(counts)}..{max(counts)} per client)" if counts else "")
    )
    print(f"  VmRSS at start of load   {started['VmRSS'] / mb:7.1f} MB")
    print(
        f"  VmRSS after warm-up      {rss:7.1f} MB   (anon {final.get('RssAnon', 0) / mb:.1f}, file {final.get('RssFile', 0) / mb:.1f})"
    )
    print(f"  VmRSS max of samples     {max(samples) / mb:7.1f} MB")
    print(f"  VmHWM (peak)             {hwm:7.1f} MB   (includes one argon2 login hash, 19 MiB, transient)")
    print(f"baseline: bare python      {bare['VmRSS'] / mb:7.1f} MB")
    print(f"baseline: python + libs    {libs['VmRSS'] / mb:7.1f} MB   ({LIBS.removeprefix('import ')})")
    for lib in LIBS.removeprefix("import ").split(", "):
        alone = baseline(f"import {lib}; {STATUS_SNIPPET}")
        print(f"    + {lib:<26} {(alone['VmRSS'] - bare['VmRSS']) / mb:+6.1f} MB alone")
    print(
        f"ratio daemon / python+libs {final['VmRSS'] / libs['VmRSS']:7.2f}x   daemon - libs = {(final['VmRSS'] - libs['VmRSS']) / mb:.1f} MB"
    )
    # CPU over the second half of the warm-up. Baseline: mosquitto, relaying the same reports (TLS in
    # and out).
    reports = args.printers * args.hz * window
    print(
        f"CPU over {window:.0f} s: daemon {cpu[0] / window * 100:5.1f} % of a core"
        f" ({cpu[0] / reports * 1e6:.0f} us per printer report, WebSocket frames included),"
        f" mosquitto {cpu[1] / window * 100:5.1f} %"
    )
    forwarding = f", each report forwarded to {args.clients} TLS sockets" if args.clients else ""
    print(
        f"bare paho + json.loads subscriber{forwarding} {cpu[2] / window * 100:5.1f} % of a core"
        f" ({cpu[2] / reports * 1e6:.0f} us per printer report)"
    )
    print(f"ratio daemon CPU / mosquitto CPU {cpu[0] / max(cpu[1], 1e-9):6.2f}x")
    print(f"ratio daemon CPU / bare subscriber CPU {cpu[0] / max(cpu[2], 1e-9):6.2f}x (target <= 2)")
    ok = rss <= args.limit_mb
    print(f"target VmRSS <= {args.limit_mb:g} MB: {'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--warmup", type=float, default=20.0, help="seconds under load before measuring (default 20)"
    )
    p.add_argument("--printers", type=int, default=10)
    p.add_argument("--clients", type=int, default=5)
    p.add_argument("--hz", type=float, default=1.0, help="reports per second per printer")
    # Each print's start and end cost the daemon work of their own (a history record opened and
    # closed, the print's file looked up): with 2-minute prints that is counted over few reports.
    p.add_argument("--print-s", type=float, default=120.0, help="length of each looping demo print")
    p.add_argument("--limit-mb", type=float, default=60.0)
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-rss-") as name:
        tmp = Path(name)
        code = f"{secrets.randbelow(10**8):08d}"
        serials = [make_serial(m) for m in _models(args.printers)]
        broker = LocalBroker(tmp / "broker", {"bblp": code}, server_cn="bench-broker")
        broker.start()
        https = free_port()
        config = tmp / "config.yaml"
        write_config(config, tmp / "data", broker, code, serials, https)
        daemon = DaemonProcess(config, log_path=tmp / "daemon.log")
        where = [broker.host, str(broker.port), str(broker.ca_path), code]
        where += [str(broker.cert_path), str(broker.key_path), str(args.clients)]
        bare = subprocess.Popen(
            [sys.executable, "-c", BARE_SUBSCRIBER, *where, *serials], stdout=subprocess.PIPE
        )
        try:
            forward_port = int(bare.stdout.readline()) if args.clients else 0  # type: ignore[union-attr]
            setup = Setup(tmp, broker, code, serials, https, daemon.proc, bare, forward_port)
            return asyncio.run(measure(args, setup))
        finally:
            bare.terminate()
            bare.wait()
            daemon.stop()
            broker.stop()


if __name__ == "__main__":
    raise SystemExit(main())
