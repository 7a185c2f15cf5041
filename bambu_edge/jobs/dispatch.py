"""Which queued job starts on which printer now, and why every other job is still waiting. Pure.

The dispatcher service (``jobs/dispatcher.py``) takes a snapshot of the printers and the waiting
jobs, asks ``decide()``, and carries out the starts. Nothing here does I/O, so every rule of
issue 4 item 5 is a fast unit test:

* a printer takes a job only if it is online, idle, its bed was marked clear after its last print,
  it has no queued print in flight, its model and nozzle match the slice, and it holds the plate's
  filaments (type case-insensitive, colour within ``COLOR_TOLERANCE``);
* a job's target printer is honoured; jobs go by priority (higher first), then position;
* among several eligible printers the least loaded one gets the job;
* a paused queue starts nothing;
* a printer its power control switched off (``power_off``) takes no job, but when a job finds no
  ready printer, the switched-off printers that would take it (as far as their last report tells)
  are named in ``Decision.wake``: the dispatcher asks power control to switch them on, and the job
  starts once such a printer is online and ready like any other.

Reasons are plain words per printer, e.g. ``"X1C left: bed not marked clear"``.

``ams_mapping`` (BAMBU.md sections 6 and 13.2: the sources disagree on its shape): we send the
per-filament list of global tray indices that HAB and local-printer-api describe: index = filament
id - 1, value = ams_id * 4 + slot (an AMS HT unit's index is its id, 128-135), 254 the external
spool, -1 unused. OBA's fixed five-element right-aligned array is one constant away
(``AMS_MAPPING_SHAPE``).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bambu_edge.files.meta import FilamentUse, PrintFileMeta
from bambu_edge.printers.bambu.protocol import (
    EXTERNAL_TRAY,
    NO_JOB_STATES,
    PAUSE,
    PREPARE,
    RUNNING,
    tray_index,
)

UNUSED = -1

# gcode_state values in which a printer can take a new job: NO_JOB_STATES (FINISH and FAILED are
# what a printer shows after a print until the next one); everything else (PREPARE, RUNNING, PAUSE,
# SLICING, INIT, values we do not know) means busy or unknown.
ACTIVE_WORDS = {
    PREPARE: "preparing a print",
    RUNNING: "printing",
    PAUSE: "paused mid-print",
    # A Klipper printer whose Klippy is not ready (shutdown, error, starting): printers/moonraker/
    "OFFLINE": "Klipper is not ready",
}
NOT_GCODE = "Klipper printers print G-code files, not .3mf projects"
KLIPPER_NOZZLE_UNKNOWN = "no nozzle size set for it (set it on its card)"

# CIE76 colour difference (Delta E in L*a*b*) under which a loaded spool counts as the slice's
# colour. About 2 is "just noticeable"; 18 accepts the slicer's "#FFFFFF" for a spool reported as
# "#F5F5F5" or "#FFFDF0", yet tells white from light grey, red from orange, black from dark grey.
COLOR_TOLERANCE = 18.0

AMS_MAPPING_PER_FILAMENT = "per_filament"  # HAB, local-printer-api: [tray for filament 1, ...]
AMS_MAPPING_RIGHT_ALIGNED = "right_aligned_5"  # OBA: five entries, right-aligned, -1 padded
AMS_MAPPING_SHAPE = AMS_MAPPING_PER_FILAMENT
RIGHT_ALIGNED_WIDTH = 5

SWITCHED_OFF = "switched off (switched on when a job needs it)"
MODEL_UNKNOWN = "model not known yet"
NOZZLE_UNKNOWN = "has not reported its nozzle size"

LINK_WORDS = {
    "connecting": "connecting",
    "offline": "offline",
    "auth_failed": "access code rejected",
    "tls_mismatch": "certificate changed (accept it on the printer's card)",
}


# --- inputs ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Tray:
    """One filament source of a printer, as its last report showed it."""

    index: int  # global tray index: ams_id * 4 + slot, the AMS HT unit id, or 254 (external)
    type: str | None
    color: str | None  # "#RRGGBBAA"
    remain: int | None = None  # percent; None unknown

    @property
    def loaded(self) -> bool:
        return bool(self.type)


@dataclass(frozen=True, slots=True)
class PrinterSnapshot:
    id: str
    name: str
    model: str | None
    nozzle_diameter: float | None
    link_state: str
    gcode_state: str | None
    bed_clear: bool
    run_in_flight: bool = False  # a queued print is being uploaded/started/printed there
    trays: tuple[Tray, ...] = ()  # AMS (and AMS HT) trays
    external: Tray | None = None  # the external spool
    load: float = 0.0  # recent work (the service counts queued prints of the last day)
    power_off: bool = False  # switched off by its power control, which can switch it on
    # Klipper through Moonraker: prints plain G-code sliced for no Bambu model; its nozzle and
    # filament (the external spool) are what the user set for it (issue 14).
    klipper: bool = False

    @classmethod
    def from_view(
        cls,
        view: Mapping[str, Any],
        *,
        bed_clear: bool,
        run_in_flight: bool = False,
        load: float = 0.0,
        power_off: bool = False,
    ) -> PrinterSnapshot:
        """From a printer view (DESIGN.md section 4, ``PrinterState.view()``)."""
        link = view.get("link") or {}
        job = view.get("print") or {}
        nozzle = view.get("nozzle") or {}
        return cls(
            id=str(view.get("id")),
            name=str(view.get("name") or view.get("id")),
            model=view.get("model"),
            nozzle_diameter=nozzle.get("diameter"),
            link_state=str(link.get("state") or "offline"),
            gcode_state=job.get("state"),
            bed_clear=bed_clear,
            run_in_flight=run_in_flight,
            trays=tuple(trays_from_view(view.get("ams") or ())),
            external=external_from_view(view.get("external_spool")),
            load=load,
            power_off=power_off,
            klipper=view.get("type") == "moonraker",
        )


def trays_from_view(units: Iterable[Mapping[str, Any]]) -> list[Tray]:
    out = []
    for unit in units:
        u = unit.get("unit")
        if not isinstance(u, int):
            continue
        for t in unit.get("trays") or ():
            slot = t.get("slot")
            if isinstance(slot, int) and 0 <= slot < 4:
                out.append(Tray(tray_index(u, slot), t.get("type"), t.get("color"), t.get("remain")))
    return out


def external_from_view(spool: Mapping[str, Any] | None) -> Tray | None:
    if not spool or not spool.get("type"):
        return None
    # The external spool's remain is not measured (reports say 0): unknown, not empty.
    return Tray(EXTERNAL_TRAY, spool.get("type"), spool.get("color"), None)


@dataclass(frozen=True, slots=True)
class WaitingJob:
    """A job with copies still to place on printers."""

    id: int
    meta: PrintFileMeta
    plate: int
    priority: int = 0
    position: int = 0
    target: str | None = None  # a printer id, or None for any compatible printer
    copies_left: int = 1  # copies not yet done nor in flight
    use_ams: bool = True
    retry_at: float | None = None  # after a failed attempt: not before this time
    last_error: str | None = None


# --- outputs --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FilamentSource:
    filament: FilamentUse
    tray: Tray


@dataclass(frozen=True, slots=True)
class Start:
    job_id: int
    printer_id: str
    ams_mapping: tuple[int, ...]
    use_ams: bool
    sources: tuple[FilamentSource, ...] = ()  # which tray feeds which filament (for history)


@dataclass(frozen=True, slots=True)
class Readiness:
    """A printer's readiness for any job; ``reason`` is None when ready."""

    printer_id: str
    bed_clear: bool
    ready: bool
    reason: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.printer_id,
            "bed_clear": self.bed_clear,
            "ready": self.ready,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class Decision:
    starts: tuple[Start, ...] = ()
    reasons: Mapping[int, tuple[str, ...]] = field(default_factory=dict)  # job id -> why waiting
    printers: Mapping[str, Readiness] = field(default_factory=dict)
    wake: Mapping[str, int] = field(default_factory=dict)  # switched-off printer -> job it is wanted for


