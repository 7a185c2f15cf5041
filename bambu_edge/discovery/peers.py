"""Other units and Moonraker printers found by mDNS, from what their service records say.

Records come from anyone on the LAN: TXT values are bytes of any length and encoding, so each is
decoded, cut and checked before it is shown. No I/O here; ``mdns.py`` resolves the records.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from bambu_edge.config import PRINTER_ID_RE

BAMBU_EDGE_TYPE = "_bambu-edge._tcp.local."
HTTPS_TYPE = "_https._tcp.local."
MOONRAKER_TYPE = (
    "_moonraker._tcp.local."  # Moonraker's [zeroconf] component (moonraker/components/zeroconf.py)
)
MAX_PEERS = 64
MAX_TEXT = 64

TxtRecord = Mapping[bytes, bytes | None]


@dataclass(frozen=True, slots=True)
class Peer:
    """One resolved service: a unit (``node`` set) or a Moonraker printer."""

    service: str  # the full service instance name: the key records are added and removed under
    name: str
    host: str
    port: int
    version: str | None
    node: str | None = None

    def node_json(self) -> dict[str, Any]:
        """An item of ``GET /api/discovery/nodes`` (DESIGN §4)."""
        return {
            "node": self.node,
            "name": self.name,
            "host": self.host,
            "port": self.port,
            "version": self.version,
        }

    def moonraker_json(self, configured_hosts: set[str]) -> dict[str, Any]:
        return {
            "name": self.name,
            "host": self.host,
            "port": self.port,
            "version": self.version,
            "configured": self.host in configured_hosts,
        }


def text(value: bytes | str | None, limit: int = MAX_TEXT) -> str | None:
    """A TXT value or name label fit to show: printable, not empty, at most ``limit`` characters."""
    if value is None:
        return None
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    cleaned = "".join(ch for ch in value if ch.isprintable() and ch != "\ufffd").strip()
    return cleaned[:limit] or None


def instance_label(service: str, service_type: str) -> str:
    """``Garage._bambu-edge._tcp.local.`` -> ``Garage``."""
    return service[: -len(service_type) - 1] if service.endswith("." + service_type) else service


def first_ipv4(addresses: Iterable[str]) -> str | None:
    for a in addresses:
        try:
            ip = ipaddress.ip_address(a)
        except ValueError:
            continue
        if ip.version == 4 and not ip.is_unspecified and not ip.is_multicast:
            return str(ip)
    return None


def _txt(properties: TxtRecord, key: str) -> bytes | None:
    value = properties.get(key.encode())
    return value if isinstance(value, bytes) else None


def peer_from_record(
    service_type: str, service: str, properties: TxtRecord, addresses: Iterable[str], port: int | None
) -> Peer | None:
    """A unit (``_bambu-edge._tcp``) or Moonraker printer (``_moonraker._tcp``), or None when the
    record is not usable (no IPv4 address or port, a unit without a valid node id)."""
    host = first_ipv4(addresses)
    if host is None or not isinstance(port, int) or not 0 < port < 65536:
        return None
    label = text(instance_label(service, service_type)) or host
    version = text(_txt(properties, "version"), 32)
    if service_type == BAMBU_EDGE_TYPE:
        node = text(_txt(properties, "node"))
        if node is None or not PRINTER_ID_RE.fullmatch(node):
            return None
        name = text(_txt(properties, "name")) or label
        return Peer(service=service, name=name, host=host, port=port, version=version, node=node)
    if service_type == MOONRAKER_TYPE:
        return Peer(service=service, name=label, host=host, port=port, version=version)
    return None


class PeerTable:
    """Resolved services by instance name, at most ``limit`` (the oldest dropped first)."""

    def __init__(self, limit: int = MAX_PEERS):
        self.limit = limit
        self._by_service: dict[str, Peer] = {}

    def put(self, peer: Peer) -> None:
        if self._by_service.pop(peer.service, None) is None and len(self._by_service) >= self.limit:
            del self._by_service[next(iter(self._by_service))]
        self._by_service[peer.service] = peer

    def remove(self, service: str) -> None:
        self._by_service.pop(service, None)

    def peers(self) -> list[Peer]:
        return sorted(self._by_service.values(), key=lambda p: (p.name.lower(), p.service))

    def __len__(self) -> int:
        return len(self._by_service)
