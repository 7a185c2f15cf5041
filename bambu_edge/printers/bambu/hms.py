"""HMS alarms and print_error codes (protocol/BAMBU.md section 5.2).

An HMS entry arrives as ``{"attr": <u32>, "code": <u32>}``. The code string users look up in the
Bambu wiki is the four 16-bit halves in hex: ``attr>>16 _ attr&0xFFFF _ code>>16 _ code&0xFFFF``.
Severity is ``code >> 16``, the module ``attr >> 24``. ``print_error`` is one u32 shown as 4+4 hex.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

WIKI_URL = "https://wiki.bambulab.com/en/x1/troubleshooting/hmscode/{code}"

SEVERITIES: dict[int, str] = {1: "fatal", 2: "serious", 3: "common", 4: "info"}
MODULES: dict[int, str] = {0x03: "mc", 0x05: "mainboard", 0x07: "ams", 0x08: "toolhead", 0x0C: "xcam"}
OTHER_MODULE = "other"

# Plain words for the dashboard; the wiki page (``url``) has the full explanation per code.
MODULE_NAMES: dict[str, str] = {
    "mc": "Motion controller",
    "mainboard": "Mainboard",
    "ams": "AMS",
    "toolhead": "Toolhead",
    "xcam": "Camera (AI detection)",
    OTHER_MODULE: "Printer",
}
SEVERITY_WORDS: dict[str | None, str] = {
    "fatal": "fatal error",
    "serious": "serious problem",
    "common": "problem",
    "info": "notice",
    None: "problem",
}

_U32 = 0xFFFFFFFF


def _u32(value: object) -> int | None:
    """An unsigned 32-bit value from an int or a decimal string; anything else is None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and 0 < len(value) <= 12:
        try:
            value = int(value.strip(), 10)
        except ValueError:
            return None
    if isinstance(value, int) and 0 <= value <= _U32:
        return value
    return None


def hms_code(attr: int, code: int) -> str:
    return f"{attr >> 16:04X}_{attr & 0xFFFF:04X}_{code >> 16:04X}_{code & 0xFFFF:04X}"


def hms_severity(code: int) -> str | None:
    return SEVERITIES.get(code >> 16)


def hms_module(attr: int) -> str:
    return MODULES.get((attr >> 24) & 0xFF, OTHER_MODULE)


def hms_text(module: str, severity: str | None) -> str:
    return (
        f"{MODULE_NAMES.get(module, MODULE_NAMES[OTHER_MODULE])}: {SEVERITY_WORDS.get(severity, 'problem')}"
    )


def hms_url(code: str) -> str:
    return WIKI_URL.format(code=code)


def hms_entry(item: object) -> dict[str, Any] | None:
    """One API HMS object from a raw ``hms[]`` entry, or None if the entry is not a valid alarm."""
    if not isinstance(item, Mapping):
        return None
    attr, code = _u32(item.get("attr")), _u32(item.get("code"))
    if attr is None or code is None:
        return None
    text_code = hms_code(attr, code)
    severity = hms_severity(code)
    module = hms_module(attr)
    return {
        "code": text_code,
        "severity": severity,
        "module": module,
        "text": hms_text(module, severity),
        "url": hms_url(text_code),
    }


def print_error_code(value: object) -> str | None:
    """``print_error`` as ``XXXX_XXXX`` (117473286 -> ``0700_8006``); 0 or junk -> None."""
    v = _u32(value)
    if not v:
        return None
    return f"{v >> 16:04X}_{v & 0xFFFF:04X}"