# --- colours --------------------------------------------------------------------------------------


def _rgb(color: str | None) -> tuple[int, int, int, int] | None:
    if not isinstance(color, str):
        return None
    h = color.strip().lstrip("#")
    if len(h) == 6:
        h += "FF"
    if len(h) != 8:
        return None
    try:
        n = int(h, 16)
    except ValueError:
        return None
    return (n >> 24) & 0xFF, (n >> 16) & 0xFF, (n >> 8) & 0xFF, n & 0xFF


def _lab(r: int, g: int, b: int) -> tuple[float, float, float]:
    def lin(c: int) -> float:
        v = c / 255.0
        return v / 12.92 if v <= 0.04045 else ((v + 0.055) / 1.055) ** 2.4

    rl, gl, bl = lin(r), lin(g), lin(b)
    # sRGB (D65) -> XYZ, normalised by the white point
    x = (0.4124 * rl + 0.3576 * gl + 0.1805 * bl) / 0.95047
    y = 0.2126 * rl + 0.7152 * gl + 0.0722 * bl
    z = (0.0193 * rl + 0.1192 * gl + 0.9505 * bl) / 1.08883

    def f(t: float) -> float:
        return t ** (1 / 3) if t > 216 / 24389 else (24389 / 27 * t + 16) / 116

    fx, fy, fz = f(x), f(y), f(z)
    return 116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)


