"""Configuration: YAML -> frozen dataclasses, ``BAMBU_EDGE_*`` environment overrides, validation.

Every error names the file, the line and the key, so a user editing ``config.yaml`` on a Pi over SSH
knows exactly what to fix. Access codes are kept out of ``repr`` so they never reach a log line.

Each top-level section belongs to a component, which declares it as a ``SectionSpec`` (its key and a
parser from a ``ConfigNode`` to its typed, frozen section). ``parse_config`` is handed the specs to
validate (the daemon's come from its component list, ``app.config_sections()``), so this module
never imports a component. ``web`` and ``printers`` are defined here: much of the daemon reads them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bambu_edge.camera.source import CameraSetting, CameraSettingError, parse_camera
from bambu_edge.power.setting import PowerSetting, PowerSettingError, parse_power
from bambu_edge.printers.bambu.models import MODELS

DEFAULT_CONFIG_PATH = "/etc/bambu-edge/config.yaml"
ENV_PREFIX = "BAMBU_EDGE_"
PRINTER_ID_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62})$")
FINGERPRINT_RE = re.compile(r"^(?:[0-9A-Fa-f]{2}:?){31}[0-9A-Fa-f]{2}$")
LOG_LEVELS = ("debug", "info", "warning", "error")


class ConfigError(Exception):
    """A config problem, located: ``file:line: key: message``."""

    def __init__(self, message: str, *, file: str | None = None, line: int | None = None, key: str = ""):
        self.file, self.line, self.key, self.message = file, line, key, message
        where = file or "<config>"
        if line is not None:
            where += f":{line}"
        super().__init__(f"{where}: {key + ': ' if key else ''}{message}")


@dataclass(frozen=True)
class TlsConfig:
    ca_file: str | None = None
    fingerprint: str | None = None  # SHA-256 of the printer's certificate, hex


@dataclass(frozen=True)
class PrinterConfig:
    id: str
    name: str
    type: str
    host: str
    serial: str = ""
    access_code: str = field(default="", repr=False)
    mqtt_port: int = 8883
    ftps_port: int = 990
    port: int = 7125  # moonraker
    api_key: str | None = field(default=None, repr=False)  # moonraker
    model: str | None = None  # overrides detection
    tls: TlsConfig = field(default_factory=TlsConfig)
    camera: str | CameraSetting = "auto"  # a string (auto, off, rtsps, jpeg6000, a URL) or a mapping
    power: PowerSetting | None = None  # DESIGN §3 ``power:`` (bambu_edge/power/setting.py)
    # moonraker: the light command, G-code for on and off or a Moonraker power device (docs/klipper.md)
    light_on: str | None = None
    light_off: str | None = None
    light_power_device: str | None = None
    read_only: bool = True  # declared in YAML: the dashboard may not edit it


@dataclass(frozen=True)
class WebConfig:
    bind: str = "0.0.0.0"
    http_port: int | None = 3000  # null: no plain-HTTP redirect listener
    https_port: int = 3443
    tls_cert: str | None = None
    tls_key: str | None = None
    session_hours: int = 24 * 7


@dataclass(frozen=True)
class Config:
    data_dir: Path = Path("/var/lib/bambu-edge")
    log_level: str = "info"
    web: WebConfig = field(default_factory=WebConfig)
    printers: tuple[PrinterConfig, ...] = ()
    source: str | None = None  # file the config came from
    # Every other component's typed section, by its top-level key (see SectionSpec).
    sections: Mapping[str, Any] = field(default_factory=dict, hash=False)

    @property
    def db_path(self) -> Path:
        return self.data_dir / "bambu-edge.db"

    def section(self, key: str) -> Any:
        """The parsed section ``key``; None when it was not parsed (a Config built in code)."""
        if key in _FIELD_SECTIONS:
            return getattr(self, key)
        return self.sections.get(key)


_FIELD_SECTIONS = frozenset({"web", "printers"})  # kept as Config fields: much of the daemon reads them


# --- YAML with line numbers ------------------------------------------------------------------------


class _Doc:
    """A parsed YAML document plus the line of every key path, for error messages."""

    def __init__(self, text: str, file: str | None):
        self.file = file
        self.lines: dict[tuple, int] = {}
        self._constructor = yaml.constructor.SafeConstructor()
        try:
            node = yaml.compose(text, Loader=yaml.SafeLoader)
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            raise ConfigError(
                f"not valid YAML: {getattr(e, 'problem', None) or e}",
                file=file,
                line=mark.line + 1 if mark else None,
            ) from None
        self.data = self._convert(node, ()) if node is not None else {}

    def _convert(self, node: yaml.Node, path: tuple) -> Any:
        self.lines.setdefault(path, node.start_mark.line + 1)  # a key names its own line, not its value's
        if isinstance(node, yaml.MappingNode):
            out: dict[str, Any] = {}
            for k, v in node.value:
                key = k.value if isinstance(k, yaml.ScalarNode) else str(k)
                if key in out:
                    raise ConfigError(
                        "duplicate key", file=self.file, line=k.start_mark.line + 1, key=_dotted((*path, key))
                    )
                self.lines[(*path, key)] = k.start_mark.line + 1
                out[key] = self._convert(v, (*path, key))
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self._convert(v, (*path, i)) for i, v in enumerate(node.value)]
        try:
            return self._constructor.construct_object(node, deep=True)
        except yaml.YAMLError as e:
            raise self.error(path, f"bad value: {e}") from None

    def error(self, path: tuple, message: str) -> ConfigError:
        p = path
        while p and p not in self.lines:
            p = p[:-1]
        return ConfigError(message, file=self.file, line=self.lines.get(p), key=_dotted(path))


def _dotted(path: tuple) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


# --- field readers -----------------------------------------------------------------------------------


class ConfigNode:
    """One value of the document and where it is: what a section parser reads. Its errors name
    the file, line and dotted key like every other config error."""

    def __init__(self, doc: _Doc, path: tuple, value: Any):
        self.doc, self.path, self.value = doc, path, value

    def mapping(self, allowed: set[str] | frozenset[str]) -> Section:
        """The value as a mapping of ``allowed`` keys (missing or null: empty); any other key is
        refused, naming the allowed ones."""
        return Section(self.doc, self.path, self.value, set(allowed))

    def items(self, what: str) -> list[ConfigNode]:
        """The value as a list (missing or null: empty)."""
        if self.value is None:
            return []
        if not isinstance(self.value, list):
            raise self.error(f"must be a list of {what}")
        return [ConfigNode(self.doc, (*self.path, i), v) for i, v in enumerate(self.value)]

    def error(self, message: str) -> ConfigError:
        return self.doc.error(self.path, message)


@dataclass(frozen=True)
class SectionSpec:
    """A component's top-level config key and the parser of its section. The parser gets the
    node even when the key is missing (value None), so it alone decides the defaults."""

    key: str
    parse: Callable[[ConfigNode], Any]


class Section:
    def __init__(self, doc: _Doc, path: tuple, data: Any, allowed: set[str]):
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise doc.error(path, "must be a mapping of keys to values")
        unknown = sorted(set(data) - allowed)
        if unknown:
            raise doc.error((*path, unknown[0]), f"unknown key (allowed: {', '.join(sorted(allowed))})")
        self.doc, self.path, self.data = doc, path, data

    def err(self, key: str, message: str) -> ConfigError:
        return self.doc.error((*self.path, key), message)

    def node(self, key: str) -> ConfigNode:
        """The value under ``key``, to read as a nested section or list."""
        return ConfigNode(self.doc, (*self.path, key), self.data.get(key))

    def bool(self, key: str, default: bool) -> bool:
        v = self.data.get(key, default)
        if v is None and key not in self.data:
            return default
        if not isinstance(v, bool):
            raise self.err(key, "must be true or false")
        return v

    def str(self, key: str, default: str | None = None, *, required: bool = False) -> str | None:
        v = self.data.get(key, default)
        if v is None:
            if required:
                raise self.err(key, "is required")
            return None
        if isinstance(v, bool) or not isinstance(v, str | int | float):
            raise self.err(key, f"must be a string, not {type(v).__name__}")
        return str(v)

    def secret(self, key: str, *, required: bool) -> str | None:
        v = self.data.get(key)
        if v is None:
            if required:
                raise self.err(key, "is required")
            return None
        try:
            return check_access_code(v)
        except ValueError as e:
            raise self.err(key, str(e)) from None

    def int(
        self, key: str, default: int | None, *, lo: int = 1, hi: int = 65535, nullable: bool = False
    ) -> int | None:
        v = self.data.get(key, default)
        if v is None and (nullable or key not in self.data):
            return None if nullable else default
        if isinstance(v, bool) or not isinstance(v, int):
            raise self.err(key, f"must be a whole number from {lo} to {hi}")
        if not lo <= v <= hi:
            raise self.err(key, f"must be from {lo} to {hi}, got {v}")
        return v

    def choice(self, key: str, default: str, choices: tuple[str, ...]) -> str:
        v = self.str(key, default)
        if v not in choices:
            raise self.err(key, f"must be one of {', '.join(choices)}; got {v!r}")
        return v


# --- printer field rules (shared with the dashboard's "add printer": one set of rules) ---------------

SERIAL_RE = re.compile(r"[0-9A-Za-z]{6,32}")
MAX_NAME = 100
MAX_HOST = 253
MAX_ACCESS_CODE = 64


def _camera(s: Section) -> str | CameraSetting:
    """DESIGN §3 ``camera:``; strings stay strings (the dashboard's printers store them)."""
    value = s.data.get("camera", "auto")
    try:
        setting = parse_camera(value)
    except CameraSettingError as e:
        raise s.doc.error((*s.path, "camera", *([e.key] if e.key else [])), str(e)) from None
    return value if isinstance(value, str) else setting


def check_name(name: Any) -> str:
    if not isinstance(name, str) or not name.strip():
        raise ValueError("must be a name, e.g. X1C left")
    name = name.strip()
    if len(name) > MAX_NAME or not name.isprintable():
        raise ValueError(f"must be one line of at most {MAX_NAME} characters")
    return name


def check_host(host: Any) -> str:
    if not isinstance(host, str) or not host.strip() or any(c.isspace() for c in host):
        raise ValueError(f"{host!r} is not a host name or address")
    if len(host) > MAX_HOST or not host.isprintable() or "/" in host:
        raise ValueError(f"{host!r} is not a host name or address")
    return host


def check_serial(serial: Any) -> str:
    # Case is kept: MQTT topics carry the serial and are case-sensitive (BAMBU.md section 2).
    if not isinstance(serial, str) or not SERIAL_RE.fullmatch(serial):
        raise ValueError("must be the printer's serial number (letters and digits)")
    return serial


def check_access_code(code: Any) -> str:
    if not isinstance(code, str):
        # YAML reads 01234567 as an octal number: the code would silently change.
        raise ValueError('must be a quoted string, e.g. access_code: "01234567"')
    if not code:
        raise ValueError("must not be empty")
    if len(code) > MAX_ACCESS_CODE or not code.isprintable() or any(c.isspace() for c in code):
        raise ValueError(f"must be at most {MAX_ACCESS_CODE} characters, without spaces")
    return code


def check_api_key(key: Any) -> str:
    """Moonraker's API key (its ``/access/api_key``): one word of printable characters."""
    if not isinstance(key, str) or not key or len(key) > 128:
        raise ValueError("must be Moonraker's API key (at most 128 characters)")
    if not key.isprintable() or any(c.isspace() for c in key):
        raise ValueError("must be Moonraker's API key, without spaces")
    return key


def check_model(model: Any) -> str | None:
    """A Bambu model name from MODELS (any case), or None to detect it; the canonical spelling."""
    if model is None:
        return None
    if isinstance(model, str):
        for known in MODELS:
            if model.strip().lower() == known.lower():
                return known
    raise ValueError(f"must be one of {', '.join(MODELS)}, or left out to detect it")


def _checked(s: Section, key: str, check: Any, value: Any) -> Any:
    try:
        return check(value)
    except ValueError as e:
        raise s.err(key, str(e)) from None


def _printer(node: ConfigNode) -> PrinterConfig:
    s = node.mapping(
        {
            "id",
            "name",
            "type",
            "host",
            "serial",
            "access_code",
            "mqtt_port",
            "ftps_port",
            "port",
            "api_key",
            "model",
            "tls",
            "camera",
            "power",
            "light",
        }
    )
    pid = s.str("id", required=True)
    if not PRINTER_ID_RE.match(pid):
        raise s.err("id", f"{pid!r} must be lower-case letters, digits and '-' (e.g. x1c-left)")
    ptype = s.choice("type", "bambu", ("bambu", "moonraker"))
    host = _checked(s, "host", check_host, s.str("host", required=True))
    serial = s.str("serial", required=ptype == "bambu") or ""
    if ptype == "bambu":
        _checked(s, "serial", check_serial, serial)
    access_code = s.secret("access_code", required=ptype == "bambu") or ""
    model = s.str("model")
    if ptype == "bambu":
        model = _checked(s, "model", check_model, model)
    t = s.node("tls").mapping({"ca_file", "fingerprint"})
    ca_file = t.str("ca_file")
    if ca_file is not None and not Path(ca_file).is_file():
        raise t.err("ca_file", f"file {ca_file!r} does not exist")
    fingerprint = t.str("fingerprint")
    if fingerprint is not None:
        if not FINGERPRINT_RE.match(fingerprint):
            raise t.err("fingerprint", "must be a SHA-256 fingerprint: 64 hex digits, colons allowed")
        fingerprint = fingerprint.replace(":", "").lower()
    camera = _camera(s)
    light = s.node("light").mapping({"on_gcode", "off_gcode", "power_device"})
    if ptype != "moonraker" and s.data.get("light") is not None:
        raise s.err("light", "only Klipper printers (type: moonraker) take a light setting")
    try:
        power = parse_power(s.data.get("power"))
    except PowerSettingError as e:
        raise s.doc.error(
            (*s.path, "power", *e.key.split(".")) if e.key else (*s.path, "power"), str(e)
        ) from None
    return PrinterConfig(
        id=pid,
        name=_checked(s, "name", check_name, s.str("name", pid)),
        type=ptype,
        host=host,
        serial=serial,
        access_code=access_code,
        mqtt_port=s.int("mqtt_port", 8883),
        ftps_port=s.int("ftps_port", 990),
        port=s.int("port", 7125),
        api_key=s.secret("api_key", required=False),
        model=model,
        tls=TlsConfig(ca_file=ca_file, fingerprint=fingerprint),
        camera=camera,
        power=power,
        light_on=light.str("on_gcode"),
        light_off=light.str("off_gcode"),
        light_power_device=light.str("power_device"),
    )


def parse_printers(node: ConfigNode) -> tuple[PrinterConfig, ...]:
    if not node.value:  # "printers:" left empty, or [] / {}
        return ()
    printers = tuple(_printer(item) for item in node.items("printers"))
    seen: set[str] = set()
    for i, p in enumerate(printers):
        if p.id in seen:
            raise node.doc.error((*node.path, i, "id"), f"printer id {p.id!r} is used twice")
        seen.add(p.id)
    return printers


def parse_web(node: ConfigNode) -> WebConfig:
    w = node.mapping(
        {
            "bind",
            "http_port",
            "https_port",
            "tls_cert",
            "tls_key",
            "session_hours",
        }
    )
    web = WebConfig(
        bind=w.str("bind", "0.0.0.0"),
        http_port=w.int("http_port", 3000, lo=0, nullable=True) or None,
        https_port=w.int("https_port", 3443, lo=0),
        tls_cert=w.str("tls_cert"),
        tls_key=w.str("tls_key"),
        session_hours=w.int("session_hours", 24 * 7, lo=1, hi=24 * 365),
    )
    if (web.tls_cert is None) != (web.tls_key is None):
        raise w.err(
            "tls_cert" if web.tls_cert is None else "tls_key",
            "tls_cert and tls_key go together: set both or neither",
        )
    for key in ("tls_cert", "tls_key"):
        value = getattr(web, key)
        if value is not None and not Path(value).is_file():
            raise w.err(key, f"file {value!r} does not exist")
    return web


WEB_SECTION = SectionSpec("web", parse_web)
PRINTERS_SECTION = SectionSpec("printers", parse_printers)
# What is validated when no component list is given (the sections every daemon has).
BUILTIN_SECTIONS: tuple[SectionSpec, ...] = (WEB_SECTION, PRINTERS_SECTION)


def parse_config(
    text: str,
    file: str | None = None,
    env: Mapping[str, str] | None = None,
    sections: Sequence[SectionSpec] = BUILTIN_SECTIONS,
) -> Config:
    """Parse and validate ``text``: ``data_dir``, ``log_level`` and the ``sections`` (any other
    top-level key is refused)."""
    keys = [spec.key for spec in sections]
    if len(set(keys)) != len(keys) or {"data_dir", "log_level"} & set(keys):
        raise ValueError(f"config sections must have distinct keys of their own: {keys}")
    doc = _Doc(text, file)
    _apply_env(doc, os.environ if env is None else env)
    top = Section(doc, (), doc.data, {"data_dir", "log_level", *keys})
    parsed = {spec.key: spec.parse(top.node(spec.key)) for spec in sections}
    data_dir = top.str("data_dir", "/var/lib/bambu-edge")
    return Config(
        data_dir=Path(data_dir),
        log_level=top.choice("log_level", "info", LOG_LEVELS),
        web=parsed.pop("web", WebConfig()),
        printers=parsed.pop("printers", ()),
        source=file,
        sections=parsed,
    )


def default_section(spec: SectionSpec) -> Any:
    """The section ``spec`` parses from a config that leaves it out."""
    return spec.parse(ConfigNode(_Doc("", None), (spec.key,), None))


def load_config(
    path: str | os.PathLike[str],
    env: Mapping[str, str] | None = None,
    sections: Sequence[SectionSpec] = BUILTIN_SECTIONS,
) -> Config:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("file not found", file=str(p)) from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read: {e}", file=str(p)) from None
    return parse_config(text, str(p), env, sections)


def config_path_from_env(explicit: str | None = None) -> str:
    return explicit or os.environ.get(ENV_PREFIX + "CONFIG") or DEFAULT_CONFIG_PATH


# --- environment overrides --------------------------------------------------------------------------

_ENV_SCALARS = {
    "DATA_DIR": ("data_dir",),
    "LOG_LEVEL": ("log_level",),
    "WEB_BIND": ("web", "bind"),
    "WEB_HTTP_PORT": ("web", "http_port"),
    "WEB_HTTPS_PORT": ("web", "https_port"),
    "WEB_TLS_CERT": ("web", "tls_cert"),
    "WEB_TLS_KEY": ("web", "tls_key"),
}


def _apply_env(doc: _Doc, env: Mapping[str, str]) -> None:
    """``BAMBU_EDGE_WEB_HTTPS_PORT=8443``, ``BAMBU_EDGE_PRINTER_X1C_LEFT_ACCESS_CODE=...``.

    Values are parsed as YAML scalars (so ports become ints), except secrets, which stay strings.
    """
    if not isinstance(doc.data, dict):
        return
    for name, value in env.items():
        if not name.startswith(ENV_PREFIX):
            continue
        rest = name[len(ENV_PREFIX) :]
        if rest in _ENV_SCALARS:
            path = _ENV_SCALARS[rest]
            target = doc.data
            for part in path[:-1]:
                target = target.setdefault(part, {}) if isinstance(target, dict) else {}
            if isinstance(target, dict):
                target[path[-1]] = _env_scalar(value)
                doc.lines.pop(path, None)
            continue
        if rest.startswith("PRINTER_"):
            for i, p in enumerate(doc.data.get("printers") or []):
                if not isinstance(p, dict) or not isinstance(p.get("id"), str):
                    continue
                prefix = "PRINTER_" + p["id"].upper().replace("-", "_") + "_"
                if rest.startswith(prefix):
                    key = rest[len(prefix) :].lower()
                    p[key] = value if key in ("access_code", "api_key") else _env_scalar(value)
                    doc.lines.pop(("printers", i, key), None)


def _env_scalar(value: str) -> Any:
    try:
        return yaml.safe_load(value) if value.strip() else None
    except yaml.YAMLError:
        return value
