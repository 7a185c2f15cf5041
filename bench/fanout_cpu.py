"""Fan-out CPU per report per client, against a plain mosquitto relaying the same reports, side by
side in one window (issue 13).

Running at the same time, on loopback:
  * the printer side: a local mosquitto (TLS) with two virtual X1C printers reporting R times a
    second (full reports, ~10 KB each, as an X1 sends them);
  * ``fanout``: the daemon (child process) with ``fanout:`` on, N TLS clients on its endpoint
    subscribed to the printer's reports; it runs its own mosquitto (child of the daemon);
  * ``base``: the same daemon config without fan-out, on the other virtual printer: what the
    daemon spends on a report anyway;
  * ``plain``: a plain mosquitto (TLS, password file), N TLS clients, fed with the same report bytes
    at the same rate by a publisher on loopback (what a printer-side broker costs per client).
CPU is read from /proc/PID/task/*/schedstat (all threads) over the window, and every client counts
what it received, so the per-report figures are divided by what was really delivered.

    python bench/fanout_cpu.py [--clients 10] [--rate 5] [--seconds 30]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import aiomqtt

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from _proc import cpu_seconds  # noqa: E402  (bench/, the script's folder)

from bambu_edge.certs import DASHBOARD_CERT  # noqa: E402
from bambu_edge.demo.broker import LocalBroker, free_port  # noqa: E402
from bambu_edge.printers.virtual import VirtualPrinter  # noqa: E402
from tests.integration.daemon_proc import DaemonProcess, NotifySocket, printer_entry, write_config  # noqa: E402
from tests.integration.waiting import dashboard_tls  # noqa: E402

CODE = "12345678"
USER, PASSWORD = "bench", "bench-password-long"
SERIALS = {"fanout": "00M00A000000101", "base": "00M00A000000102"}


def children(pid: int) -> list[int]:
    out = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            out += [int(c) for c in (task / "children").read_text().split()]
    return out


def mosquitto_children(pid: int) -> list[int]:
    return [c for c in children(pid) if "mosquitto" in Path(f"/proc/{c}/cmdline").read_text()]


def note(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


async def start_daemon(tmp: Path, name: str, broker: LocalBroker, extra: dict) -> DaemonProcess:
    cfg = tmp / f"{name}.yaml"
    write_config(cfg, tmp / f"{name}-data", [printer_entry(broker, SERIALS[name], CODE, name)], extra=extra)
    cli = [sys.executable, "-m", "bambu_edge", "--config", str(cfg), "user", "add", USER]
    subprocess.run(cli, input=PASSWORD + "\n", text=True, check=True, capture_output=True, timeout=60)
    sock = NotifySocket(tmp / f"{name}.sock").follow()
    d = DaemonProcess(cfg, env={"NOTIFY_SOCKET": str(sock.path)}, log_path=tmp / f"{name}.log")
    await asyncio.to_thread(sock.wait_for, "READY=1", 60)
    return d


async def fanout_code(d: DaemonProcess) -> tuple[int, str]:
    base = f"https://127.0.0.1:{d.https_port}"
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=dashboard_tls())) as http:
        async with http.post(base + "/api/auth/login", json={"username": USER, "password": PASSWORD}) as r:
            token = (await r.json())["token"]
        async with http.get(base + "/api/fanout", headers={"Authorization": f"Bearer {token}"}) as r:
            body = await r.json()
    return body["port"], body["printers"][0]["access_code"]


class Counter:
    def __init__(self) -> None:
        self.n = 0


async def subscriber(
    host: str,
    port: int,
    user: str,
    password: str,
    tls: ssl.SSLContext,
    topic: str,
    counter: Counter,
    ready: asyncio.Event,
) -> None:
    async with aiomqtt.Client(host, port, username=user, password=password, tls_context=tls) as c:
        await c.subscribe(topic)
        ready.set()
        async for _ in c.messages:
            counter.n += 1


async def run(args: argparse.Namespace) -> int:
    tmp = Path(tempfile.mkdtemp(prefix="bench-fanout-"))
    printers = LocalBroker(tmp / "printers", {"bblp": CODE}, server_cn="printers")
    plain = LocalBroker(tmp / "plain", {"bblp": CODE, "feeder": "feeder-password"}, server_cn="127.0.0.1")
    printers.start()
    plain.start()
    vps = {
        name: VirtualPrinter(
            printers.host, printers.port, serial, CODE, "X1C", str(printers.ca_path), report_hz=args.rate
        )
        for name, serial in SERIALS.items()
    }
    daemons: dict[str, DaemonProcess] = {}
    tasks: list[asyncio.Task] = []
    try:
        for vp in vps.values():
            await vp.start()
        daemons["fanout"] = await start_daemon(
            tmp, "fanout", printers, {"fanout": {"port": free_port(), "bind": "127.0.0.1"}}
        )
        daemons["base"] = await start_daemon(tmp, "base", printers, {})
        port, code = await fanout_code(daemons["fanout"])
        fanout_mosq = mosquitto_children(daemons["fanout"].proc.pid)
        assert len(fanout_mosq) == 1, fanout_mosq
        unit_tls = ssl.create_default_context(cafile=str(tmp / "fanout-data" / "tls" / DASHBOARD_CERT))
        plain_tls = ssl.create_default_context(cafile=str(plain.ca_path))
        plain_tls.check_hostname = False
        topic = f"device/{SERIALS['fanout']}/report"
        counts = {
            "fanout": [Counter() for _ in range(args.clients)],
            "plain": [Counter() for _ in range(args.clients)],
        }
        for kind, host, p, user, pw, tls in (
            ("fanout", "127.0.0.1", port, "bblp", code, unit_tls),
            ("plain", "127.0.0.1", plain.port, "bblp", CODE, plain_tls),
        ):
            for counter in counts[kind]:
                ready = asyncio.Event()
                tasks.append(asyncio.create_task(subscriber(host, p, user, pw, tls, topic, counter, ready)))
                await asyncio.wait_for(ready.wait(), 20)
        # The plain broker gets the very reports the printer sends, as they come.
        fed = Counter()

        async def feed() -> None:
            printer_tls = ssl.create_default_context(cafile=str(printers.ca_path))
            printer_tls.check_hostname = False
            async with (
                aiomqtt.Client(
                    printers.host, printers.port, username="bblp", password=CODE, tls_context=printer_tls
                ) as src,
                aiomqtt.Client(
                    "127.0.0.1",
                    plain.port,
                    username="feeder",
                    password="feeder-password",
                    tls_context=plain_tls,
                ) as dst,
            ):
                await src.subscribe(topic)
                async for m in src.messages:
                    await dst.publish(topic, m.payload)
                    fed.n += 1

        tasks.append(asyncio.create_task(feed()))
        note(f"warming up {args.warmup:g} s: {args.clients} clients each side, {args.rate:g} reports/s")
        await asyncio.sleep(args.warmup)
        pids = {
            "fanout daemon": daemons["fanout"].proc.pid,
            "fanout mosquitto": fanout_mosq[0],
            "base daemon": daemons["base"].proc.pid,
            "plain mosquitto": plain.pid,
        }
        cpu0 = {k: cpu_seconds(p) for k, p in pids.items()}
        got0 = {k: sum(c.n for c in v) for k, v in counts.items()}
        fed0 = fed.n
        t0 = time.monotonic()
        await asyncio.sleep(args.seconds)
        elapsed = time.monotonic() - t0
        cpu = {k: cpu_seconds(p) - cpu0[k] for k, p in pids.items()}
        got = {k: sum(c.n for c in v) - got0[k] for k, v in counts.items()}
        reports = fed.n - fed0
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for d in daemons.values():
            d.stop()
        for vp in vps.values():
            await vp.stop()
        printers.stop()
        plain.stop()
    print(f"\nfan-out CPU ({args.clients} clients, {reports} reports in {elapsed:.0f} s, X1C full reports)")
    print(f"  delivered: fan-out {got['fanout']} / plain {got['plain']} (expected {reports * args.clients})")
    fan_extra = cpu["fanout daemon"] - cpu["base daemon"]
    fan_total = fan_extra + cpu["fanout mosquitto"]
    per = 1e6 / max(got["fanout"], 1)
    per_plain = 1e6 / max(got["plain"], 1)
    print(f"  {'':34} {'CPU s':>8} {'µs/report/client':>18}")
    print(f"  {'fan-out: daemon, above base':34} {fan_extra:8.3f} {fan_extra * per:18.1f}")
    print(
        f"  {'fan-out: its mosquitto':34} {cpu['fanout mosquitto']:8.3f} {cpu['fanout mosquitto'] * per:18.1f}"
    )
    print(f"  {'fan-out: total':34} {fan_total:8.3f} {fan_total * per:18.1f}")
    print(
        f"  {'plain mosquitto relaying':34} {cpu['plain mosquitto']:8.3f} {cpu['plain mosquitto'] * per_plain:18.1f}"
    )
    print(
        f"  (base daemon, the same printer without fan-out: {cpu['base daemon']:.3f} s;"
        f" daemon share of fan-out per report: {fan_extra * 1e6 / max(reports, 1):.0f} µs)"
    )
    return 0 if got["fanout"] >= 0.95 * reports * args.clients else 1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clients", type=int, default=10)
    ap.add_argument("--rate", type=float, default=5.0, help="reports a second from the printer")
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--warmup", type=float, default=5.0)
    args = ap.parse_args()
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