# A fleet shows a handful of colours, but every decision compares them many times (each filament of
# each job with each tray of each printer, and each missing one with every COLOR_NAMES entry).
@functools.lru_cache(maxsize=512)
def _lab_of(color: str) -> tuple[float, float, float] | None:
    rgba = _rgb(color)
    return None if rgba is None else _lab(*rgba[:3])


def color_distance(a: str | None, b: str | None) -> float | None:
    """CIE76 Delta E between two "#RRGGBB[AA]" colours (alpha ignored); None if either is unknown."""
    if not isinstance(a, str) or not isinstance(b, str):
        return None
    la, lb = _lab_of(a), _lab_of(b)
    if la is None or lb is None:
        return None
    return math.dist(la, lb)


# Names for reasons ("no white PETG loaded"): the nearest of these, by Delta E.
COLOR_NAMES: tuple[tuple[str, str], ...] = (
    ("white", "#FFFFFF"),
    ("black", "#000000"),
    ("grey", "#808080"),
    ("light grey", "#C8C8C8"),
    ("dark grey", "#404040"),
    ("red", "#D02020"),
    ("dark red", "#801010"),
    ("orange", "#FF8000"),
    ("yellow", "#FFE020"),
    ("beige", "#E8D8B0"),
    ("brown", "#7A4A25"),
    ("green", "#20A040"),
    ("dark green", "#105020"),
    ("light green", "#90E070"),
    ("teal", "#008080"),
    ("cyan", "#40D0F0"),
    ("light blue", "#80B8F0"),
    ("blue", "#2050D0"),
    ("navy", "#102060"),
    ("purple", "#7030B0"),
    ("pink", "#FF90C0"),
    ("magenta", "#E020C0"),
)


def color_name(color: str | None) -> str | None:
    return _color_name(color) if isinstance(color, str) else None


@functools.lru_cache(maxsize=512)
def _color_name(color: str) -> str | None:
    rgba = _rgb(color)
    if rgba is None:
        return None
    if rgba[3] < 0x40:
        return "clear"
    return min(COLOR_NAMES, key=lambda entry: color_distance(color, entry[1]) or 0.0)[0]


def filament_words(f: FilamentUse) -> str:
    """'white PETG', 'PLA', 'black filament'."""
    name = color_name(f.color)
    kind = f.type or "filament"
    return f"{name} {kind}" if name else kind


def _same_type(a: str | None, b: str | None) -> bool:
    return a is not None and b is not None and a.strip().casefold() == b.strip().casefold()


def tray_matches(f: FilamentUse, tray: Tray) -> bool:
    if not tray.loaded:
        return False
    if f.type and not _same_type(f.type, tray.type):
        return False
    if f.color:
        d = color_distance(f.color, tray.color)
        if d is None or d > COLOR_TOLERANCE:
            return False
    return True


