"""Commands to a Bambu printer (BAMBU.md section 6): pure builders, validation and reply matching.

A request is ``{"<type>": {"sequence_id": "<string>", "command": "<cmd>", ...params}}``; the printer
answers on the report topic with the same type, command and sequence_id plus ``result`` and maybe
``reason`` (section 3), so replies are matched on (type, command, sequence_id).
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bambu_edge.printers.bambu import models
from bambu_edge.printers.bambu.storage import RemotePathError, normalize_remote_path
from bambu_edge.printers.base import CommandError

ACTIONS = ("pause", "resume", "stop", "speed", "light", "gcode")
MAX_GCODE_BYTES = 4096  # of the whole param, trailing newline included
LIGHT_NODE = "chamber_light"
SPEED_LEVELS = {1: "silent", 2: "standard", 3: "sport", 4: "ludicrous"}
STATUS_COMMANDS = frozenset({"push_status", "push_info"})  # printer pushes, never replies
PRINT_ACTION = "print"  # start a file on the printer's storage (project_file or gcode_file)
PRINT_FILE_SUFFIXES = (".gcode.3mf", ".3mf", ".gcode")  # longest first

# project_file switches (BAMBU.md section 6) and what we send when the caller does not say.
PRINT_OPTIONS: dict[str, bool] = {
    "timelapse": False,
    "bed_leveling": True,
    "flow_cali": True,
    "vibration_cali": True,
    "layer_inspect": True,
    "use_ams": True,
}
# Section 13.1: HAB spells it bed_leveling, OBA bed_levelling; HAB's is what works for its users.
BED_LEVELING_KEY = "bed_leveling"
BED_TYPE = "auto"
# Section 13.4: file:///sdcard/<path> for the legacy models, ftp:///<path> for newer ones.
LEGACY_URL_PREFIX = "file:///sdcard"
FTP_URL_PREFIX = "ftp://"
# gcode_file takes an absolute path on the printer (section 6; X1 may need /mnt/sdcard, unconfirmed).
GCODE_FILE_ROOT = "/sdcard"
MAX_SUBTASK_NAME = 128
MAX_AMS_MAPPING = 64
MAX_PLATE = 1000
# Values allowed in ams_mapping: -1 unused, AMS trays 0-103 (local-printer-api: 0-103), AMS HT
# 128-135, 254 external spool (section 6).
AMS_TRAY_VALUES = frozenset({-1, 254, *range(0, 104), *range(128, 136)})

ReplyKey = tuple[str, str, str]


@dataclass(frozen=True)
class Command:
    kind: str  # top-level type: print, system, pushing, info
    command: str
    payload: dict[str, Any]
    qos: int = 0

    @property
    def sequence_id(self) -> str:
        return self.payload[self.kind]["sequence_id"]

    @property
    def key(self) -> ReplyKey:
        """What the printer's reply will carry: (type, command, sequence_id)."""
        return (self.kind, self.command, self.sequence_id)


class SequenceIds:
    """Unique, increasing string ids for one link. A random start keeps ids from colliding with a
    previous run of the daemon whose replies may still be in flight."""

    def __init__(self, start: int | None = None):
        self._it = itertools.count(start if start is not None else random.randint(10_000, 900_000))

    def next(self) -> str:
        return str(next(self._it))


def _msg(kind: str, command: str, seq: str, qos: int = 0, **params: Any) -> Command:
    return Command(kind, command, {kind: {"sequence_id": seq, "command": command, **params}}, qos)


# --- internal requests (the link sends these itself) ----------------------------------------------


def pushall(seq: str) -> Command:
    """Ask for a full report (BAMBU.md section 4); its answer is a push_status with msg 0."""
    return _msg("pushing", "pushall", seq, version=1, push_target=1)


def push_start(seq: str) -> Command:
    # Old firmware that silently stopped pushing resumes on this (BAMBU.md section 2).
    return _msg("pushing", "start", seq)


def get_version(seq: str) -> Command:
    return _msg("info", "get_version", seq)


# --- user actions -----------------------------------------------------------------------------------


