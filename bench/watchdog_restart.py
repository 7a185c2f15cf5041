"""Time from a stuck event loop to systemd's watchdog restart.

systemd is not PID 1 on a build machine, so its part is played here, to the letter of the unit: a
NOTIFY_SOCKET receives the pings; the watchdog "fires" WatchdogSec after the last ping; then the
daemon gets SIGABRT (systemd's WatchdogSignal=), and after RestartSec a new daemon starts on the
same data directory. Measured: stuck -> fire (the ping gap), SIGABRT -> exited, start -> READY=1.
The loop is stalled by tests/integration/stalling_daemon.py (SIGUSR2 blocks it).

Samples at WatchdogSec=2 s (to have several), then one at the unit's own WatchdogSec (--quick skips
it); three printers on a local broker.
"""

from __future__ import annotations

import configparser
import itertools
import random
import signal
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bambu_edge.demo.broker import LocalBroker  # noqa: E402
from tests.integration.daemon_proc import DaemonProcess, NotifySocket, printer_entry, write_config  # noqa: E402

SAMPLES = 5
SCALED_WATCHDOG_S = 2.0


def unit_settings() -> tuple[float, float]:
    """WatchdogSec= and RestartSec= of systemd/bambu-edge.service, in seconds."""
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(REPO / "systemd/bambu-edge.service")
    service = parser["Service"]
    return float(service["WatchdogSec"]), float(service["RestartSec"])


@dataclass
class Sample:
    watchdog_s: float
    stuck_to_fire: float  # stall -> last ping + WatchdogSec
    ping_jitter: float  # worst lateness of a healthy ping against WatchdogSec/2
    abort_to_exit: float
    start_to_ready: float


def _pings(sock: NotifySocket, until: float) -> list[float]:
    got = []
    sock.sock.settimeout(0.02)
    while time.monotonic() < until:
        try:
            data = sock.sock.recv(4096).decode()
        except TimeoutError:
            continue
        if "WATCHDOG=1" in data.splitlines():
            got.append(time.monotonic())
    return got


def sample(run_dir: Path, cfg: Path, watchdog_s: float) -> Sample:
    interval = watchdog_s / 2
    sock = NotifySocket(run_dir / "notify.sock")
    env = {
        "NOTIFY_SOCKET": str(sock.path),
        "WATCHDOG_USEC": str(int(watchdog_s * 1e6)),
        "STALL_SECONDS": str(watchdog_s * 3),
        "PYTHONPATH": str(REPO),
    }
    d = DaemonProcess(cfg, env=env, module="tests.integration.stalling_daemon")
    try:
        sock.wait_for("READY=1", timeout=60)
        # Healthy for a few pings, then stuck at a random moment between two of them.
        healthy = _pings(sock, time.monotonic() + 3 * interval + random.uniform(0, interval))
        stuck_at = time.monotonic()
        d.signal(signal.SIGUSR2)
        later = _pings(sock, stuck_at + watchdog_s + 0.5)
        last = max(t for t in healthy + later if t <= stuck_at + 0.05)  # one may be in flight
        fire = last + watchdog_s
        if any(stuck_at + 0.05 < t <= fire for t in later):
            raise AssertionError("a stuck loop fed the watchdog")
        time.sleep(max(0.0, fire - time.monotonic()))
        aborted = time.monotonic()
        d.signal(signal.SIGABRT)
        d.wait(timeout=30)
        exited = time.monotonic()
    finally:
        d.stop()
        sock.close()
    gaps = [b - a for a, b in itertools.pairwise(healthy)]
    # The restart: same config, same data directory (certificate and database exist already).
    sock = NotifySocket(run_dir / "notify2.sock")
    started = time.monotonic()
    d = DaemonProcess(cfg, env={"NOTIFY_SOCKET": str(sock.path)})
    try:
        sock.wait_for("READY=1", timeout=60)
        ready = time.monotonic()
    finally:
        d.stop()
        sock.close()
    for p in run_dir.glob("notify*.sock"):
        p.unlink()
    return Sample(
        watchdog_s,
        stuck_to_fire=fire - stuck_at,
        ping_jitter=max((g - interval for g in gaps), default=0.0),
        abort_to_exit=exited - aborted,
        start_to_ready=ready - started,
    )


def main() -> None:
    unit_watchdog, restart_s = unit_settings()
    quick = "--quick" in sys.argv[1:]
    samples: list[Sample] = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        broker = LocalBroker(tmp_path / "broker", {"bblp": "12345678"}, server_cn="01S00C000000001")
        broker.start()
        try:
            printers = [
                printer_entry(broker, f"01S00C00000000{n}", "12345678", pid=f"p{n}") for n in range(3)
            ]
            cfg = tmp_path / "config.yaml"
            write_config(cfg, tmp_path / "data", printers)
            for _ in range(SAMPLES):
                samples.append(sample(tmp_path, cfg, SCALED_WATCHDOG_S))
            if not quick:
                samples.append(sample(tmp_path, cfg, unit_watchdog))
        finally:
            broker.stop()

    print("systemd is not PID 1 here: the watchdog's firing is last ping + WatchdogSec, measured on")
    print("the NOTIFY_SOCKET; SIGABRT and the restart are done by this script as systemd would.\n")
    print(
        f"{'WatchdogSec':>11} {'stuck->fire':>12} {'ping jitter':>12} {'SIGABRT->exit':>14} {'start->READY':>13}"
    )
    for s in samples:
        print(
            f"{s.watchdog_s:>10g}s {s.stuck_to_fire:>11.3f}s {s.ping_jitter * 1000:>10.1f}ms "
            f"{s.abort_to_exit * 1000:>12.1f}ms {s.start_to_ready * 1000:>11.1f}ms"
        )
    scaled = [s for s in samples if s.watchdog_s == SCALED_WATCHDOG_S]
    exit_s = statistics.median(s.abort_to_exit for s in samples)
    ready_s = statistics.median(s.start_to_ready for s in samples)
    # The stall lands anywhere between two pings: the watchdog fires between WatchdogSec/2 and
    # WatchdogSec after it (checked above on the samples), plus ping jitter.
    frac = [s.stuck_to_fire / s.watchdog_s for s in scaled]
    print(
        f"\nstuck->fire / WatchdogSec over {len(scaled)} samples: {min(frac):.2f}..{max(frac):.2f} (expected 0.5..1.0)"
    )
    lo, hi = unit_watchdog / 2, unit_watchdog
    print(
        f"with the unit (WatchdogSec={unit_watchdog:g}, RestartSec={restart_s:g}): stuck -> watchdog fires in "
        f"{lo:g}-{hi:g} s; -> serving again in {lo + exit_s + restart_s + ready_s:.1f}-"
        f"{hi + exit_s + restart_s + ready_s:.1f} s (exit {exit_s * 1000:.0f} ms + RestartSec + "
        f"start {ready_s * 1000:.0f} ms)"
    )


if __name__ == "__main__":
    main()
