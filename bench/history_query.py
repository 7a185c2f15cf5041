"""History queries over 100,000 records: a filtered, sorted page (target <= 50 ms), the count, the
totals and the full CSV export, through the real repository (aiosqlite, as the API runs them).

Baselines, measured side by side on the same database file: bare stdlib sqlite3 statements
(`SELECT * ... LIMIT 50`, `count(*)`, a full-scan `sum()`, and `SELECT *` written with csv.writer).
Prints medians and ratios. The records are generated: 20 printers over three years, realistic
outcome mix, job names, 1-4 filament slots each.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bambu_edge.jobs.history import _UPSERT, HistoryFilter, HistoryRepository, record_params  # noqa: E402
from bambu_edge.jobs.records import FilamentSlot, JobKey, PrintRecord  # noqa: E402
from bambu_edge.store.db import Database  # noqa: E402

RECORDS = 100_000
RUNS = 15
TARGET_PAGE_MS = 50.0
T_END = 1_764_000_000.0
JOBS = ["3DBenchy", "Cable clip x8", "Gridfinity bin 2x3", "Phone stand", "Planter self-watering",
        "Calibration cube", "Vase mode spiral", "Headphone hook", "Lithophane", "Drawer handle"]  # fmt: skip
TYPES = [
    ("PLA", "#FFFFFFFF"),
    ("PLA", "#000000FF"),
    ("PETG", "#FF6A13FF"),
    ("ABS", "#489FDFFF"),
    ("TPU", "#D32941FF"),
]
OUTCOMES = ["success"] * 80 + ["failed"] * 8 + ["cancelled"] * 8 + ["unknown"] * 4


def generate(path: Path, n: int) -> None:
    rng = random.Random(42)
    conn = sqlite3.connect(path)
    rows = []
    t = T_END - 3 * 365 * 86400
    step = 3 * 365 * 86400 / n
    for _ in range(n):
        t += step * rng.uniform(0.5, 1.5)
        duration = rng.uniform(600, 6 * 3600)
        job = rng.choice(JOBS) + (f" v{rng.randrange(20)}" if rng.random() < 0.5 else "")
        slots = tuple(
            FilamentSlot(s, *rng.choice(TYPES), round(rng.uniform(1, 120), 2), round(rng.uniform(0.3, 40), 3))
            for s in rng.sample(range(8), rng.randint(1, 4))
        )
        pid = f"p{rng.randrange(20):02d}"
        rec = PrintRecord(
            uid=f"{rng.getrandbits(128):032x}",
            printer_id=pid,
            printer_name=f"Printer {pid[1:]}",
            model=rng.choice(["X1C", "P1S", "A1", "H2D"]),
            file=job.lower().replace(" ", "_") + ".3mf",
            job=job,
            plate=rng.randint(1, 4),
            started_at=t,
            ended_at=t + duration,
            duration_s=round(duration, 3),
            outcome=rng.choice(OUTCOMES),
            layers=rng.randint(10, 500),
            total_layers=500,
            progress=100,
            filament=slots,
            key=JobKey(job=job, file="/data/Metadata/plate_1.gcode"),
            last_seen_at=t + duration,
        )
        rows.append(record_params(rec, t + duration))
    with conn:
        conn.executemany(_UPSERT, rows)
        # What HistoryRepository.save writes when a record closes, in one statement here.
        conn.execute(
            "INSERT INTO print_history_filament (history_id, position, slot, type, color, grams, meters)"
            " SELECT h.id, f.key, f.value ->> 'slot', f.value ->> 'type', f.value ->> 'color',"
            " f.value ->> 'grams', f.value ->> 'meters' FROM print_history h, json_each(h.filament_json) f"
        )
    conn.execute("ANALYZE")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


def timed_sync(fn: Callable[[], object], runs: int = RUNS) -> float:
    fn()
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples) * 1000


async def timed(fn: Callable[[], Awaitable[object]], runs: int = RUNS) -> float:
    await fn()
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        await fn()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples) * 1000


async def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=RECORDS)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bambu-edge.db"
        db = await Database.open(path)
        await db.migrate()
        await db.close()
        t0 = time.perf_counter()
        generate(path, args.records)
        print(f"generated {args.records:,} records in {time.perf_counter() - t0:.1f} s "
              f"({path.stat().st_size / 1e6:.1f} MB)")  # fmt: skip

        bare = sqlite3.connect(path)
        base_page = timed_sync(lambda: bare.execute("SELECT * FROM print_history LIMIT 50").fetchall())
        base_count = timed_sync(lambda: bare.execute("SELECT count(*) FROM print_history").fetchone())
        base_scan = timed_sync(
            lambda: bare.execute("SELECT sum(duration_s) FROM print_history").fetchone(), 5
        )

        def bare_csv() -> int:
            buf = io.StringIO()
            csv.writer(buf).writerows(bare.execute("SELECT * FROM print_history"))
            return len(buf.getvalue())

        base_csv = timed_sync(bare_csv, 3)

        db = await Database.open(path)
        repo = HistoryRepository(db)
        since = T_END - 365 * 86400
        filtered = HistoryFilter(printers=("p03",), outcomes=("success", "failed"), since=since)
        rows = []

        async def page(f: HistoryFilter, sort: str, offset: int = 0) -> None:
            items, total = await repo.page(f, sort, 50, offset)
            assert items and total

        cases = [
            ("page: all, newest first", HistoryFilter(), "-started_at", 0),
            ("page: printer+outcomes+date, newest first", filtered, "-started_at", 0),
            ("page: printer+outcomes+date, by job", filtered, "job", 0),
            ("page: printer+outcomes+date, longest first", filtered, "-duration_s", 0),
            ("page: all, by printer", HistoryFilter(), "printer", 0),
            ("page: text search 'benchy v1', newest first", HistoryFilter(q="benchy v1"), "-started_at", 0),
            ("page: outcome=failed, offset 5,000", HistoryFilter(outcomes=("failed",)), "-started_at", 5000),
        ]
        for name, f, sort, offset in cases:
            ms = await timed(lambda f=f, sort=sort, offset=offset: page(f, sort, offset))
            rows.append((name + " (+ count)", ms, base_page, "SELECT * LIMIT 50", TARGET_PAGE_MS))
        rows.append(("count: printer+outcomes+date", await timed(lambda: repo.count(filtered)), base_count,
                     "count(*)", None))  # fmt: skip
        rows.append(
            ("count: all", await timed(lambda: repo.count(HistoryFilter())), base_count, "count(*)", None)
        )
        rows.append(("totals: all", await timed(lambda: repo.totals(HistoryFilter()), 5), base_scan,
                     "sum() full scan", None))  # fmt: skip
        rows.append(("totals: printer+outcomes+date", await timed(lambda: repo.totals(filtered)), base_scan,
                     "sum() full scan", None))  # fmt: skip

        size = 0

        async def export() -> None:
            nonlocal size
            size = 0
            async for chunk in repo.csv_chunks(HistoryFilter()):
                size += len(chunk)

        csv_ms = await timed(export, 3)
        rows.append((f"CSV export: all {args.records:,} rows ({size / 1e6:.1f} MB)", csv_ms, base_csv,
                     "SELECT * + csv.writer", None))  # fmt: skip
        await db.close()
        bare.close()

    print(f"\n{'query':58} {'ms':>9} {'baseline ms':>12} {'ratio':>7}  baseline / target")
    failed = False
    for name, ms, base, base_name, target in rows:
        verdict = ""
        if target is not None:
            ok = ms <= target
            failed |= not ok
            verdict = f" / target <= {target:g} ms: {'ok' if ok else 'MISSED'}"
        print(f"{name:58} {ms:9.2f} {base:12.2f} {ms / base:7.1f}  {base_name}{verdict}")
    print("\nall pages within target" if not failed else "\nSOME PAGES MISSED THE TARGET")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
