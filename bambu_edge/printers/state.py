"""Live state of one printer, whatever it speaks: the API view (DESIGN.md section 4) and the change
sets that move it on. Pure logic, no I/O; nothing here raises on input.

``PrinterState`` is the container: identity (id, name, serial, model), the link state
(``set_link``), the cached view and ``_commit``, which installs new view sections and returns only
what changed (``_dict_diff``), so the web socket hub can forward it as is. What a printer's messages
mean is not known here: a protocol's *folding* is a subclass that says which sections its view
has (``empty_sections``), how it detects the model (``detected_model``) and how one decoded
message changes those sections (``fold``). The Bambu folding is ``printers.bambu.report.BambuState``;
a Moonraker one subclasses the same way and reuses everything else (view shape, link details,
change sets, the job identity slot, warning rate limits).

The view and every section in it are snapshots: replaced, never modified, so callers may keep them
(events carry them), but must not modify them.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping
from typing import Any

from bambu_edge.printers import values
from bambu_edge.printers.base import NO_IDENTITY, WARN_INTERVAL_S, JobIdentity

log = logging.getLogger(__name__)

LINK_KEYS = ("state", "since", "error")
_MISSING = object()


def _dict_diff(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """What to apply to ``old`` to get ``new``, two dicts known to differ: nested dicts recurse,
    everything else (lists included) is sent whole.

    Plain ``==`` decides (in C, cheap). It cannot tell 1 from 1.0 or True, but section builders
    give every field one type, and for the link (caller-supplied values) ``_commit`` installs
    ``old + changes``, so the view is always exactly what a client gets by applying change sets.
    """
    changes = {}
    added = 0
    for k, v in new.items():
        o = old.get(k, _MISSING)
        if o is _MISSING:
            added += 1
            changes[k] = v
        elif o is v or o == v:
            continue
        elif type(o) is dict and type(v) is dict:
            changes[k] = _dict_diff(o, v)
        else:
            changes[k] = v
    if len(old) + added > len(new):  # a key was dropped (views never do; kept for completeness)
        for k in old.keys() - new.keys():
            changes[k] = None
    return changes


def apply_changes(view: dict[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """A new view: ``view`` with a change set from ``apply_message``/``set_link`` applied (dicts
    merge, everything else replaces). For clients that keep a copy of the view, and for tests."""
    out = dict(view)
    for k, v in changes.items():
        old = out.get(k)
        out[k] = apply_changes(old, v) if type(old) is dict and type(v) is dict else v
    return out


def _detail(v: Any) -> Any:
    """A link detail value the API can serialise."""
    if v is None or type(v) in (bool, str) or (type(v) is int and -values.SAFE_INT < v < values.SAFE_INT):
        return v
    if type(v) is float:
        return v if math.isfinite(v) else None
    return str(v)[:256]


class PrinterState:
    """The view of one printer and its change sets. Subclasses fold a protocol's messages into it."""

    def __init__(self, id: str, name: str, serial: str = "", model: str | None = None):
        self.id = id
        self.name = name
        self.serial = serial
        self.identity: JobIdentity = NO_IDENTITY  # set by the folding when the job's ids change
        self.updated_at: float | None = None
        self._model_override = model
        self._last_warning = -math.inf
        view: dict[str, Any] = {
            "id": id,
            "name": name,
            "model": self._model_now(),
            "serial": serial,
            "link": {"state": "offline", "since": None, "error": None},
        }
        view.update(self.empty_sections())
        view["updated_at"] = None
        self._view = view

    # --- what a protocol's folding provides ---------------------------------------------------

    def empty_sections(self) -> dict[str, Any]:
        """The view sections the printer's messages fill, in view order, as they read before any."""
        return {}

    def detected_model(self) -> str | None:
        """The model as the printer's messages (or its serial) tell it; None if unknown."""
        return None

    def fold(self, msg: object) -> dict[str, Any] | None:
        """Fold one decoded message into the protocol's own state; return the view sections it
        rebuilt (new snapshots; unchanged ones may be included), or None if it was not a report."""
        return None

    # --- public -------------------------------------------------------------------------------

    @property
    def model(self) -> str | None:
        return self._view["model"]

    @model.setter
    def model(self, value: str | None) -> None:
        """A configured model; None returns to detection."""
        self._model_override = value
        self._view = {**self._view, "model": self._model_now()}

    def view(self) -> dict[str, Any]:
        """The printer object of DESIGN.md section 4 (cached; rebuilt only when something changed)."""
        return self._view

    def apply_message(self, msg: object, now: float | None = None) -> dict[str, Any]:
        """Apply one decoded message; return the view changes ({} if none)."""
        try:
            sections = self.fold(msg)
            if sections is None:
                return {}
            return self._commit(sections, updated=True, now=time.time() if now is None else now)
        except Exception:  # input must never take the daemon down; state stays as it was
            self._warn("ignored a message that could not be applied", exc_info=True)
            return {}

    def set_link(
        self, state: str, error: str | None = None, now: float | None = None, **details: Any
    ) -> dict:
        """Link state change (LinkState values); returns view changes.

        ``since`` keeps its time while the state stays the same. Detail keys, once given, stay in
        the view (null when a later call leaves them out), so change sets never need to delete keys.
        """
        try:
            now = time.time() if now is None else now
            old = self._view["link"]
            state = str(state)
            since = old["since"] if state == old["state"] and old["since"] is not None else now
            link: dict[str, Any] = {
                "state": state,
                "since": since,
                "error": None if error is None else str(error),
            }
            for k in old:
                if k not in link:
                    link[k] = None
            for k, v in details.items():
                if k not in LINK_KEYS:
                    link[k] = _detail(v)
            return self._commit({"link": link}, updated=False, now=now)
        except Exception:
            self._warn("link state change failed", exc_info=True)
            return {}

    # --- for the folding ----------------------------------------------------------------------

    def _model_now(self) -> str | None:
        return self._model_override or self.detected_model()

    def _warn(self, message: str, **kwargs: Any) -> None:
        t = time.monotonic()
        if t - self._last_warning >= WARN_INTERVAL_S:  # a junk stream must not flood the journal
            self._last_warning = t
            log.warning("printer %s: %s", self.id, message, **kwargs)

    def _commit(self, sections: dict[str, Any], updated: bool, now: float) -> dict[str, Any]:
        """Install new section values; return the change set against the previous view."""
        old = self._view
        changes: dict[str, Any] = {}
        replaced: dict[str, Any] = {}
        if updated:
            self.updated_at = now
            sections["updated_at"] = now
        for key, value in sections.items():
            before = old[key]
            if before is value or before == value:
                continue
            if type(before) is dict and type(value) is dict:
                changes[key] = change = _dict_diff(before, value)
                # Section builders give each field one type, so `value` is exactly old + changes.
                # Link details come from callers (True vs 1): install what clients will compute.
                replaced[key] = apply_changes(before, change) if key == "link" else value
            else:
                changes[key] = replaced[key] = value
        if replaced:
            self._view = {**old, **replaced}
        return changes
