"""``farm: null`` (off) or ``{broker: "mqtts://host:8883", username, password, ca_file}`` (DESIGN §3).

``mqtts://`` verifies the broker's certificate (against ``ca_file``, else the system's CAs);
``mqtt://`` is plain TCP, allowed on a trusted LAN (the component says so in the log)."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlsplit

from bambu_edge.config import ConfigNode, SectionSpec, check_host

SCHEMES = {"mqtt": 1883, "mqtts": 8883}
MAX_SECRET = 256


@dataclass(frozen=True)
class FarmConfig:
    host: str
    port: int
    tls: bool
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    ca_file: str | None = None

    @property
    def url(self) -> str:
        """The broker's address without credentials (for logs and health)."""
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"


def parse_broker(url: str) -> tuple[str, int, bool]:
    """``mqtts://host:port`` -> (host, port, tls); ValueError in plain words."""
    parts = urlsplit(url.strip())
    if parts.scheme not in SCHEMES:
        raise ValueError(
            f"must be an mqtts:// or mqtt:// address, e.g. mqtts://garage.local:8883; got {url!r}"
        )
    if parts.username is not None or parts.password is not None:
        raise ValueError("put the user name and password in username/password, not in the address")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(f"must be only scheme, host and port, e.g. mqtts://garage.local:8883; got {url!r}")
    try:
        port = parts.port or SCHEMES[parts.scheme]
    except ValueError:
        raise ValueError(f"has a bad port: {url!r}") from None
    if not parts.hostname:
        raise ValueError(f"names no host: {url!r}")
    return check_host(parts.hostname), port, parts.scheme == "mqtts"


def _text(s, key: str, limit: int = MAX_SECRET) -> str | None:
    v = s.str(key)
    if v is not None and (not v or len(v) > limit or not v.isprintable()):
        raise s.err(key, f"must be 1 to {limit} printable characters")
    return v


def parse_farm(node: ConfigNode) -> FarmConfig | None:
    if node.value is None:
        return None
    s = node.mapping({"broker", "username", "password", "ca_file"})
    try:
        host, port, tls = parse_broker(s.str("broker", required=True) or "")
    except ValueError as e:
        raise s.err("broker", str(e)) from None
    username, password = _text(s, "username"), _text(s, "password")
    if password is not None and username is None:
        raise s.err("password", "needs a username")
    ca_file = s.str("ca_file")
    if ca_file is not None and not tls:
        raise s.err("ca_file", "is for mqtts:// brokers; this one is plain mqtt://")
    return FarmConfig(host=host, port=port, tls=tls, username=username, password=password, ca_file=ca_file)


FARM_SECTION = SectionSpec("farm", parse_farm)
