"""This unit: ``node: {id, name}`` (DESIGN §3). The id names the unit to other units (mDNS TXT
``node``, and the farm's printer objects); it defaults to the host name, made fit for an id."""

from __future__ import annotations

import re
import socket
from dataclasses import dataclass

from bambu_edge.component import Component
from bambu_edge.config import PRINTER_ID_RE, Config, ConfigNode, SectionSpec, check_name, default_section

FALLBACK_ID = "bambu-edge"


@dataclass(frozen=True)
class NodeConfig:
    id: str
    name: str


def id_from_hostname(hostname: str) -> str:
    """``Pi-Garage.local`` -> ``pi-garage``: the first label, lower case, other characters as '-'."""
    label = hostname.split(".", 1)[0].lower()
    cleaned = re.sub(r"[^a-z0-9-]+", "-", label).strip("-")[:63].strip("-")
    return cleaned if PRINTER_ID_RE.fullmatch(cleaned) else FALLBACK_ID


def parse_node(node: ConfigNode) -> NodeConfig:
    s = node.mapping({"id", "name"})
    node_id = s.str("id")
    if node_id is None:
        node_id = id_from_hostname(socket.gethostname())
    elif not PRINTER_ID_RE.fullmatch(node_id):
        raise s.err("id", "must be lower-case letters, digits and '-' (at most 63), e.g. garage")
    name = s.str("name")
    try:
        name = node_id if name is None else check_name(name)
    except ValueError as e:
        raise s.err("name", str(e)) from None
    return NodeConfig(id=node_id, name=name)


NODE_SECTION = SectionSpec("node", parse_node)


def node_of(config: Config) -> NodeConfig:
    """This unit's identity as configured (the section's defaults for a Config built in code): for
    the components that stamp it on what they show (printer objects, history records)."""
    section = config.section(NODE_SECTION.key)
    return section if isinstance(section, NodeConfig) else default_section(NODE_SECTION)


class NodeComponent(Component):
    """Without I/O (it cannot fail): the unit's identity for the components that announce it."""

    name = "node"
    optional = True
    config_section = NODE_SECTION

    @property
    def node(self) -> NodeConfig:
        return self.ctx.section
