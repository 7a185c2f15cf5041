"""Metadata + thumbnail extraction of a generated 50 MB 3MF: time and extra peak RSS.

Targets (issue 4): <= 300 ms and <= 30 MB extra peak RSS for ``read_3mf`` + ``read_thumbnail``.

Baselines, measured side by side in the same run on the same file:
- ``central directory``: just opening the ZIP and listing it with the standard library;
- ``plain zipfile``: what a naive reader does, ``zipfile`` reads of slice_info.config and the plate
  PNG plus ElementTree, with none of our checks.

Every measurement runs in a fresh interpreter that has imported the modules first, so "extra peak
RSS" is what the operation itself costs: VmHWM after it minus VmRSS before it (the high-water mark
is reset through /proc/self/clear_refs). Times are medians of several runs (warm page cache).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

RUNS = 7
TARGET_MS = 300.0
TARGET_MB = 30.0

CHILD = r"""
import json, statistics, sys, time
sys.path.insert(0, {repo!r})
mode, path, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
import zipfile
import xml.etree.ElementTree as ET
from bambu_edge.files.threemf import read_3mf, read_thumbnail

def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024

def central_directory():
    with zipfile.ZipFile(path) as z:
        return len(z.infolist())

def plain_zipfile():
    with zipfile.ZipFile(path) as z:
        root = ET.fromstring(z.read("Metadata/slice_info.config"))
        png = z.read("Metadata/plate_1.png")
        return len(root), len(png)

def ours():
    meta = read_3mf(path)
    png = read_thumbnail(path, 1)
    return meta, png

op = {{"central directory": central_directory, "plain zipfile": plain_zipfile, "read_3mf + thumbnail": ours}}[mode]
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # reset the peak-RSS high-water mark
before = status("VmRSS")
t0 = time.perf_counter()
result = op()
first = time.perf_counter() - t0
peak = status("VmHWM")
times = [first]
for _ in range(runs - 1):
    t0 = time.perf_counter()
    op()
    times.append(time.perf_counter() - t0)
extra = {{}}
if mode == "read_3mf + thumbnail":
    meta, png = result
    plate = meta.plates[0]
    extra = {{"plates": len(meta.plates), "layers": plate.layers, "prediction_s": plate.prediction_s,
             "filaments": len(plate.filaments), "thumbnail_bytes": len(png or b""),
             "geometry": None if meta.model is None else [meta.model.objects, meta.model.vertices, meta.model.triangles]}}
print(json.dumps({{"median_s": statistics.median(times), "first_s": first, "extra_rss": peak - before,
                  "rss_before": before, **extra}}))
"""


def measure(mode: str, path: Path, runs: int) -> dict:
    code = CHILD.format(repo=str(REPO))
    out = subprocess.run(
        [sys.executable, "-c", code, mode, str(path), str(runs)], check=True, capture_output=True, text=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size-mb", type=float, default=50.0)
    parser.add_argument("--runs", type=int, default=RUNS)
    parser.add_argument("--keep", type=Path, help="write the generated file here (and reuse it if present)")
    args = parser.parse_args()

    from tests.factories.threemf import PlateSpec, make_3mf

    with tempfile.TemporaryDirectory() as tmp:
        path = args.keep or Path(tmp) / "bench.gcode.3mf"
        if not path.exists():
            t0 = time.perf_counter()
            make_3mf(
                path,
                target_size=int(args.size_mb * 1_000_000),
                plates=[
                    PlateSpec(
                        prediction_s=6 * 3600,
                        layers=400,
                        filaments=[("PLA", "#FFFFFF", 120.0), ("PETG", "#000000", 32.5)],
                    ),
                    PlateSpec(prediction_s=1800, layers=60),
                ],
            )
            print(f"generated {path.stat().st_size / 1e6:.1f} MB 3MF in {time.perf_counter() - t0:.1f} s")
        import zipfile

        with zipfile.ZipFile(path) as z:
            model = z.getinfo("3D/3dmodel.model").file_size
            gcode = z.getinfo("Metadata/plate_1.gcode").file_size
        print(
            f"file: {path.stat().st_size / 1e6:.1f} MB on disk; 3D model {model / 1e6:.0f} MB and "
            f"plate 1 G-code {gcode / 1e6:.0f} MB uncompressed"
        )

        results = {
            mode: measure(mode, path, args.runs)
            for mode in ("central directory", "plain zipfile", "read_3mf + thumbnail")
        }

    mb = 1024 * 1024
    base_cd, base_plain, ours = (
        results["central directory"],
        results["plain zipfile"],
        results["read_3mf + thumbnail"],
    )
    print(f"{'':24} {'median':>9} {'first':>9} {'extra peak RSS':>15}")
    for mode, r in results.items():
        print(
            f"{mode:24} {r['median_s'] * 1000:7.1f}ms {r['first_s'] * 1000:7.1f}ms {r['extra_rss'] / mb:12.1f} MB"
        )
    print(
        f"ratio time  ours/central directory {ours['median_s'] / base_cd['median_s']:6.1f}x   "
        f"ours/plain zipfile {ours['median_s'] / base_plain['median_s']:6.1f}x"
    )
    print(
        f"ratio extra RSS  ours - plain zipfile {(ours['extra_rss'] - base_plain['extra_rss']) / mb:+.1f} MB "
        f"({ours['extra_rss'] / max(1, base_plain['extra_rss']):.1f}x)"
    )
    geometry = ours["geometry"]
    print(
        f"read: {ours['plates']} plates, plate 1 {ours['layers']} layers, {ours['prediction_s']} s, "
        f"{ours['filaments']} filaments, thumbnail {ours['thumbnail_bytes']} bytes; geometry: "
        + (
            "not read (model over the lib3mf size bound, or lib3mf absent)"
            if geometry is None
            else str(geometry)
        )
    )
    time_ok = max(ours["median_s"], ours["first_s"]) * 1000 <= TARGET_MS
    rss_ok = ours["extra_rss"] / mb <= TARGET_MB
    print(f"target time <= {TARGET_MS:.0f} ms (first call and median): {'PASS' if time_ok else 'FAIL'}")
    print(f"target extra peak RSS <= {TARGET_MB:.0f} MB: {'PASS' if rss_ok else 'FAIL'}")
    return 0 if time_ok and rss_ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
