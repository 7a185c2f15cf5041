"""Bambu printers' SSDP-style ``NOTIFY`` announcements (protocol/BAMBU.md sections 9 and 10).

A printer on the LAN broadcasts ``NOTIFY * HTTP/1.1`` to UDP 2021 and multicasts it to
239.255.255.250:1990. The packet comes from anyone on the network, so nothing in it is trusted:
its size is capped, bytes that are not UTF-8 are replaced, header names are matched without regard
to case, and every value is checked before it becomes a field (a serial is letters and digits, a
host is an IP address, a name is printable and short). A packet that is not a Bambu printer's
``ssdp:alive`` announcement parses to None, never an exception.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from bambu_edge.printers.bambu.models import model_from_serial, model_from_ssdp

MAX_PACKET = 2048  # a real announcement is ~500 bytes; anything far larger is not a printer
MAX_HEADERS = 40
MAX_VALUE = 128
MAX_NAME = 64
DEFAULT_MAX_AGE_S = 1800  # the printers' own value (Cache-Control: max-age=1800)
MIN_MAX_AGE_S = 1
MAX_MAX_AGE_S = 24 * 3600

BAMBU_NT = "urn:bambulab-com:device:3dprinter:1"
REQUEST_LINE = "NOTIFY * HTTP/1.1"

_SERIAL_RE = re.compile(r"[0-9A-Za-z]{6,32}")
_MAX_AGE_RE = re.compile(r"(?:^|[,;\s])max-age\s*=\s*\"?(\d{1,9})\"?", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Announcement:
    """What one printer said about itself. ``model`` is spelled as in the printer object ("X1C"),
    None when neither ``DevModel`` nor the serial's prefix is known; ``host`` is the ``Location``
    when that is an IP address, else None (the caller falls back to the packet's source)."""

    serial: str
    model: str | None
    name: str | None
    host: str | None
    max_age_s: int
    dev_model: str | None = None  # the raw DevModel code, for the log
    firmware: str | None = None
    connect: str | None = None  # "lan" or "cloud"
    bind: str | None = None  # "free" or "occupied"


def headers(packet: bytes) -> tuple[str, dict[str, str]] | None:
    """(request line, {lower-cased header name: value}) of an HTTP-style datagram; None when it is
    too large or has no header lines. The first occurrence of a repeated header wins."""
    if not isinstance(packet, bytes | bytearray) or len(packet) > MAX_PACKET:
        return None
    text = bytes(packet).decode("utf-8", errors="replace")
    head = re.split(r"\r?\n\r?\n", text, maxsplit=1)[0]
    lines = re.split(r"\r?\n", head)
    first = lines[0].strip()
    found: dict[str, str] = {}
    for line in lines[1 : MAX_HEADERS + 1]:
        name, sep, value = line.partition(":")
        name = name.strip().lower()
        if not sep or not name or name in found:
            continue
        found[name] = value.strip()
    return first, found


def _text(value: str | None, limit: int = MAX_VALUE) -> str | None:
    """A header value fit to show: printable, not empty, at most ``limit`` characters."""
    if value is None:
        return None
    value = "".join(ch for ch in value if ch.isprintable() and ch != "\ufffd").strip()
    return value[:limit] or None


def _ip(value: str | None) -> str | None:
    """``Location`` as an IP address (the printers send a bare address; a URL's host counts too)."""
    if not value or len(value) > MAX_VALUE:
        return None
    host = value.strip()
    if "://" in host:
        host = host.split("://", 1)[1]
        host = re.split(r"[/?#]", host, maxsplit=1)[0]
        if host.startswith("["):
            host = host[1:].partition("]")[0]
        elif host.count(":") == 1:
            host = host.partition(":")[0]
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        return None
    if addr.is_unspecified or addr.is_multicast:
        return None
    return str(addr)


def _max_age(cache_control: str | None) -> int:
    if cache_control:
        m = _MAX_AGE_RE.search(cache_control)
        if m:
            return min(max(int(m.group(1)), MIN_MAX_AGE_S), MAX_MAX_AGE_S)
    return DEFAULT_MAX_AGE_S


def parse_notify(packet: bytes) -> Announcement | None:
    """A Bambu printer's ``ssdp:alive`` NOTIFY, or None for anything else (M-SEARCH, byebye, other
    devices' announcements, garbage)."""
    parsed = headers(packet)
    if parsed is None:
        return None
    first, h = parsed
    if " ".join(first.split()).upper() != REQUEST_LINE:
        return None
    if h.get("nt", "").lower() != BAMBU_NT:
        return None
    if h.get("nts", "ssdp:alive").lower() != "ssdp:alive":
        return None
    serial = h.get("usn", "")
    if serial.lower().startswith("uuid:"):  # not what printers send; tolerated if it holds a serial
        serial = serial[5:]
    if not _SERIAL_RE.fullmatch(serial):
        return None
    serial = serial.upper()
    dev_model = _text(h.get("devmodel.bambu.com"), 32)
    return Announcement(
        serial=serial,
        model=model_from_ssdp(dev_model) or model_from_serial(serial),
        name=_text(h.get("devname.bambu.com"), MAX_NAME),
        host=_ip(h.get("location")),
        max_age_s=_max_age(h.get("cache-control")),
        dev_model=dev_model,
        firmware=_text(h.get("devversion.bambu.com"), 32),
        connect=_text(h.get("devconnect.bambu.com"), 16),
        bind=_text(h.get("devbind.bambu.com"), 16),
    )
