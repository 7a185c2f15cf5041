"""Cost of one status message in BambuState: decode (orjson) + merge + change set.

Target: at most 3x a plain ``json.loads`` of the same bytes, measured side by side in the same run.
Bytes are the compact JSON a printer puts on the wire, built from the shared fixtures.

Cases:
- X1C full report, running: two full reports alternate (temperatures, progress, layer and time
  left differ), as an X1 pushes them while printing. The headline figure.
- X1C full report, repeated: the same full report again (only ``updated_at`` changes).
- X1C full report, cold: a new BambuState per message, so every view section is built.
- P1S delta: the two captured P1S deltas alternate on a state holding the P1S full report.

Prints a table; exits 1 if any case misses the target.
"""

from __future__ import annotations

import copy
import json
import sys
import timeit
from collections.abc import Callable
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bambu_edge.printers.bambu.fixtures import load_fixture
from bambu_edge.printers.bambu.report import BambuState

TARGET = 3.0
REPEAT = 7


def per_call_us(fn: Callable[[], object], number: int) -> float:
    """Best of REPEAT runs, in microseconds per call (the minimum is the least disturbed run)."""
    return min(timeit.repeat(fn, number=number, repeat=REPEAT)) / number * 1e6


def alternating(payloads: list[bytes], apply: Callable[[bytes], object]) -> Callable[[], object]:
    state = {"i": 0}

    def step() -> object:
        state["i"] ^= 1
        return apply(payloads[state["i"]])

    return step


def main() -> int:
    x1c = load_fixture("x1c_pushall_finish_multi_ams.json")
    running = copy.deepcopy(x1c)
    p = running["print"]
    p.update(
        gcode_state="RUNNING",
        nozzle_temper=219.5,
        nozzle_target_temper=220.0,
        bed_temper=55.0,
        bed_target_temper=55.0,
        mc_percent=42,
        mc_remaining_time=31,
        layer_num=17,
    )
    running2 = copy.deepcopy(running)
    running2["print"].update(nozzle_temper=220.0, mc_percent=43, mc_remaining_time=30, layer_num=18)
    x1c_bytes = orjson.dumps(x1c)
    run_bytes = [orjson.dumps(running), orjson.dumps(running2)]
    p1s_full = load_fixture("p1s_pushall_finish_redacted.jsonish.txt")
    p1s_deltas = [
        orjson.dumps(load_fixture("p1s_delta_bed_temper_wifi_1.json")),
        orjson.dumps(load_fixture("p1s_delta_bed_temper_wifi_2.json")),
    ]

    steady = BambuState("x1c", "X1C", "00M09C452703629")
    steady.apply_message(orjson.loads(x1c_bytes))
    run_state = BambuState("x1c", "X1C", "00M09C452703629")
    run_state.apply_message(orjson.loads(run_bytes[0]))
    p1s = BambuState("p1s", "P1S", "01P00A000000000")
    p1s.apply_message(p1s_full)

    def cold(data: bytes) -> object:
        return BambuState("x1c", "X1C", "00M09C452703629").apply_message(orjson.loads(data))

    # sanity: each case really changes what it should
    assert "temps" in run_state.apply_message(orjson.loads(run_bytes[1]))
    assert p1s.apply_message(orjson.loads(p1s_deltas[0]))["temps"]["bed"]["current"] == 11.96875
    assert steady.apply_message(orjson.loads(x1c_bytes)).keys() == {"updated_at"}

    cases = [
        (
            "X1C full report, running",
            run_bytes,
            alternating(run_bytes, lambda b: run_state.apply_message(orjson.loads(b))),
            3000,
        ),
        (
            "X1C full report, repeated",
            [x1c_bytes],
            lambda: steady.apply_message(orjson.loads(x1c_bytes)),
            3000,
        ),
        ("X1C full report, cold", [x1c_bytes], lambda: cold(x1c_bytes), 1000),
        (
            "P1S delta",
            p1s_deltas,
            alternating(p1s_deltas, lambda b: p1s.apply_message(orjson.loads(b))),
            50000,
        ),
    ]

    print(
        f"BambuState merge cost vs json.loads of the same bytes (best of {REPEAT} runs; target <= {TARGET:g}x)"
    )
    print(f"{'case':<28} {'bytes':>7} {'json.loads us':>14} {'ours us':>9} {'ratio':>7}  result")
    failed = False
    for name, payloads, ours, number in cases:
        baseline = (
            alternating(payloads, json.loads) if len(payloads) > 1 else (lambda b=payloads[0]: json.loads(b))
        )
        base_us = per_call_us(baseline, number)
        ours_us = per_call_us(ours, number)
        ratio = ours_us / base_us
        ok = ratio <= TARGET
        failed |= not ok
        size = len(payloads[0])
        print(
            f"{name:<28} {size:>7} {base_us:>14.2f} {ours_us:>9.2f} {ratio:>6.2f}x  {'ok' if ok else 'MISSED'}"
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
