"""Cold start to READY=1 (sd_notify), as systemd sees it, with 3 printers on a local broker.

Baseline, run side by side: a bare interpreter start (`python -c pass`), and importing the daemon's
modules without starting anything. Prints medians of several runs and ratios.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bambu_edge.demo.broker import LocalBroker  # noqa: E402
from tests.integration.daemon_proc import DaemonProcess, NotifySocket, printer_entry, write_config  # noqa: E402

RUNS = 5


def _time_cmd(args: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(args, check=True)
    return time.perf_counter() - t0


def main() -> None:
    bare = statistics.median(_time_cmd([sys.executable, "-c", "pass"]) for _ in range(RUNS))
    imports = statistics.median(
        _time_cmd([sys.executable, "-c", "import bambu_edge.app"]) for _ in range(RUNS)
    )
    ready: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        broker = LocalBroker(tmp_path / "broker", {"bblp": "12345678"}, server_cn="01S00C000000001")
        broker.start()
        try:
            for i in range(RUNS):
                run_dir = tmp_path / f"run{i}"
                run_dir.mkdir()
                printers = [
                    printer_entry(broker, f"01S00C00000000{n}", "12345678", pid=f"p{n}") for n in range(3)
                ]
                cfg = run_dir / "config.yaml"
                # A fresh data dir each run: includes database creation, migrations and TLS cert generation.
                write_config(cfg, run_dir / "data", printers)
                sock = NotifySocket(run_dir / "notify.sock")
                t0 = time.perf_counter()
                d = DaemonProcess(cfg, env={"NOTIFY_SOCKET": str(sock.path)})
                try:
                    sock.wait_for("READY=1", timeout=30)
                    ready.append(time.perf_counter() - t0)
                finally:
                    d.stop()
                    sock.close()
        finally:
            broker.stop()
    med = statistics.median(ready)
    print(f"bare python start        {bare * 1000:8.1f} ms")
    print(f"import bambu_edge.app    {imports * 1000:8.1f} ms  ({imports / bare:.1f}x bare)")
    print(
        f"cold start to READY=1    {med * 1000:8.1f} ms  ({med / bare:.1f}x bare, {med / imports:.2f}x imports)"
    )
    print(f"  runs: {', '.join(f'{r * 1000:.0f}' for r in ready)} ms (fresh data dir each run)")


if __name__ == "__main__":
    main()
