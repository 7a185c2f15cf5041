"""Report -> WebSocket frame latency, 10 printers x 2 Hz, 20 dashboard clients (target p99 <= 20 ms).

The daemon runs as a child process against a local mosquitto. Ten printer-side MQTT clients publish
real-shaped P1S deltas (``nozzle_temper`` carries a unique value per message) at 2 Hz; 20 WebSocket
clients on /api/ws note when each value arrives. Latency = arrival - publish time.

Baseline, side by side in the same run: the same publishes read back by a plain MQTT subscriber
(the broker round trip the daemon cannot avoid). Prints p50/p99 for both and the ratio.

    python bench/ws_latency.py [--seconds 20] [--printers 10] [--hz 2] [--clients 20]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import orjson

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from _latency import CODE, frame_nozzle, mqtt_baseline, stamped_printer  # noqa: E402

from bambu_edge.demo.broker import LocalBroker  # noqa: E402
from tests.integration.daemon_proc import DaemonProcess, NotifySocket, printer_entry, write_config  # noqa: E402
from tests.integration.waiting import dashboard_tls  # noqa: E402


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(len(s) * p))] * 1000


async def main(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        broker = LocalBroker(tmp_path / "broker", {"bblp": CODE}, server_cn="01P00A000000000")
        broker.start()
        serials = [f"01P00A{n:09d}" for n in range(args.printers)]
        cfg_path = tmp_path / "config.yaml"
        write_config(
            cfg_path,
            tmp_path / "data",
            [printer_entry(broker, s, CODE, pid=f"p{i}") for i, s in enumerate(serials)],
        )
        env_cli = [sys.executable, "-m", "bambu_edge", "--config", str(cfg_path)]
        # Setup runs before anything concurrent starts, so blocking here is fine.
        subprocess.run([*env_cli, "user", "add", "bench"], input="bench-password\n", text=True, check=True)
        token = subprocess.run(
            [*env_cli, "token", "create", "bench"], capture_output=True, text=True, check=True
        ).stdout.strip()
        sock = NotifySocket(tmp_path / "n.sock").follow()
        daemon = DaemonProcess(cfg_path, env={"NOTIFY_SOCKET": str(sock.path)})
        sent: dict[tuple[str, float], float] = {}
        ws_lat: list[float] = []
        mqtt_lat: list[float] = []
        try:
            sock.wait_for("READY=1", timeout=30)
            ctx = ssl.create_default_context(cafile=str(broker.ca_path))
            ctx.check_hostname = False
            https = f"https://127.0.0.1:{daemon.https_port}"
            no_verify = dashboard_tls()
            stop = asyncio.Event()

            async def ws_client(session: aiohttp.ClientSession) -> None:
                async with session.ws_connect(
                    f"{https}/api/ws", headers={"Authorization": f"Bearer {token}"}, ssl=no_verify
                ) as ws:
                    async for msg in ws:
                        now = time.perf_counter()
                        frame = orjson.loads(msg.data)
                        if frame.get("type") != "printer":
                            continue
                        nozzle = frame_nozzle(frame)
                        t0 = sent.get((frame["id"], nozzle))
                        if t0 is not None:
                            ws_lat.append(now - t0)
                        if stop.is_set():
                            return

            async with aiohttp.ClientSession() as session:
                ready = asyncio.Event()
                tasks = [
                    asyncio.create_task(
                        mqtt_baseline(broker.host, broker.port, ctx, serials, sent, mqtt_lat, ready)
                    )
                ]
                tasks += [asyncio.create_task(ws_client(session)) for _ in range(args.clients)]
                await ready.wait()
                await asyncio.sleep(1.0)
                tasks += [
                    asyncio.create_task(
                        stamped_printer(
                            broker.host, broker.port, ctx, i, s, args.hz, args.printers, sent, stop
                        )
                    )
                    for i, s in enumerate(serials)
                ]
                await asyncio.sleep(args.seconds)
                stop.set()
                await asyncio.sleep(0.6)
                for t in tasks:
                    t.cancel()
                for t in tasks:
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await t
        finally:
            daemon.stop()
            sock.close()
            broker.stop()
    if not ws_lat or not mqtt_lat:
        print("no frames measured", file=sys.stderr)
        return 1
    print(f"reports published: {len(sent)}, ws frames matched: {len(ws_lat)} ({args.clients} clients)")
    print(
        f"broker round trip (baseline)  p50 {pct(mqtt_lat, 0.5):6.2f} ms   p99 {pct(mqtt_lat, 0.99):6.2f} ms"
    )
    print(f"report -> ws frame            p50 {pct(ws_lat, 0.5):6.2f} ms   p99 {pct(ws_lat, 0.99):6.2f} ms")
    print(
        f"ratio daemon path / broker    p50 {statistics.median(ws_lat) / statistics.median(mqtt_lat):.2f}x   "
        f"p99 {pct(ws_lat, 0.99) / pct(mqtt_lat, 0.99):.2f}x"
    )
    p99 = pct(ws_lat, 0.99)
    print(f"target p99 <= 20 ms: {'met' if p99 <= 20 else 'MISSED'}")
    return 0 if p99 <= 20 else 1


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--printers", type=int, default=10)
    ap.add_argument("--hz", type=float, default=2)
    ap.add_argument("--clients", type=int, default=20)
    raise SystemExit(asyncio.run(main(ap.parse_args())))
