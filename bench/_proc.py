"""CPU time of a process or a thread, from /proc schedstat: nanoseconds, where the clock ticks of
/proc/PID/stat (10 ms) are too coarse for what a bench here measures (a subscriber at a hundredth of
a core, ffmpeg's copy a few hundredths of a second a run)."""

from __future__ import annotations

from pathlib import Path


def cpu_seconds(pid: int | str) -> float:
    """All threads of process ``pid``, or one thread when given as ``"PID/task/TID"``. A thread
    that ends meanwhile counts as nothing."""
    path = Path(f"/proc/{pid}")
    tasks = [path] if "/task/" in str(pid) else list((path / "task").iterdir())
    total = 0
    for task in tasks:
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            pass
    return total / 1e9
