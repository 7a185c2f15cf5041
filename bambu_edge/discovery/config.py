"""``discovery: {ssdp: true, ssdp_ports: [2021, 1990], mdns: true}`` (DESIGN §3), and
``ssdp_interface``: the IPv4 address of the interface that joins the SSDP multicast group (default
0.0.0.0: the one the kernel routes the group to; tests name 127.0.0.1 so nothing leaves the host)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from bambu_edge.config import ConfigNode, SectionSpec

# The slicer's broadcast port and the multicast group's port (protocol/BAMBU.md section 9).
DEFAULT_SSDP_PORTS = (2021, 1990)
MAX_PORTS = 8


@dataclass(frozen=True)
class DiscoveryConfig:
    ssdp: bool = True
    ssdp_ports: tuple[int, ...] = DEFAULT_SSDP_PORTS
    mdns: bool = True
    ssdp_interface: str = "0.0.0.0"


def parse_discovery(node: ConfigNode) -> DiscoveryConfig:
    s = node.mapping({"ssdp", "ssdp_ports", "mdns", "ssdp_interface"})
    ports: list[int] = []
    if "ssdp_ports" in s.data:
        items = s.node("ssdp_ports").items("UDP ports")
        if not items or len(items) > MAX_PORTS:
            raise s.err("ssdp_ports", f"must list 1 to {MAX_PORTS} UDP ports, e.g. [2021, 1990]")
        for item in items:
            v = item.value
            if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= 65535:
                raise item.error("must be a UDP port from 1 to 65535")
            if v in ports:
                raise item.error(f"port {v} is listed twice")
            ports.append(v)
    interface = s.str("ssdp_interface", "0.0.0.0") or "0.0.0.0"
    try:
        ipaddress.IPv4Address(interface)
    except ValueError:
        raise s.err("ssdp_interface", f"must be an IPv4 address, e.g. 0.0.0.0; got {interface!r}") from None
    return DiscoveryConfig(
        ssdp=s.bool("ssdp", True),
        ssdp_ports=tuple(ports) if ports else DEFAULT_SSDP_PORTS,
        mdns=s.bool("mdns", True),
        ssdp_interface=interface,
    )


DISCOVERY_SECTION = SectionSpec("discovery", parse_discovery)