# --- filament matching and ams_mapping ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FilamentMatch:
    ams_mapping: tuple[int, ...]
    use_ams: bool
    sources: tuple[FilamentSource, ...]


def _pick(f: FilamentUse, candidates: Sequence[Tray], used: set[int]) -> Tray | None:
    found = [t for t in candidates if tray_matches(f, t)]
    if not found:
        return None

    def rank(t: Tray) -> tuple[bool, float, int, int]:
        # A tray no other filament uses, then the closest colour, then the fullest spool.
        d = color_distance(f.color, t.color) if f.color else 0.0
        return (t.index in used, d or 0.0, -(t.remain if t.remain is not None else 50), t.index)

    return min(found, key=rank)


def _mapping(sources: Sequence[FilamentSource]) -> tuple[int, ...]:
    if not sources:
        return ()
    width = max(s.filament.id for s in sources)
    out = [UNUSED] * width
    for s in sources:
        out[s.filament.id - 1] = s.tray.index
    return tuple(out)


def shape_ams_mapping(mapping: Sequence[int], shape: str = AMS_MAPPING_SHAPE) -> list[int]:
    """The mapping as sent in ``project_file``: per filament, or OBA's right-aligned five."""
    if shape == AMS_MAPPING_RIGHT_ALIGNED:
        width = max(RIGHT_ALIGNED_WIDTH, len(mapping))
        return [UNUSED] * (width - len(mapping)) + list(mapping)
    return list(mapping)


def match_filaments(
    filaments: Sequence[FilamentUse], printer: PrinterSnapshot, use_ams: bool = True
) -> FilamentMatch | str:
    """Trays for every filament of a plate, or the reason there are none (plain words).

    With an AMS and ``use_ams``, filaments come from AMS trays (the external spool's feed is not in
    the AMS path). A single-filament plate may fall back to the external spool; without an AMS (or
    with ``use_ams`` off) the external spool must hold every filament.
    """
    wanted = sorted((f for f in filaments if f.id >= 1), key=lambda f: f.id)
    if not wanted:
        return FilamentMatch((), bool(use_ams and printer.trays), ())
    ams = [t for t in printer.trays if t.loaded]
    if use_ams and ams:
        used: set[int] = set()
        sources: list[FilamentSource] = []
        missing: list[FilamentUse] = []
        for f in wanted:
            tray = _pick(f, ams, used)
            if tray is None:
                missing.append(f)
            else:
                used.add(tray.index)
                sources.append(FilamentSource(f, tray))
        if not missing:
            return FilamentMatch(_mapping(sources), True, tuple(sources))
        if len(wanted) > 1 or printer.external is None or not tray_matches(wanted[0], printer.external):
            return _missing_words(missing)
    ext = printer.external
    if ext is None or not ext.loaded:
        if use_ams and not printer.trays and len(wanted) > 1:
            return f"needs an AMS for {len(wanted)} filaments"
        return _missing_words(wanted)
    bad = [f for f in wanted if not tray_matches(f, ext)]
    if bad:
        if len(wanted) > 1 and use_ams and not printer.trays:
            return f"needs an AMS for {len(wanted)} filaments"
        return _missing_words(bad)
    sources = [FilamentSource(f, ext) for f in wanted]
    return FilamentMatch(_mapping(sources), False, tuple(sources))


def _missing_words(missing: Sequence[FilamentUse]) -> str:
    names: list[str] = []
    for f in missing:
        w = filament_words(f)
        if w not in names:
            names.append(w)
    return f"no {' or '.join(names)} loaded"


# --- rules ----------------------------------------------------------------------------------------


