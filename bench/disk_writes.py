"""Bytes written to disk per printer-hour of printing (target <= 5 MB), by the real daemon.

Two daemons run side by side, each a child process with its own data folder and N virtual printers
(P1S-style deltas and X1C-style full reports, 1 report/s) on one local mosquitto:
  * baseline: its printers stay idle;
  * printing: its printers print back to back, each print ``--print-s`` long (default 10 minutes,
    real time: the daemon's own clock decides when it writes progress, every 5 minutes).
Over the same window, after a warm-up (connect, certificate pinning, first reports), the bench
reads each daemon's ``/proc/<pid>/io``: ``write_bytes`` (bytes the kernel accounted to the block
device for it; works on this ext4) and ``wchar`` (bytes it passed to write(), page cache included,
an upper bound). It checkpoints each database's WAL into the main file before the window (so the
start-up writes are not counted) and after it (what SQLite would do later anyway), and counts the
bytes of the second checkpoint too, from its own ``/proc/self/io``.

Extrapolation: bytes per printer-hour = bytes in the window / (printers x window) x 3600. With
10-minute prints that counts an open, a "running" and a close write every 10 minutes; real prints
of hours have far fewer per hour, so the figure is an upper bound. The log (stdout here, the journal
on a Pi) is included in both daemons' figures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bambu_edge.demo.broker import LocalBroker  # noqa: E402
from bambu_edge.printers.virtual import VirtualPrinter, make_serial  # noqa: E402
from tests.integration.daemon_proc import DaemonProcess, NotifySocket, printer_entry, write_config  # noqa: E402

ACCESS_CODE = "12345678"
TARGET_MB = 5.0
MODELS = ("P1S", "X1C")


def note(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def proc_io(pid: int | str) -> dict[str, int]:
    out = {}
    with open(f"/proc/{pid}/io") as f:
        for line in f:
            key, _, value = line.partition(":")
            out[key.strip()] = int(value)
    return out


class Side:
    def __init__(self, name: str, root: Path, broker: LocalBroker, printers: int):
        self.name = name
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.cfg = root / "config.yaml"
        self.data = root / "data"
        self.vps = []
        entries = []
        for i in range(printers):
            model = MODELS[i % len(MODELS)]
            serial = make_serial(model)
            pid = f"{name}-{i}"
            entries.append(printer_entry(broker, serial, ACCESS_CODE, pid))
            self.vps.append(
                VirtualPrinter(broker.host, broker.port, serial, ACCESS_CODE, model, str(broker.ca_path))
            )
        write_config(self.cfg, self.data, entries)
        self.sock = NotifySocket(root / "notify.sock").follow()
        self.daemon: DaemonProcess | None = None
        self.prints = 0

    async def start(self) -> None:
        for vp in self.vps:
            await vp.start()
        self.daemon = DaemonProcess(self.cfg, env={"NOTIFY_SOCKET": str(self.sock.path)})
        await asyncio.to_thread(self.sock.wait_for, "READY=1", 60)

    def io(self) -> dict[str, int]:
        assert self.daemon is not None
        return proc_io(self.daemon.proc.pid)

    async def print_loop(self, vp: VirtualPrinter, print_s: float, until: float) -> None:
        n = 0
        while time.monotonic() + 5 < until:
            n += 1
            job = await vp.simulate_print(f"bench print {n}", print_s, 200)
            while job.state in ("PREPARE", "RUNNING", "PAUSE") and time.monotonic() < until:  # noqa: ASYNC110
                await asyncio.sleep(0.5)  # the simulation has no public "ended" event to wait on
            if job.state == "FINISH":
                self.prints += 1
            await asyncio.sleep(2.0)  # the user takes the part off the bed

    def checkpoint_bytes(self) -> int:
        """Fold the WAL into the database file, as SQLite will; the bytes that takes."""
        before = proc_io("self")["write_bytes"]
        conn = sqlite3.connect(self.data / "bambu-edge.db")
        try:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            conn.close()
        return proc_io("self")["write_bytes"] - before

    async def stop(self) -> None:
        if self.daemon is not None:
            await asyncio.to_thread(self.daemon.stop)
        self.sock.close()
        await asyncio.gather(*(vp.stop() for vp in self.vps), return_exceptions=True)


async def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--printers", type=int, default=4)
    ap.add_argument("--window-s", type=float, default=720.0, help="measured window (default 12 min)")
    ap.add_argument("--print-s", type=float, default=600.0, help="length of one print (default 10 min)")
    ap.add_argument("--warmup-s", type=float, default=20.0)
    args = ap.parse_args()
    (REPO / "var").mkdir(exist_ok=True)
    # On a real disk (not tmpfs), like a data_dir; var/ is git-ignored.
    with tempfile.TemporaryDirectory(dir=REPO / "var", prefix="bench-disk-") as tmp:
        root = Path(tmp)
        broker = LocalBroker(root / "broker", {"bblp": ACCESS_CODE}, server_cn="01P00A000000001")
        broker.start()
        idle = Side("idle", root / "idle", broker, args.printers)
        busy = Side("busy", root / "busy", broker, args.printers)
        try:
            await idle.start()
            await busy.start()
            note(f"both daemons ready; warming up for {args.warmup_s:g} s")
            await asyncio.sleep(args.warmup_s)
            for side in (idle, busy):  # start from an empty WAL: start-up writes are not counted
                side.checkpoint_bytes()
            start = {s.name: s.io() for s in (idle, busy)}
            t0 = time.monotonic()
            until = t0 + args.window_s
            loops = [asyncio.create_task(busy.print_loop(vp, args.print_s, until)) for vp in busy.vps]
            note(f"measuring for {args.window_s:g} s")
            await asyncio.sleep(max(until - time.monotonic(), 0))
            end = {s.name: s.io() for s in (idle, busy)}
            window = time.monotonic() - t0
            for task in loops:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            ckpt = {s.name: s.checkpoint_bytes() for s in (idle, busy)}
            history = sqlite3.connect(busy.data / "bambu-edge.db")
            records = history.execute("SELECT outcome, count(*) FROM print_history GROUP BY 1").fetchall()
            history.close()
            ok = report(args, window, records, busy.prints, start, end, ckpt)  # before the teardown
        finally:
            await busy.stop()
            await idle.stop()
            broker.stop()
    return 0 if ok else 1


def report(
    args: argparse.Namespace, window: float, records: list, prints: int, start: dict, end: dict, ckpt: dict
) -> bool:
    hours = window / 3600 * args.printers
    print(
        f"{args.printers} printers per daemon, window {window:.0f} s, prints of {args.print_s:.0f} s; "
        f"history records of the printing daemon: {dict(records)}; prints finished in the window: {prints}"
    )
    print(
        f"\n{'daemon':10} {'write_bytes':>12} {'wchar':>12} {'WAL checkpoint':>15}  per printer-hour (write_bytes+ckpt)"
    )
    per_hour = {}
    for s in ("idle", "busy"):
        wb = end[s]["write_bytes"] - start[s]["write_bytes"]
        wc = end[s]["wchar"] - start[s]["wchar"]
        per_hour[s] = (wb + ckpt[s]) / hours
        print(f"{s:10} {wb:12,d} {wc:12,d} {ckpt[s]:15,d}  {per_hour[s] / 1e6:8.3f} MB")
        per_hour[s + "_wchar"] = (wc + ckpt[s]) / hours
    printing = per_hour["busy"]
    extra = per_hour["busy"] - per_hour["idle"]
    print(
        f"\nprinting: {printing / 1e6:.3f} MB per printer-hour (wchar bound {per_hour['busy_wchar'] / 1e6:.3f} MB); "
        f"idle baseline {per_hour['idle'] / 1e6:.3f} MB; printing adds {extra / 1e6:.3f} MB; "
        f"ratio printing/idle {printing / per_hour['idle'] if per_hour['idle'] else float('inf'):.1f}"
    )
    ok = printing / 1e6 <= TARGET_MB
    print(f"target <= {TARGET_MB:g} MB per printer-hour: {'ok' if ok else 'MISSED'}")
    return ok


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
