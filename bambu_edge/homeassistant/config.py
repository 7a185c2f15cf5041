"""``homeassistant: null`` (off) or ``{broker: "mqtt://host:1883" | "mqtts://host:8883", username,
password, ca_file, prefix: homeassistant}``: the broker Home Assistant's MQTT integration uses, and
its discovery prefix (an addition to DESIGN §3)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from bambu_edge.config import ConfigNode, SectionSpec

PREFIX_RE = re.compile(r"[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*")
DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883}


@dataclass(frozen=True)
class HomeAssistantConfig:
    host: str
    port: int
    tls: bool
    username: str | None = None
    password: str | None = None
    ca_file: str | None = None
    prefix: str = "homeassistant"


def parse_homeassistant(node: ConfigNode) -> HomeAssistantConfig | None:
    if node.value is None:
        return None
    s = node.mapping({"broker", "username", "password", "ca_file", "prefix"})
    url = s.str("broker", required=True) or ""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise s.err("broker", f"must be mqtt://host:port or mqtts://host:port; got {url!r}") from None
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname or parts.path not in ("", "/"):
        raise s.err("broker", f"must be mqtt://host:port or mqtts://host:port; got {url!r}")
    ca_file = s.str("ca_file")
    if ca_file is not None and not Path(ca_file).is_file():
        raise s.err("ca_file", f"{ca_file} is not a file")
    if ca_file is not None and parts.scheme != "mqtts":
        raise s.err("ca_file", "only means something with an mqtts:// broker")
    prefix = s.str("prefix", "homeassistant") or "homeassistant"
    if not PREFIX_RE.fullmatch(prefix):
        raise s.err("prefix", "must be a topic without wildcards, e.g. homeassistant")
    return HomeAssistantConfig(
        host=parts.hostname,
        port=port or DEFAULT_PORTS[parts.scheme],
        tls=parts.scheme == "mqtts",
        username=s.str("username"),
        password=s.str("password"),
        ca_file=ca_file,
        prefix=prefix,
    )


HOMEASSISTANT_SECTION = SectionSpec("homeassistant", parse_homeassistant)