def readiness(p: PrinterSnapshot) -> Readiness:
    """Whether a printer can take any job now, and if not, why (the first reason that applies)."""
    reason: str | None = None
    if p.link_state != "connected" and p.power_off:
        reason = SWITCHED_OFF
    elif p.link_state != "connected":
        reason = LINK_WORDS.get(p.link_state, p.link_state)
    elif p.gcode_state is None:
        reason = "no status report yet"
    elif p.gcode_state in ACTIVE_WORDS:
        reason = ACTIVE_WORDS[p.gcode_state]  # no progress: reasons change only when readiness does
    elif p.gcode_state not in NO_JOB_STATES:
        reason = f"busy ({p.gcode_state})"
    elif p.run_in_flight:
        reason = "starting a queued print"
    elif not p.bed_clear:
        reason = "bed not marked clear"
    return Readiness(p.id, p.bed_clear, reason is None, reason)


def _fmt_mm(v: float) -> str:
    return f"{v:g} mm"


def compatibility(meta: PrintFileMeta, plate: int, p: PrinterSnapshot) -> str | None:
    """Why this printer can never print this slice as it is; None if it can (model, nozzle)."""
    plate_meta = meta.plate(plate)
    sliced_for = meta.printer_model
    if p.klipper:
        if meta.kind != "gcode":
            return NOT_GCODE
        if sliced_for is not None:
            return f"sliced for {sliced_for}, this is a Klipper printer"
        nozzle = (plate_meta.nozzle_diameter if plate_meta else None) or meta.nozzle_diameter
        if nozzle is not None and p.nozzle_diameter is None:
            return KLIPPER_NOZZLE_UNKNOWN
    elif sliced_for is not None:
        if p.model is None:
            return MODEL_UNKNOWN
        if sliced_for.casefold() != p.model.casefold():
            return f"sliced for {sliced_for}, this is {_article(p.model)}"
    nozzle = (plate_meta.nozzle_diameter if plate_meta else None) or meta.nozzle_diameter
    if nozzle is not None:
        if p.nozzle_diameter is None:
            return NOZZLE_UNKNOWN
        if abs(nozzle - p.nozzle_diameter) > 0.001:
            return f"sliced for a {_fmt_mm(nozzle)} nozzle, this has {_fmt_mm(p.nozzle_diameter)}"
    return None


def _article(model: str) -> str:
    # "an A1", "an X1C", "an H2D", "a P1S"
    return ("an " if model[:1].upper() in "AEIOUXH" else "a ") + model


def plate_problem(meta: PrintFileMeta, plate: int) -> str | None:
    if meta.kind == "gcode":
        return None
    p = meta.plate(plate)
    if p is None:
        return f"the file has no plate {plate}"
    if not p.gcode_path:
        return f"plate {plate} is not sliced"
    return None


def plate_filaments(meta: PrintFileMeta, plate: int) -> tuple[FilamentUse, ...]:
    p = meta.plate(plate)
    if p is None and meta.kind == "gcode" and meta.plates:
        p = meta.plates[0]
    return p.filaments if p else ()


def _order(job: WaitingJob) -> tuple[int, int, int]:
    return (-job.priority, job.position, job.id)


