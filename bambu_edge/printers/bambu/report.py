"""Bambu report folding: ``BambuState`` is the generic ``PrinterState`` (printers/state.py) fed with
decoded MQTT messages from a Bambu printer.

The seam: ``PrinterState`` owns the view, the link state and the change sets; this subclass keeps
``raw`` (the merged contents of the printer's ``print`` object) and says which sections a Bambu
view has and how a message rebuilds them (``fold``). Another protocol (Moonraker) subclasses
``PrinterState`` the same way with its own folding.

Messages (protocol/BAMBU.md section 4): a ``push_status`` with ``msg == 0`` is a full report and
replaces ``raw`` (so an AMS tray given as just ``{"id": "0"}`` is an empty slot); anything else is a
delta, merged into ``raw`` (printers/bambu/merge.py). ``info.get_version`` replies feed model
detection and the firmware version. Every other message (command replies, ``mc_print`` log lines)
leaves the state alone: the link matches replies itself.

Cost: ``raw`` and view snapshots are never mutated, and only the view sections whose inputs changed
are rebuilt: for a delta, those its keys touch; for a full report, those whose inputs serialise
differently from last time (orjson, in C). The job's identity is rebuilt only when its keys move.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from bambu_edge.printers.bambu import models
from bambu_edge.printers.bambu.merge import MAX_RAW_BYTES, bounded, merge
from bambu_edge.printers.bambu.sections import (
    BUILDERS,
    IDENTITY_KEYS,
    SECTIONS,
    SECTIONS_BY_KEY,
    build_identity,
    empty_sections,
)
from bambu_edge.printers.state import PrinterState

STATUS_COMMAND = "push_status"
VERSION_COMMAND = "get_version"

_MISSING_SIG = "\x00missing"  # tells an absent key from null in full-report input signatures


class BambuState(PrinterState):
    """Live state of one Bambu printer. ``raw`` is a snapshot like the view: replaced, never
    modified, so callers may keep it, but must not modify it."""

    def __init__(self, id: str, name: str, serial: str = "", model: str | None = None):
        self.raw: dict[str, Any] = {}
        self._version_model: str | None = None  # from get_version
        self._raw_size = 2
        self._input_sigs: dict[str, bytes | None] = {}
        self.full_report = False  # the last message folded was a full report (push_status msg 0)
        super().__init__(id, name, serial, model)

    def empty_sections(self) -> dict[str, Any]:
        return empty_sections()

    def detected_model(self) -> str | None:
        return self._version_model or models.model_from_serial(self.serial)

    def fold(self, msg: object) -> dict[str, Any] | None:
        if type(msg) is not dict and not isinstance(msg, Mapping):
            return None
        new_sections: dict[str, Any] = {}
        applied = False
        self.full_report = False
        report = msg.get("print")
        if (type(report) is dict or isinstance(report, Mapping)) and report.get("command") == STATUS_COMMAND:
            new_sections = self._fold_status(report)
            applied = True
        info = msg.get("info")
        if info is not None and isinstance(info, Mapping) and info.get("command") == VERSION_COMMAND:
            version = self._fold_version(info)
            if version is not None:
                new_sections.update(version)
                applied = True
        return new_sections if applied else None

    def _fold_status(self, report: Mapping[str, Any]) -> dict[str, Any]:
        """Fold one push_status into ``raw``; return the rebuilt view sections."""
        msg_kind = report.get("msg")
        full = self.full_report = type(msg_kind) is int and msg_kind == 0
        clean, size = bounded(report)
        if type(clean) is not dict:
            clean = {}
        if full:
            raw = clean
            self._raw_size = size
            dirty = self._changed_sections(raw)
        else:
            raw = merge(self.raw, clean)
            self._raw_size += size  # an upper bound of the growth
            dirty = {}  # a dict: ordered like the delta's keys, so change sets are deterministic
            for k in clean:
                hit = SECTIONS_BY_KEY.get(k)
                if hit:
                    for section in hit:
                        dirty[section] = None
            sigs = self._input_sigs
            for section in dirty:
                sigs[section] = None
            if self._raw_size > MAX_RAW_BYTES:
                raw, self._raw_size = bounded(raw)
                dirty = dict.fromkeys(SECTIONS)
                sigs.clear()
        self.raw = raw
        if full or len(dirty) == len(SECTIONS) or not IDENTITY_KEYS.isdisjoint(clean):
            self.identity = build_identity(raw)
        out = {}
        for section in dirty:
            builder = BUILDERS[section]
            try:
                out[section] = builder(raw)
            except Exception:  # builders are defensive; this is the last line
                self._warn(f"could not build the {section} view", exc_info=True)
                out[section] = builder({})
        return out

    def _changed_sections(self, raw: dict[str, Any]) -> list[str]:
        """Sections whose inputs differ from the last full report's (type-exact, via orjson)."""
        dirty = []
        for section, (_builder, keys) in SECTIONS.items():
            try:
                sig = orjson.dumps([raw.get(k, _MISSING_SIG) for k in keys])
            except (orjson.JSONEncodeError, TypeError):
                sig = None
            if sig is None or sig != self._input_sigs.get(section):
                dirty.append(section)
            self._input_sigs[section] = sig
        return dirty

    def _fold_version(self, info: Mapping[str, Any]) -> dict[str, Any] | None:
        """Model and firmware from a get_version reply; None if the reply carries no module list."""
        result = info.get("result")
        if result is not None and not (isinstance(result, str) and result.lower() == "success"):
            return None
        modules = info.get("module")
        if not isinstance(modules, list):
            return None
        modules = modules[:64]
        detected = models.model_from_version(modules)
        if detected:
            self._version_model = detected
        return {"model": self._model_now(), "firmware": models.firmware_from_version(modules)}
