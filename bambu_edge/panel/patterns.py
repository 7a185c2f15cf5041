"""What the status LED shows: the daemon's state folded from the printers' views, and the blink
pattern of each state. Pure: no GPIO, no clock, no bus.

Every pattern blinks (none is steady), and the LED is stepped by the event loop: a frozen daemon
leaves the LED stuck on or off, which a glance tells from any pattern (the heartbeat).

Priority: error (an HMS error, a failed print, a printer offline) over attention (a print
finished and its bed to clear, a paused print) over printing over all ok. ``starting`` is shown
until every printer's link has settled. A short press acknowledges the alerts shown: they stop
counting until they clear and come back.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

OFFLINE_LINKS = frozenset({"offline", "auth_failed", "tls_mismatch"})
PRINTING = frozenset({"PREPARE", "RUNNING", "SLICING"})
ERROR_HMS = frozenset({"fatal", "error", "serious"})


@dataclass(frozen=True)
class Pattern:
    """``steps`` are (lit, seconds), repeated forever; ``color`` is what an RGB LED shows when lit
    (0/1 per channel: the RGB LED is driven on/off, no PWM needed)."""

    name: str
    color: tuple[int, int, int]
    steps: tuple[tuple[bool, float], ...]

    @property
    def period_s(self) -> float:
        return sum(d for _, d in self.steps)

    def to_json(self) -> dict[str, Any]:
        r, g, b = self.color
        return {
            "pattern": self.name,
            "color": f"#{r * 255:02x}{g * 255:02x}{b * 255:02x}",
            "steps": [[lit, d] for lit, d in self.steps],
        }


GREEN, BLUE, CYAN, YELLOW, RED, WHITE = (0, 1, 0), (0, 0, 1), (0, 1, 1), (1, 1, 0), (1, 0, 0), (1, 1, 1)

PATTERNS: dict[str, Pattern] = {
    p.name: p
    for p in (
        Pattern("starting", BLUE, ((True, 0.5), (False, 0.5))),
        # Lit nearly all the time; the short dark blip every 3 s is the heartbeat.
        Pattern("ok", GREEN, ((True, 2.85), (False, 0.15))),
        Pattern("printing", CYAN, ((True, 1.0), (False, 1.0))),
        Pattern("attention", YELLOW, ((True, 0.15), (False, 0.15), (True, 0.15), (False, 1.05))),
        Pattern("error", RED, ((True, 0.15), (False, 0.15))),
        # Shown while the button is held: which action a release now would take.
        Pattern("hold_shutdown", RED, ((True, 0.9), (False, 0.1))),
        Pattern("hold_setup", WHITE, ((True, 0.05), (False, 0.05))),
    )
}


def status_pattern(base: Pattern, count: int) -> Pattern:
    """A short press without an alert: one blink per printer connected, in the state's colour."""
    blinks: tuple[tuple[bool, float], ...] = ((True, 0.3), (False, 0.3)) * max(count, 0)
    return Pattern("status", base.color, ((False, 0.6), *blinks, (False, 0.9)))


@dataclass(frozen=True)
class Summary:
    """The folded state: the pattern's name, the alerts that count, and how many printers are
    connected (the short press's status blinks)."""

    state: str
    alerts: frozenset[str]
    connected: int


@dataclass
class PanelModel:
    """Printer views (from PrinterUpdate events) and the queue's bed marks in, a Summary out."""

    views: dict[str, Mapping[str, Any]] = field(default_factory=dict)
    beds_clear: dict[str, bool] = field(default_factory=dict)  # from the queue, when it runs
    acked: frozenset[str] = frozenset()

    def update_view(self, printer_id: str, view: Mapping[str, Any]) -> None:
        self.views[printer_id] = view

    def remove(self, printer_id: str) -> None:
        self.views.pop(printer_id, None)
        self.beds_clear.pop(printer_id, None)

    def set_bed(self, printer_id: str, clear: bool) -> None:
        self.beds_clear[printer_id] = clear

    def alerts(self) -> dict[str, str]:
        """{alert key: "error"|"attention"} for everything that wants a person."""
        out: dict[str, str] = {}
        for pid, view in self.views.items():
            out.update(printer_alerts(pid, view, self.beds_clear.get(pid)))
        return out

    def acknowledge(self) -> bool:
        """A short press: the alerts now shown stop counting. False if there was none."""
        current = frozenset(self.alerts())
        fresh = current - self.acked
        self.acked = current
        return bool(fresh)

    def summary(self) -> Summary:
        alerts = self.alerts()
        # An acknowledged alert that cleared is forgotten: when it comes back, it shows again.
        self.acked &= frozenset(alerts)
        live = {k: v for k, v in alerts.items() if k not in self.acked}
        links = [_link(v) for v in self.views.values()]
        connected = sum(1 for s in links if s == "connected")
        if "error" in live.values():
            state = "error"
        elif "attention" in live.values():
            state = "attention"
        elif any(s in (None, "connecting") for s in links):
            state = "starting"
        elif any(_print_state(v) in PRINTING for v in self.views.values()):
            state = "printing"
        else:
            state = "ok"
        return Summary(state, frozenset(live), connected)


def printer_alerts(pid: str, view: Mapping[str, Any], bed_clear: bool | None) -> dict[str, str]:
    link = _link(view)
    if link in OFFLINE_LINKS:
        return {f"{pid}:link:{link}": "error"}
    if link != "connected":
        return {}
    out: dict[str, str] = {}
    for code in _hms_errors(view.get("hms")):
        out[f"{pid}:hms:{code}"] = "error"
    state = _print_state(view)
    job = _job(view)
    if state == "FAILED":
        out[f"{pid}:failed:{job}"] = "error"
    elif state == "FINISH" and bed_clear is not True:
        out[f"{pid}:finish:{job}"] = "attention"
    elif state == "PAUSE":
        out[f"{pid}:paused:{job}"] = "attention"
    return out


def _link(view: Mapping[str, Any]) -> str | None:
    link = view.get("link")
    state = link.get("state") if isinstance(link, Mapping) else None
    return state if isinstance(state, str) else None


def _print_state(view: Mapping[str, Any]) -> str | None:
    p = view.get("print")
    state = p.get("state") if isinstance(p, Mapping) else None
    return state.upper() if isinstance(state, str) else None


def _job(view: Mapping[str, Any]) -> str:
    p = view.get("print")
    if not isinstance(p, Mapping):
        return ""
    return str(p.get("job") or p.get("file") or "")


def _hms_errors(hms: Any) -> Iterable[str]:
    if not isinstance(hms, list):
        return ()
    return sorted(
        str(h.get("code"))
        for h in hms
        if isinstance(h, Mapping) and str(h.get("severity", "")).lower() in ERROR_HMS
    )
