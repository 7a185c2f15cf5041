"""Daemon CPU at idle with 3 printers connected: every component on, against the same daemon with the
appliance components off, side by side in one run (issue 11: target < 1 % of a core).

Two daemons run at the same time, each a child process with its own data folder and its own three
idle virtual printers (1 report a second each, as a printer that is on but not printing) on one
local mosquitto:
  * ``all on``: the default config plus a status LED and button (gpiozero's mock pins:
    GPIOZERO_PIN_FACTORY=mock), SSDP and mDNS discovery, cameras ``auto`` (idle: no viewer),
    USB (where udev runs);
  * ``base``: the same printers with ``camera: off``, no panel, discovery off.
After a warm-up, each daemon's CPU time (all threads, /proc/PID/task/*/schedstat) is read over the
same window. Discovery must not reach the LAN: run as root, the bench puts itself into a network
namespace of its own (loopback only, multicast on), so SSDP and mDNS stay on this machine.

    python bench/idle_cpu.py [--minutes 10] [--warmup 30]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from _proc import cpu_seconds  # noqa: E402  (bench/, the script's folder)

from bambu_edge.demo.broker import LocalBroker  # noqa: E402
from bambu_edge.printers.virtual import VirtualPrinter, make_serial  # noqa: E402
from tests.integration.daemon_proc import DaemonProcess, NotifySocket, printer_entry, write_config  # noqa: E402

CODE = "12345678"
MODELS = ("X1C", "P1S", "A1")
TARGET_PCT = 1.0
NETNS_ENV = "BAMBU_EDGE_BENCH_IN_NETNS"


def note(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


async def run(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        broker = LocalBroker(root / "broker", {"bblp": CODE}, server_cn="bench-broker")
        broker.start()
        vps: list[VirtualPrinter] = []
        daemons: dict[str, DaemonProcess] = {}
        sockets: list[NotifySocket] = []
        try:
            for name in ("all on", "base"):
                entries = []
                for i, model in enumerate(MODELS):
                    serial = make_serial(model)
                    entry = printer_entry(broker, serial, CODE, pid=f"p{i}")
                    if name == "base":
                        entry["camera"] = "off"
                    entries.append(entry)
                    vps.append(
                        VirtualPrinter(broker.host, broker.port, serial, CODE, model, str(broker.ca_path))
                    )
                extra: dict = {}
                env = {}
                if name == "all on":
                    extra = {
                        "panel": {"button_gpio": 3, "led_gpio": {"red": 17, "green": 27, "blue": 22}},
                        "discovery": {"ssdp": True, "ssdp_ports": [2021, 1990], "mdns": True},
                    }
                    env["GPIOZERO_PIN_FACTORY"] = "mock"
                cfg = root / name.replace(" ", "-") / "config.yaml"
                cfg.parent.mkdir()
                write_config(cfg, cfg.parent / "data", entries, extra=extra)
                sock = NotifySocket(cfg.parent / "notify.sock").follow()
                sockets.append(sock)
                env["NOTIFY_SOCKET"] = str(sock.path)
                daemons[name] = DaemonProcess(cfg, env=env)
            for vp in vps:
                await vp.start()
            for sock in sockets:
                await asyncio.to_thread(sock.wait_for, "READY=1", 60)
            note(f"both daemons ready; warming up {args.warmup:g} s")
            await asyncio.sleep(args.warmup)
            start = {name: cpu_seconds(d.proc.pid) for name, d in daemons.items()}
            t0 = time.monotonic()
            note(f"measuring {args.minutes:g} min")
            await asyncio.sleep(args.minutes * 60)
            window = time.monotonic() - t0
            used = {name: cpu_seconds(d.proc.pid) - start[name] for name, d in daemons.items()}
            health = {}
            for name, d in daemons.items():
                for line in d.output.splitlines():
                    if "failed to start" in line:
                        health.setdefault(name, []).append(line.split("component ", 1)[-1][:100])
        finally:
            for d in daemons.values():
                d.stop()
            for vp in vps:
                await vp.stop()
            for sock in sockets:
                sock.close()
            broker.stop()
    print(f"idle CPU over {window / 60:.1f} min, 3 connected idle printers each (1 report/s per printer):")
    for name in ("all on", "base"):
        pct = used[name] / window * 100
        print(f"  {name:7} {pct:6.3f} % of a core ({used[name]:.2f} s CPU)")
        for line in health.get(name, []):
            print(f"          not running: {line}")
    ratio = used["all on"] / max(used["base"], 1e-9)
    print(f"ratio all on / base  {ratio:5.2f}x")
    pct = used["all on"] / window * 100
    ok = pct < TARGET_PCT
    print(f"target < {TARGET_PCT:g} % of a core with every component on: {'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


def in_own_netns() -> None:
    """Re-run this script in a fresh network namespace (root only), with loopback up and multicast on."""
    if os.environ.get(NETNS_ENV):
        return
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        raise SystemExit(
            "run as root (with util-linux's unshare): the bench keeps discovery off the LAN by running "
            "in a network namespace of its own"
        )
    inner = 'ip link set lo up && ip link set lo multicast on && exec "$0" "$@"'
    env = dict(os.environ, **{NETNS_ENV: "1"})
    cmd = ["unshare", "--net", "sh", "-c", inner, sys.executable, *sys.argv]
    raise SystemExit(subprocess.call(cmd, env=env))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=10.0, help="measuring window (default 10)")
    ap.add_argument("--warmup", type=float, default=30.0, help="seconds before measuring (default 30)")
    args = ap.parse_args()
    in_own_netns()
    return asyncio.run(run(args))


if __name__ == "__main__":
    raise SystemExit(main())
