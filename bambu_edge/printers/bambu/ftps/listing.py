"""Folder listings from a printer's FTP server: MLSD facts or ``LIST`` lines (Unix ``ls -l`` or
MS-DOS style), parsed into ``RemoteFile``s. Pure; names from the printer are untrusted."""

from __future__ import annotations

import calendar
import contextlib
import datetime as dt
import posixpath
import re
import unicodedata
from dataclasses import dataclass

from bambu_edge.printers.bambu.storage import TEMP_PREFIX, TEMP_SUFFIX

_TIMELAPSE_NAME = re.compile(r"^video_(\d{4})-(\d{2})-(\d{2})_(\d{2})-(\d{2})-(\d{2})\.(mp4|avi)$", re.I)


@dataclass(frozen=True, slots=True)
class RemoteFile:
    name: str
    path: str  # absolute printer path
    size: int | None
    modified: float | None  # epoch seconds (UTC); None when the listing gives no usable time
    is_dir: bool


_MONTHS = {m.lower(): i for i, m in enumerate(calendar.month_abbr) if m}
_UNIX_LINE = re.compile(
    r"^(?P<type>[-dlcbps])\S{9}\S*\s+.*?(?P<size>\d+)\s+(?P<mon>[A-Za-z]{3})\s+(?P<day>\d{1,2})\s+"
    r"(?P<when>\d{1,2}:\d{2}|\d{4})\s(?P<name>.+)$"
)
_DOS_LINE = re.compile(
    r"^(?P<date>\d{2}-\d{2}-\d{2,4})\s+(?P<time>\d{1,2}:\d{2}\s*[AaPp][Mm])\s+(?P<size><DIR>|\d+)\s+(?P<name>.+)$"
)


def _usable_name(name: str) -> bool:
    # Names come from the printer: never let one carry a separator or a control character onward.
    return (
        name not in ("", ".", "..")
        and "/" not in name
        and "\\" not in name
        and not any(unicodedata.category(c) == "Cc" for c in name)
        and not (name.startswith(TEMP_PREFIX) and name.endswith(TEMP_SUFFIX))
    )


def _unix_time(mon: str, day: str, when: str, now: dt.datetime) -> float | None:
    month = _MONTHS.get(mon.lower())
    if month is None:
        return None
    try:
        if ":" in when:  # "Nov 25 01:40": within the last half year; servers list in UTC
            hour, minute = (int(x) for x in when.split(":"))
            stamp = dt.datetime(now.year, month, int(day), hour, minute, tzinfo=dt.UTC)
            if stamp > now + dt.timedelta(days=1):
                stamp = stamp.replace(year=now.year - 1)
        else:
            stamp = dt.datetime(int(when), month, int(day), tzinfo=dt.UTC)
    except ValueError:
        return None
    return stamp.timestamp()


def _dos_time(date: str, clock: str) -> float | None:
    fmt = "%m-%d-%y %I:%M%p" if len(date) == 8 else "%m-%d-%Y %I:%M%p"
    try:
        return (
            dt.datetime.strptime(f"{date} {clock.replace(' ', '')}", fmt).replace(tzinfo=dt.UTC).timestamp()
        )
    except ValueError:
        return None


def parse_list_line(line: str, directory: str, now: dt.datetime | None = None) -> RemoteFile | None:
    """One line of a LIST reply (Unix ``ls -l`` or MS-DOS style), or None if it is not an entry."""
    now = now or dt.datetime.now(dt.UTC)
    if m := _UNIX_LINE.match(line):
        kind, name = m["type"], m["name"]
        if kind == "l":
            name = name.split(" -> ", 1)[0]
        size: int | None = int(m["size"])
        modified = _unix_time(m["mon"], m["day"], m["when"], now)
        is_dir = kind == "d"
    elif m := _DOS_LINE.match(line):
        name, is_dir = m["name"], m["size"] == "<DIR>"
        size = None if is_dir else int(m["size"])
        modified = _dos_time(m["date"], m["time"])
    else:
        return None
    if not _usable_name(name):
        return None
    return RemoteFile(name, posixpath.join(directory, name), size, modified, is_dir)


def parse_mlsd_line(line: str, directory: str) -> RemoteFile | None:
    """One line of an MLSD reply (``type=file;size=12;modify=20240101120000; name``)."""
    facts_text, sep, name = line.partition(" ")
    if not sep or not _usable_name(name):
        return None
    facts: dict[str, str] = {}
    for fact in facts_text.split(";"):
        key, eq, value = fact.partition("=")
        if eq:
            facts[key.strip().lower()] = value.strip()
    kind = facts.get("type", "").lower()
    if kind in ("cdir", "pdir"):
        return None
    size = int(facts["size"]) if facts.get("size", "").isdigit() else None
    modified = None
    if stamp := facts.get("modify"):
        with contextlib.suppress(ValueError):
            modified = dt.datetime.strptime(stamp[:14], "%Y%m%d%H%M%S").replace(tzinfo=dt.UTC).timestamp() + (
                float("0" + stamp[14:]) if stamp[14:15] == "." else 0.0
            )
    return RemoteFile(name, posixpath.join(directory, name), size, modified, kind == "dir")


def timelapse_time(f: RemoteFile) -> float:
    """When a timelapse was recorded: from its name (``video_YYYY-MM-DD_HH-MM-SS``), else its mtime."""
    if m := _TIMELAPSE_NAME.match(f.name):
        with contextlib.suppress(ValueError):
            y, mo, d, h, mi, s = (int(x) for x in m.groups()[:6])
            return dt.datetime(y, mo, d, h, mi, s, tzinfo=dt.UTC).timestamp()
    return f.modified or 0.0
