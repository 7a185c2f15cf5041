"""The virtual models: which capture each starts from, how its firmware formats reports, serials.

Everything a virtual printer says starts from a real captured report of its model
(``shared/fixtures/bambu``), so the daemon is tested against real payload shapes, not invented ones.
What differs from the capture, on purpose (``initial_report``):
  * ``gcode_state`` is ``IDLE`` at power-on (captures were taken mid-print or after one);
  * captures taken mid-print (RUNNING/PREPARE/PAUSE) get heater targets 0, as an idle printer has;
  * ``sequence_id`` is the printer's own push counter (it continues from the capture's value) and a
    full report always carries ``msg: 0`` (the H2D capture has no ``msg``).
"""

from __future__ import annotations

import functools
import random
from dataclasses import dataclass
from typing import Any

import orjson

from bambu_edge.printers.bambu import models
from bambu_edge.printers.bambu.fixtures import load_fixture
from bambu_edge.printers.bambu.protocol import ACTIVE_PRINT_STATES, IDLE


@dataclass(frozen=True)
class Profile:
    model: str
    report_fixture: str
    version_fixture: str
    full_reports: bool  # X1 series: every push is the full object
    cjson_numbers: bool  # ESP32 firmware (P1/A1): whole numbers are printed as ints, temps in 1/32 degC
    idle_stage: int  # stg_cur when idle: -1 on X1, 255 on P1 (BAMBU.md section 5)
    version_project: str | None = None  # rewrite of the get_version project_name (see P1S)


PROFILES: dict[str, Profile] = {
    p.model: p
    for p in (
        Profile(models.X1C, "x1c_pushall_finish_multi_ams", "x1c_get_version", True, False, -1),
        Profile(models.X1, "x1_pushall_running_hms", "x1_get_version", True, False, -1),
        # No P1S get_version capture exists: the P1P one (same AP04/MC07/TH09 boards) with the P1S
        # project code C12 (BAMBU.md section 10) stands in.
        Profile(
            models.P1S, "p1s_pushall_finish_redacted", "p1p_get_version_contents", False, True, 255, "C12"
        ),
        Profile(models.P1P, "p1p_pushall_idle_contents", "p1p_get_version_contents", False, True, 255),
        Profile(models.A1, "a1_pushall_idle", "a1_get_version", False, True, 0),
        Profile(models.H2D, "h2d_pushall_running", "h2d_get_version", False, False, -1),
        Profile(models.P2S, "p2s_pushall_running", "p2s_get_version", False, False, -1),
    )
}
VIRTUAL_MODELS = tuple(PROFILES)


def profile_for(model: str) -> Profile:
    for name, profile in PROFILES.items():
        if name.lower() == model.strip().lower():
            return profile
    raise ValueError(f"unknown model {model!r}; choose one of {', '.join(VIRTUAL_MODELS)}")


def serial_prefix(model: str) -> str:
    if model == models.X1:
        return "00M"  # shared with the X1C (BAMBU.md section 10)
    return next(prefix for prefix, m in models.SERIAL_PREFIXES.items() if m == model)


def make_serial(model: str, rng: random.Random | None = None) -> str:
    """A 15-character serial with the model's prefix, e.g. ``01P09C123456789``."""
    rng = rng or random.Random()
    return serial_prefix(model) + "09C" + "".join(rng.choice("0123456789") for _ in range(9))


@functools.lru_cache(maxsize=16)
def _capture(name: str) -> bytes:
    # Parsed once per process: ten virtual printers of one model share it.
    return orjson.dumps(load_fixture(name))


def captured_report(model: str) -> dict[str, Any]:
    """The model's captured full report (the ``print`` object), as captured."""
    return orjson.loads(_capture(profile_for(model).report_fixture))["print"]


def initial_report(model: str) -> dict[str, Any]:
    """The ``print`` object the virtual printer powers on with (see the module docstring)."""
    report = captured_report(model)
    if report.get("gcode_state") in ACTIVE_PRINT_STATES:
        for key in ("nozzle_target_temper", "bed_target_temper"):
            if key in report:
                report[key] = 0.0 if isinstance(report[key], float) else 0
    report["gcode_state"] = IDLE
    return report


def version_reply(model: str, serial: str, sequence_id: Any) -> dict[str, Any]:
    """The model's captured get_version reply, with this printer's serial and the request's id."""
    profile = profile_for(model)
    info = orjson.loads(_capture(profile.version_fixture))["info"]
    for module in info.get("module", []):
        if module.get("name") == "ota":
            module["sn"] = serial  # the capture's serial is redacted; a printer reports its own
        if profile.version_project and module.get("project_name") == "C11":
            module["project_name"] = profile.version_project
    info["sequence_id"] = sequence_id
    return {"info": info}