def build(action: str, params: Mapping[str, Any], seq: str, *, model: str | None = None) -> Command:
    """A user action from the API -> the exact message the printer expects.
    CommandError('bad_request') in plain words when the action or its parameters are wrong.
    ``model`` (the printer's) decides the project_file url scheme."""
    if action == PRINT_ACTION:
        return print_file(seq, params, model=model)
    if action in ("pause", "resume", "stop"):
        # The slicer sends these with QoS 1, and OBA documents "param": "".
        return _msg("print", action, seq, qos=1, param="")
    if action == "speed":
        level = params.get("level")
        if isinstance(level, bool) or not isinstance(level, int) or level not in SPEED_LEVELS:
            raise CommandError(
                "bad_request", "'level' must be 1 (silent), 2 (standard), 3 (sport) or 4 (ludicrous)"
            )
        return _msg("print", "print_speed", seq, param=str(level))
    if action == "light":
        on = params.get("on")
        if not isinstance(on, bool):
            raise CommandError("bad_request", "'on' must be true or false")
        return _msg(
            "system",
            "ledctrl",
            seq,
            led_node=LIGHT_NODE,
            led_mode="on" if on else "off",
            # The printer ignores ledctrl without the timing fields, even for plain on/off.
            led_on_time=500,
            led_off_time=500,
            loop_times=0,
            interval_time=0,
        )
    if action == "gcode":
        return _msg("print", "gcode_line", seq, param=gcode_param(params.get("line")))
    raise CommandError("bad_request", f"unknown action {action!r}; use {', '.join(ACTIONS)}")


def gcode_param(line: Any) -> str:
    """G-code lines as the printer wants them: joined by newlines, ending in one."""
    if not isinstance(line, str):
        raise CommandError("bad_request", "'line' must be G-code text, e.g. M104 S200")
    text = line.replace("\r\n", "\n").strip("\n")  # a pasted Windows text file is fine
    if not text.strip():
        raise CommandError("bad_request", "the G-code is empty")
    for part in text.split("\n"):
        # Tabs, NUL, escape sequences, lone CRs or invisible Unicode would reach the firmware's
        # parser as-is; nothing a person types into a G-code box needs them.
        if not part.isprintable():
            raise CommandError(
                "bad_request", "the G-code may contain only printable characters and line breaks"
            )
    param = text + "\n"
    if len(param.encode()) > MAX_GCODE_BYTES:
        raise CommandError("bad_request", f"the G-code is longer than {MAX_GCODE_BYTES} bytes")
    return param


# --- printing a file on the printer's storage ----------------------------------------------------


def storage_path(path: Any) -> str:
    """An absolute, normalised path on the printer's storage (no '..', no control characters)."""
    try:
        return normalize_remote_path(path)
    except RemotePathError as e:
        raise CommandError("bad_request", f"'path': {e}") from None


def project_file_url(path: str, model: str | None) -> str:
    """``file:///sdcard/cache/x.3mf`` on legacy models, ``ftp:///cache/x.3mf`` on newer ones."""
    path = storage_path(path)
    prefix = LEGACY_URL_PREFIX if models.capabilities(model).legacy_sdcard else FTP_URL_PREFIX
    return prefix + path


def print_options(options: Any) -> dict[str, bool]:
    """The project_file switches: defaults, overridden by the caller's booleans."""
    if options is None:
        options = {}
    if not isinstance(options, Mapping):
        raise CommandError("bad_request", "'options' must be an object")
    unknown = sorted(set(options) - set(PRINT_OPTIONS))
    if unknown:
        raise CommandError(
            "bad_request", f"unknown print option {unknown[0]!r}; use {', '.join(PRINT_OPTIONS)}"
        )
    out = dict(PRINT_OPTIONS)
    for key, value in options.items():
        if not isinstance(value, bool):
            raise CommandError("bad_request", f"print option {key!r} must be true or false")
        out[key] = value
    return out


def _ams_mapping(mapping: Any) -> list[int]:
    if mapping is None:
        return []
    if not isinstance(mapping, list | tuple) or len(mapping) > MAX_AMS_MAPPING:
        raise CommandError("bad_request", f"'ams_mapping' must be a list of at most {MAX_AMS_MAPPING} trays")
    for v in mapping:
        if isinstance(v, bool) or not isinstance(v, int) or v not in AMS_TRAY_VALUES:
            raise CommandError(
                "bad_request",
                "'ams_mapping' entries must be tray indices: 0-103 (AMS), 128-135 (AMS HT), "
                "254 (external spool) or -1 (unused)",
            )
    return list(mapping)


def file_stem(path: str) -> str:
    """The file name without its folder and print-file extension: "/cache/Cube.gcode.3mf" -> "Cube"."""
    base = path.rsplit("/", 1)[-1]
    for ext in PRINT_FILE_SUFFIXES:
        if base.lower().endswith(ext):
            return base[: -len(ext)]
    return base