def decide(
    jobs: Iterable[WaitingJob],
    printers: Iterable[PrinterSnapshot],
    *,
    paused: bool = False,
    now: float = 0.0,
) -> Decision:
    """What starts now, and why every job that still has copies to place waits."""
    fleet = sorted(printers, key=lambda p: (p.name.casefold(), p.id))
    ready = {p.id: readiness(p) for p in fleet}
    by_id = {p.id: p for p in fleet}
    taken: dict[str, int] = {}  # printer id -> job id given it in this decision
    starts: list[Start] = []
    reasons: dict[int, tuple[str, ...]] = {}
    wake: dict[str, int] = {}

    for job in sorted(jobs, key=_order):
        if job.copies_left <= 0:
            continue
        if paused:
            reasons[job.id] = ("the queue is paused",)
            continue
        if job.retry_at is not None and job.retry_at > now:
            wait = math.ceil(job.retry_at - now)
            after = f" after: {job.last_error}" if job.last_error else ""
            reasons[job.id] = (f"trying again in {wait} s{after}",)
            continue
        problem = plate_problem(job.meta, job.plate)
        if problem:
            reasons[job.id] = (problem,)
            continue
        if job.target is not None:
            if job.target not in by_id:
                reasons[job.id] = (f"the target printer {job.target!r} is not configured",)
                continue
            candidates = [by_id[job.target]]
        elif job.meta.printer_model is None:
            # G-code sliced for no Bambu model: a Klipper printer's (or choose one)
            candidates = [p for p in fleet if p.klipper] if job.meta.kind == "gcode" else []
            if not candidates:
                reasons[job.id] = (
                    "the file does not say which printer it was sliced for; choose a target printer",
                )
                continue
        else:
            candidates = fleet

        filaments = plate_filaments(job.meta, job.plate)
        eligible: list[tuple[PrinterSnapshot, FilamentMatch]] = []
        why: list[str] = []
        for p in candidates:
            words = _why_not(job, p, ready[p.id], filaments, taken)
            if isinstance(words, FilamentMatch):
                eligible.append((p, words))
            else:
                why.append(f"{p.name}: {words}")
        eligible.sort(key=lambda e: (e[0].load, e[0].name.casefold(), e[0].id))
        placed = 0
        for p, match in eligible[: job.copies_left]:
            taken[p.id] = job.id
            starts.append(Start(job.id, p.id, match.ams_mapping, match.use_ams, match.sources))
            placed += 1
        if placed < job.copies_left:
            # Copies no ready printer takes: switch on printers that would (once online and ready,
            # a later decision starts them like any other).
            missing = job.copies_left - placed
            for p in candidates:
                if missing and p.id not in wake and p.id not in taken and _wakeable(job, p, filaments):
                    wake[p.id] = job.id
                    missing -= 1
            if not candidates:
                why.append("no printers are configured")
            elif placed and not why:
                why.append("no other compatible printer is free")
            reasons[job.id] = tuple(why)
    return Decision(tuple(starts), reasons, ready, wake)


def _wakeable(job: WaitingJob, p: PrinterSnapshot, filaments: Sequence[FilamentUse]) -> bool:
    """Would this switched-off printer take the job once on? Judged by what it last reported."""
    if not p.power_off or p.link_state == "connected" or p.run_in_flight or not p.bed_clear:
        return False
    return _could_take(job, p, filaments)


def still_wanted(job: WaitingJob, p: PrinterSnapshot) -> bool:
    """Is a printer switched on for this job still one it may go to (power/wakes.py)? Not once the
    job's copies are all placed, or the printer has reported what rules it out."""
    if job.copies_left <= 0 or (job.target is not None and job.target != p.id):
        return False
    if plate_problem(job.meta, job.plate):
        return False
    if job.target is None and job.meta.printer_model is None and not (p.klipper and job.meta.kind == "gcode"):
        return False
    return _could_take(job, p, plate_filaments(job.meta, job.plate))


def _could_take(job: WaitingJob, p: PrinterSnapshot, filaments: Sequence[FilamentUse]) -> bool:
    """A model, nozzle or filament the printer is known not to have rules it out; what is unknown
    does not."""
    incompatible = compatibility(job.meta, job.plate, p)
    if incompatible and incompatible not in (MODEL_UNKNOWN, NOZZLE_UNKNOWN, KLIPPER_NOZZLE_UNKNOWN):
        return False
    if p.trays or p.external:
        return not isinstance(match_filaments(filaments, p, job.use_ams), str)
    return True


def _why_not(
    job: WaitingJob,
    p: PrinterSnapshot,
    ready: Readiness,
    filaments: Sequence[FilamentUse],
    taken: Mapping[str, int],
) -> FilamentMatch | str:
    incompatible = compatibility(job.meta, job.plate, p)
    if incompatible:
        return incompatible
    match = match_filaments(filaments, p, job.use_ams)
    parts = []
    if not ready.ready and ready.reason:
        parts.append(ready.reason)
    elif p.id in taken:
        parts.append(f"taken by job #{taken[p.id]}, ahead in the queue")
    if isinstance(match, str):
        parts.append(match)
    if parts:
        return ", ".join(parts)
    assert isinstance(match, FilamentMatch)
    return match
