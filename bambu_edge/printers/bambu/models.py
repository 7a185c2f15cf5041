"""Which Bambu printer is this, and what can it do (protocol/BAMBU.md sections 8, 10 and 13).

Three sources name the model: the serial prefix (known before connecting), the SSDP ``DevModel``
header (discovery) and the ``info.get_version`` reply (authoritative once connected). The capability
table below drives the camera source, the ``project_file`` URL scheme and how reports are merged.
Everything that BAMBU.md section 13 lists as an open point is a module-level constant here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

X1 = "X1"
X1C = "X1C"
X1E = "X1E"
P1P = "P1P"
P1S = "P1S"
A1 = "A1"
A1_MINI = "A1 mini"
H2D = "H2D"
H2D_PRO = "H2D Pro"
H2S = "H2S"
H2C = "H2C"
P2S = "P2S"
X2D = "X2D"
A2L = "A2L"

MODELS: tuple[str, ...] = (X1, X1C, X1E, P1P, P1S, A1, A1_MINI, H2D, H2D_PRO, H2S, H2C, P2S, X2D, A2L)

# Serial number prefix -> model (section 10). 00M is shared by X1 and X1C; X1C is by far the common one,
# and get_version corrects it once connected. H2/P2/X2/A2 prefixes are UNVERIFIED (secondary docs).
SERIAL_PREFIXES: dict[str, str] = {
    "00M": X1C,
    "01S": P1P,
    "01P": P1S,
    "03W": X1E,
    "030": A1_MINI,
    "039": A1,
    "094": H2D,
    "093": H2S,
    "239": H2D_PRO,
    "31B": H2C,
    "22E": P2S,
    "20P": X2D,
    "26A": A2L,
}

# SSDP ``DevModel.bambu.com`` -> model (section 10). Upper-cased on lookup.
SSDP_MODELS: dict[str, str] = {
    "BL-P001": X1C,
    "3DPRINTER-X1-CARBON": X1C,  # one report says an X1C advertises this; captures show BL-P001
    "BL-P002": X1,
    "C11": P1P,
    "C12": P1S,
    "C13": X1E,
    "N1": A1_MINI,
    "N2S": A1,
    "O1D": H2D,
    "O1S": H2S,
    "O1E": H2D_PRO,
    "O2D": H2D_PRO,
    "O1C": H2C,
    "O1C2": H2C,
    "N7": P2S,
    "N6": X2D,
    "N9": A2L,
}

# get_version ``product_name`` without the "Bambu Lab " prefix, lower-cased -> model.
PRODUCT_NAMES: dict[str, str] = {
    "x1-carbon": X1C,
    "x1 carbon": X1C,
    "x1c": X1C,
    "x1": X1,
    "x1e": X1E,
    "p1p": P1P,
    "p1s": P1S,
    "a1": A1,
    "a1 mini": A1_MINI,
    "h2d": H2D,
    "h2d pro": H2D_PRO,
    "h2s": H2S,
    "h2c": H2C,
    "p2s": P2S,
    "x2d": X2D,
    "a2l": A2L,
}
PRODUCT_PREFIX = "bambu lab "


@dataclass(frozen=True, slots=True)
class Capabilities:
    camera: str  # "rtsps" (port 322) or "jpeg6000" (TLS JPEG frames on port 6000)
    has_chamber_sensor: bool  # False: chamber_temper is a constant placeholder (5 on P1/A1)
    legacy_sdcard: bool  # project_file url "file:///sdcard/..." instead of "ftp:///..."
    delta_reports: bool  # the printer may send msg=1 deltas rather than full reports


CAMERA_RTSPS = "rtsps"
CAMERA_JPEG6000 = "jpeg6000"

JPEG6000_MODELS = frozenset({P1P, P1S, A1, A1_MINI, A2L})  # A2L: UNVERIFIED
NO_CHAMBER_SENSOR_MODELS = frozenset({P1P, P1S, A1, A1_MINI, A2L})  # A2L: UNVERIFIED
# Section 13.4: HAB's LEGACY_SDCARD_PRINTERS; every newer model takes ftp:///.
LEGACY_SDCARD_MODELS = frozenset({X1, X1C, X1E, P1P, P1S, A1, A1_MINI})
# OBA says the X1 series always sends full objects ...
FULL_REPORT_MODELS = frozenset({X1, X1C, X1E})
# ... but section 13.7 says to treat every model as delta-capable. Flip to trust OBA instead.
TREAT_ALL_AS_DELTA = True

# Unknown or unset model: assume the newer generation (RTSPS, ftp:///), claim no chamber sensor.
DEFAULT_CAPABILITIES = Capabilities(
    camera=CAMERA_RTSPS, has_chamber_sensor=False, legacy_sdcard=False, delta_reports=True
)


def capabilities(model: str | None) -> Capabilities:
    if model not in MODELS:
        return DEFAULT_CAPABILITIES
    return Capabilities(
        camera=CAMERA_JPEG6000 if model in JPEG6000_MODELS else CAMERA_RTSPS,
        has_chamber_sensor=model not in NO_CHAMBER_SENSOR_MODELS,
        legacy_sdcard=model in LEGACY_SDCARD_MODELS,
        delta_reports=TREAT_ALL_AS_DELTA or model not in FULL_REPORT_MODELS,
    )


def model_from_serial(serial: object) -> str | None:
    if not isinstance(serial, str) or len(serial) < 3:
        return None
    return SERIAL_PREFIXES.get(serial[:3].upper())


def model_from_ssdp(dev_model: object) -> str | None:
    if not isinstance(dev_model, str):
        return None
    return SSDP_MODELS.get(dev_model.strip().upper())


def model_from_product_name(name: object) -> str | None:
    if not isinstance(name, str):
        return None
    key = " ".join(name.split()).lower()
    if not key.startswith(PRODUCT_PREFIX):
        return None  # AMS units and hubs carry product names too ("AMS (1)", "AMS Hub")
    return PRODUCT_NAMES.get(key[len(PRODUCT_PREFIX) :])


def _modules(version: object) -> list[Mapping[str, Any]]:
    """The module list of a get_version reply: the full message, the ``info`` object, or the list."""
    if isinstance(version, Mapping):
        if isinstance(version.get("info"), Mapping):
            version = version["info"]
        version = version.get("module")  # type: ignore[union-attr]
    if not isinstance(version, list | tuple):
        return []
    return [m for m in version if isinstance(m, Mapping)]


def _legacy_model(modules: Iterable[Mapping[str, Any]]) -> str | None:
    """Section 10 fallback for firmware without product_name: the module whose hw_ver starts AP0."""
    for m in modules:
        hw = m.get("hw_ver")
        if not isinstance(hw, str) or not hw.startswith("AP0"):
            continue
        project = m.get("project_name")
        project = project if isinstance(project, str) and project else None
        if hw == "AP02":
            return X1E
        if project == "N1":
            return A1_MINI
        if hw == "AP04" and project == "C11":
            return P1P
        if hw == "AP04" and project == "C12":
            return P1S
        if hw == "AP05" and project == "N2S":
            return A1
        if hw == "AP05" and project is None:
            return X1C
    return None


def model_from_version(version: object) -> str | None:
    """Model from an ``info.get_version`` reply; ``product_name`` wins over the legacy hw_ver rule."""
    modules = _modules(version)
    ota = [m for m in modules if m.get("name") == "ota"]
    for m in ota + modules:
        model = model_from_product_name(m.get("product_name"))
        if model:
            return model
    return _legacy_model(modules)


def firmware_from_version(version: object) -> str | None:
    """The printer firmware version: ``sw_ver`` of the ``ota`` module."""
    for m in _modules(version):
        if m.get("name") == "ota":
            sw = m.get("sw_ver")
            return sw if isinstance(sw, str) and 0 < len(sw) <= 64 else None
    return None