def _subtask_name(name: Any, path: str) -> str:
    if name is None:
        name = file_stem(path) or "print"
    if not isinstance(name, str) or not name.strip() or not name.isprintable():
        raise CommandError("bad_request", "'subtask_name' must be printable text")
    return name.strip()[:MAX_SUBTASK_NAME]


def project_file(
    seq: str,
    *,
    path: str,
    plate: int,
    model: str | None,
    subtask_name: str | None = None,
    md5: str = "",
    options: Mapping[str, Any] | None = None,
    ams_mapping: list[int] | tuple[int, ...] | None = (),
) -> Command:
    """Print plate ``plate`` of the 3MF at ``path`` on the printer's storage (BAMBU.md section 6)."""
    path = storage_path(path)
    if isinstance(plate, bool) or not isinstance(plate, int) or not 1 <= plate <= MAX_PLATE:
        raise CommandError("bad_request", f"'plate' must be a plate number from 1 to {MAX_PLATE}")
    if not isinstance(md5, str) or (
        md5 and (len(md5) != 32 or not all(c in "0123456789abcdefABCDEF" for c in md5))
    ):
        raise CommandError("bad_request", "'md5' must be 32 hex digits or empty")
    opts = print_options(options)
    return _msg(
        "print",
        "project_file",
        seq,
        param=f"Metadata/plate_{plate}.gcode",
        url=project_file_url(path, model),
        subtask_name=_subtask_name(subtask_name, path),
        # Ids of a cloud task; a LAN print has none and sends "0" (section 6).
        project_id="0",
        profile_id="0",
        task_id="0",
        subtask_id="0",
        md5=md5,
        timelapse=opts["timelapse"],
        bed_type=BED_TYPE,
        **{BED_LEVELING_KEY: opts["bed_leveling"]},
        flow_cali=opts["flow_cali"],
        vibration_cali=opts["vibration_cali"],
        layer_inspect=opts["layer_inspect"],
        use_ams=opts["use_ams"],
        ams_mapping=_ams_mapping(ams_mapping),
    )


def gcode_file(seq: str, *, path: str) -> Command:
    """Print a plain G-code file on the printer's storage: an absolute printer path (section 6)."""
    return _msg("print", "gcode_file", seq, param=GCODE_FILE_ROOT + storage_path(path))


def print_file(seq: str, params: Mapping[str, Any], *, model: str | None) -> Command:
    """The ``print`` action: ``{"path", "plate", "subtask_name", "md5", "options", "ams_mapping"}``;
    a .3mf goes by project_file, a .gcode by gcode_file."""
    path = storage_path(params.get("path"))
    lower = path.lower()
    if lower.endswith(".3mf"):
        return project_file(
            seq,
            path=path,
            plate=params.get("plate", 1),
            model=model,
            subtask_name=params.get("subtask_name"),
            md5=params.get("md5", ""),
            options=params.get("options"),
            ams_mapping=params.get("ams_mapping", ()),
        )
    if lower.endswith(".gcode"):
        return gcode_file(seq, path=path)
    raise CommandError("bad_request", "only .3mf (sliced) and .gcode files can be printed")


# --- replies ----------------------------------------------------------------------------------------


def reply_key(message: Any) -> ReplyKey | None:
    """(type, command, sequence_id) of a command reply; None for status pushes and junk."""
    if not isinstance(message, dict) or len(message) != 1:
        return None
    ((kind, body),) = message.items()
    if not isinstance(body, dict):
        return None
    command = body.get("command")
    if not isinstance(command, str) or command in STATUS_COMMANDS:
        return None
    # ams_get_rfid is documented with "sequenceId" (BAMBU.md section 3).
    seq = body.get("sequence_id", body.get("sequenceId"))
    if isinstance(seq, bool) or not isinstance(seq, str | int):
        return None
    return (kind, command, str(seq))


@dataclass(frozen=True)
class Reply:
    accepted: bool
    reason: str | None  # the printer's own words when it refused, if any


def reply_result(message: Mapping[str, Any]) -> Reply:
    """The outcome of a matched reply. ``result`` is compared case-insensitively ("success",
    "SUCCESS"); a reply without one is an acknowledgement: refusals always say "failed"."""
    body = next(iter(message.values()))
    result = body.get("result")
    accepted = result is None or (isinstance(result, str) and result.strip().lower() == "success")
    reason = body.get("reason")
    if accepted or reason is None or isinstance(reason, dict | list):
        return Reply(accepted, None)
    text = str(reason).strip()[:200]
    return Reply(accepted, text if text and text.lower() != "success" else None)
