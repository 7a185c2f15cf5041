"""Realistic print history for dashboard tests: records written through the real repository (and
plate pictures into the real thumbnail cache) in a daemon's data folder, before the daemon starts.

    records = sample_records(["p1s-free", "a1"], n=60, now=time.time())
    await seed_history(data_dir, records)

The mix follows a farm's: mostly successes, some failures with the printer's reason, cancels and a
few prints whose end nobody saw; one to three AMS slots each, with type, colour, grams and metres.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path

from bambu_edge.files.thumbnails import ThumbnailCache, key_for
from bambu_edge.jobs.history import HistoryRepository
from bambu_edge.jobs.records import FilamentSlot, JobKey, PrintRecord
from bambu_edge.store.db import Database
from tests.factories.threemf import make_png

JOBS = [
    "3DBenchy",
    "Cable clip x8",
    "Gridfinity bin 2x3",
    "Phone stand",
    "Planter self-watering",
    "Calibration cube",
    "Headphone hook",
    "Drawer handle",
]
SPOOLS = [
    ("PLA", "#FFFFFFFF"),
    ("PLA", "#000000FF"),
    ("PETG", "#FF6A13FF"),
    ("ABS", "#489FDFFF"),
    ("PLA", "#00AE42FF"),
]
FAILURES = [
    ("0700_8006", "Print error 0700_8006; AMS: filament ran out (HMS 0700_2000_0002_0001)"),
    ("0300_8014", "Print error 0300_8014: the nozzle is clogged"),
    ("0C00_8009", "Print error 0C00_8009: spaghetti detected by the camera"),
]


def sample_records(
    printers: Sequence[tuple[str, str, str]], n: int, now: float, seed: int = 7
) -> list[PrintRecord]:
    """``n`` ended prints over the last ``n`` days on ``printers`` ((id, name, model) each), newest
    last; every record's ``thumbnail`` is a cache key (see ``seed_history``)."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        started = now - (n - i) * 86400 + rng.uniform(0, 40000)
        duration = rng.uniform(900, 5 * 3600)
        pid, name, model = printers[i % len(printers)]
        outcome = rng.choice(["success"] * 7 + ["failed", "cancelled", "unknown"])
        code, reason = rng.choice(FAILURES) if outcome == "failed" else (None, None)
        if outcome == "cancelled":
            code, reason = "0300_400C", "Cancelled on the printer"
        job = JOBS[i % len(JOBS)]
        total_layers = rng.randint(40, 400)
        done = 1.0 if outcome == "success" else rng.uniform(0.1, 0.9)
        slots = []
        for k, s in enumerate(rng.sample(range(4), rng.randint(1, 3))):
            grams = round(rng.uniform(4, 90) * done, 2)
            slots.append(FilamentSlot(s, *SPOOLS[(i + k) % len(SPOOLS)], grams, round(grams / 3.0, 2)))
        out.append(
            PrintRecord(
                uid=f"{rng.getrandbits(128):032x}",
                printer_id=pid,
                printer_name=name,
                model=model,
                file=f"{job.lower().replace(' ', '_')}.gcode.3mf",
                job=job,
                plate=1,
                started_at=started,
                ended_at=started + duration * done,
                duration_s=round(duration * done, 1),
                outcome=outcome,
                failure_reason=reason,
                error_code=code,
                layers=round(total_layers * done),
                total_layers=total_layers,
                progress=round(100 * done),
                filament=tuple(slots),
                thumbnail=key_for(f"{i:064x}", 1),
                key=JobKey(job=job, file="/data/Metadata/plate_1.gcode"),
                last_seen_at=started + duration * done,
            )
        )
    return out


async def seed_history(data_dir: Path, records: Sequence[PrintRecord]) -> list[int]:
    """Write ``records`` (and a plate picture for each thumbnail key) into ``data_dir``'s database
    and thumbnail cache, as the tracker would have. Returns the record ids in order."""
    data_dir.mkdir(parents=True, exist_ok=True)
    cache = ThumbnailCache.in_data_dir(data_dir)
    colours = ["#00AE42", "#FF6A13", "#489FDF", "#D32941", "#F2B04B"]
    db = await Database.open(data_dir / "bambu-edge.db")
    try:
        await db.migrate()
        repo = HistoryRepository(db)
        ids = []
        for i, rec in enumerate(records):
            if rec.thumbnail:
                cache.put(rec.thumbnail, make_png(96, 96, colours[i % len(colours)], seed=i))
            ids.append(await repo.save(rec))
        return [i for i in ids if i is not None]
    finally:
        await db.close()
