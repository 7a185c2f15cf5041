"""Farm sync: report -> remote unit's WebSocket frame latency, and farm-broker bytes per printer-hour.

Two real daemons (child processes) share a mosquitto farm broker (TLS, a password per unit, as
docs/farm.md sets one up). Unit "garage" owns N printers, played by printer-side MQTT clients on
the printers' mosquitto that publish real-shaped P1S deltas at H Hz (``nozzle_temper`` carries a
unique value per message); unit "attic" owns none. A WebSocket client on the attic notes when each
value arrives as a `printer` frame: report -> garage's link -> farm broker -> attic -> browser.

Side by side in the same run: the same publishes read back by a plain MQTT subscriber on the
printers' broker (the round trip no path can avoid).

Each unit reaches the farm broker through a byte-counting TCP relay, so the bytes are those on the
wire (TLS included): what the owning unit uploads and what a receiving unit downloads, per
printer-hour, extrapolated from the run.

    python bench/farm_latency.py [--seconds 30] [--printers 10] [--hz 1]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from _farm import CountingRelay  # noqa: E402
from _latency import CODE, frame_nozzle, mqtt_baseline, stamped_printer  # noqa: E402

from bambu_edge.demo.broker import LocalBroker  # noqa: E402
from tests.integration.daemon_proc import DaemonProcess, NotifySocket, printer_entry, write_config  # noqa: E402
from tests.integration.farm_units import FarmBroker, unit_password  # noqa: E402
from tests.integration.waiting import dashboard_tls  # noqa: E402


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(len(s) * p))] * 1000


def _farm_fields(n: int) -> dict[str, Any]:
    """The rest of a printing P1S's delta, so a remote unit's frame carries what a real one would."""
    return {
        "bed_temper": 55.0 + (n % 3) / 10,
        "mc_percent": n % 100,
        "mc_remaining_time": 1000 - n % 1000,
        "layer_num": n,
        "gcode_state": "RUNNING",
    }


def unit_config(
    tmp: Path, node: str, printers: list[dict], relay: CountingRelay, farm: LocalBroker
) -> tuple[Path, str]:
    home = tmp / node
    home.mkdir()
    cfg_path = home / "config.yaml"
    extra = {
        "node": {"id": node, "name": node.capitalize()},
        "farm": {
            "broker": f"mqtts://127.0.0.1:{relay.port}",
            "username": node,
            "password": unit_password(node),
            "ca_file": str(farm.ca_path),
        },
    }
    write_config(cfg_path, home / "data", printers, extra=extra)
    cli = [sys.executable, "-m", "bambu_edge", "--config", str(cfg_path)]
    subprocess.run([*cli, "user", "add", "bench"], input="bench-password\n", text=True, check=True)
    token = subprocess.run([*cli, "token", "create", "bench"], capture_output=True, text=True, check=True)
    return cfg_path, token.stdout.strip()


async def main(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        broker = LocalBroker(tmp_path / "broker", {"bblp": CODE}, server_cn="01P00A000000000")
        farm = FarmBroker(
            tmp_path / "farm", {n: unit_password(n) for n in ("garage", "attic")}, server_cn="farm"
        )
        broker.start()
        farm.start()
        relays = {
            "garage": CountingRelay("127.0.0.1", farm.port),
            "attic": CountingRelay("127.0.0.1", farm.port),
        }
        for r in relays.values():
            await r.start()
        serials = [f"01P00A{n:09d}" for n in range(args.printers)]
        garage_cfg, _ = unit_config(
            tmp_path,
            "garage",
            [printer_entry(broker, s, CODE, pid=f"p{i}") for i, s in enumerate(serials)],
            relays["garage"],
            farm,
        )
        attic_cfg, token = unit_config(tmp_path, "attic", [], relays["attic"], farm)
        socks = [NotifySocket(tmp_path / f"{n}.sock").follow() for n in ("garage", "attic")]
        daemons = [
            DaemonProcess(garage_cfg, env={"NOTIFY_SOCKET": str(socks[0].path)}),
            DaemonProcess(attic_cfg, env={"NOTIFY_SOCKET": str(socks[1].path)}),
        ]
        sent: dict[tuple[str, float], float] = {}
        ws_lat: list[float] = []
        mqtt_lat: list[float] = []
        measured = 0.0
        counts: dict[str, tuple[int, int]] = {}
        try:
            for s in socks:
                await asyncio.to_thread(s.wait_for, "READY=1", 30)
            ctx = ssl.create_default_context(cafile=str(broker.ca_path))
            ctx.check_hostname = False
            https = f"https://127.0.0.1:{daemons[1].https_port}"
            no_verify = dashboard_tls()
            stop = asyncio.Event()
            listed = asyncio.Event()

            async def ws_client(session: aiohttp.ClientSession) -> None:
                async with session.ws_connect(
                    f"{https}/api/ws", headers={"Authorization": f"Bearer {token}"}, ssl=no_verify
                ) as ws:
                    async for msg in ws:
                        now = time.perf_counter()
                        frame = orjson.loads(msg.data)
                        kind = frame.get("type")
                        if kind == "snapshot" and len(frame["printers"]) >= args.printers:
                            listed.set()
                        if kind == "printer_added":
                            listed.set()
                        if kind != "printer":
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
                    ),
                    asyncio.create_task(ws_client(session)),
                ]
                await ready.wait()
                tasks += [
                    asyncio.create_task(
                        stamped_printer(
                            broker.host,
                            broker.port,
                            ctx,
                            i,
                            s,
                            args.hz,
                            args.printers,
                            sent,
                            stop,
                            _farm_fields,
                        )
                    )
                    for i, s in enumerate(serials)
                ]
                await asyncio.wait_for(listed.wait(), 60)
                await asyncio.sleep(3.0)  # warm-up: snapshots out of the way
                ws_lat.clear()
                mqtt_lat.clear()
                start = {n: (r.up, r.down) for n, r in relays.items()}
                t0 = time.monotonic()
                await asyncio.sleep(args.seconds)
                measured = time.monotonic() - t0
                counts = {n: (r.up - start[n][0], r.down - start[n][1]) for n, r in relays.items()}
                stop.set()
                await asyncio.sleep(0.6)
                for t in tasks:
                    t.cancel()
                for t in tasks:
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await t
        finally:
            for d in daemons:
                d.stop()
            for s in socks:
                s.close()
            for r in relays.values():
                await r.stop()
            farm.stop()
            broker.stop()
    if not ws_lat or not mqtt_lat:
        print("no frames measured", file=sys.stderr)
        return 1
    hours = measured / 3600 * args.printers
    print(
        f"{args.printers} printers x {args.hz:g} Hz for {measured:.0f} s; remote ws frames matched: {len(ws_lat)}"
    )
    print(
        f"plain MQTT subscriber (baseline)     p50 {pct(mqtt_lat, 0.5):7.2f} ms   p99 {pct(mqtt_lat, 0.99):7.2f} ms"
    )
    print(
        f"report -> remote unit's ws frame     p50 {pct(ws_lat, 0.5):7.2f} ms   p99 {pct(ws_lat, 0.99):7.2f} ms"
    )
    up, down = counts["garage"]
    print(f"farm broker bytes per printer-hour: owner uploads {up / hours / 1e6:.2f} MB "
          f"(receives {down / hours / 1e6:.2f} MB: its own messages echoed back)")  # fmt: skip
    print(
        f"                                    a receiving unit downloads {counts['attic'][1] / hours / 1e6:.2f} MB"
    )
    return 0


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--printers", type=int, default=10)
    ap.add_argument("--hz", type=float, default=1)
    raise SystemExit(asyncio.run(main(ap.parse_args())))
