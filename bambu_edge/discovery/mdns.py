"""mDNS with zeroconf: advertise this unit, browse for other units and for Moonraker printers.

The unit is announced as ``_bambu-edge._tcp`` (TXT ``node``, ``name``, ``version``, ``api``) and
``_https._tcp`` (the same, plus ``path``) on its dashboard's HTTPS port, at its LAN addresses; a
dashboard bound to loopback only is not announced (nobody on the LAN could reach it). Resolved
peers land in bounded tables; zeroconf removes them when their records expire or say goodbye.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from collections.abc import Sequence
from dataclasses import dataclass

import ifaddr
from zeroconf import IPVersion, ServiceStateChange, Zeroconf
from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf

from bambu_edge.component import TaskSet
from bambu_edge.discovery.peers import (
    BAMBU_EDGE_TYPE,
    HTTPS_TYPE,
    MOONRAKER_TYPE,
    PeerTable,
    peer_from_record,
)
from bambu_edge.node import NodeConfig

log = logging.getLogger(__name__)

API_PATH = "/api"
RESOLVE_TIMEOUT_MS = 3000
MAX_RESOLVING = 8  # records being resolved at once; more are skipped until they are announced again
MAX_LABEL = 63  # a DNS label


@dataclass(frozen=True)
class Advertised:
    node: NodeConfig
    version: str
    https_port: int
    bind: str  # the dashboard's bind address


def lan_addresses(bind: str) -> list[str]:
    """Where the dashboard can be reached from the LAN: the bind address itself, or for a wildcard
    bind every IPv4 address of the host that is not loopback or link-local."""
    try:
        ip = ipaddress.ip_address(bind)
    except ValueError:
        return []
    if not ip.is_unspecified:
        return [] if ip.is_loopback or ip.version != 4 else [str(ip)]
    found: list[str] = []
    for adapter in ifaddr.get_adapters():
        for a in adapter.ips:
            if not a.is_IPv4:
                continue
            addr = ipaddress.ip_address(a.ip)
            if not (addr.is_loopback or addr.is_link_local) and str(addr) not in found:
                found.append(str(addr))
    return found


def _label(text: str) -> str:
    """Cut to a DNS label's 63 bytes without splitting a character."""
    return (
        text.encode()[:MAX_LABEL].decode("utf-8", errors="ignore").replace(".", " ").strip() or "bambu-edge"
    )


class Mdns:
    def __init__(self, unit: Advertised, tasks: TaskSet):
        self.unit = unit
        self.tasks = tasks
        self.nodes = PeerTable()
        self.moonraker = PeerTable()
        self.advertised_on: list[str] = []
        self.advertise_note: str | None = None  # why the unit is not announced
        self._aiozc: AsyncZeroconf | None = None
        self._browser: AsyncServiceBrowser | None = None
        self._infos: list[AsyncServiceInfo] = []
        self._resolving: set[str] = set()
        self._register_task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._aiozc = AsyncZeroconf(ip_version=IPVersion.V4Only)
        self._browser = AsyncServiceBrowser(
            self._aiozc.zeroconf, [BAMBU_EDGE_TYPE, MOONRAKER_TYPE], handlers=[self._on_change]
        )
        addresses = lan_addresses(self.unit.bind)
        if not addresses:
            self.advertise_note = f"not announced: the dashboard listens on {self.unit.bind} only"
            log.info("mDNS: %s", self.advertise_note)
            return
        self._infos = self._service_infos(addresses)
        self._register_task = self.tasks.spawn(self._register(), name="mdns-register")

    def _service_infos(self, addresses: Sequence[str]) -> list[AsyncServiceInfo]:
        unit = self.unit
        txt = {"node": unit.node.id, "name": unit.node.name, "version": unit.version, "api": API_PATH}
        label = _label(unit.node.name)
        packed = [socket.inet_aton(a) for a in addresses]
        server = f"bambu-edge-{unit.node.id}.local."
        return [
            AsyncServiceInfo(
                BAMBU_EDGE_TYPE,
                f"{label}.{BAMBU_EDGE_TYPE}",
                addresses=packed,
                port=unit.https_port,
                properties=txt,
                server=server,
            ),
            AsyncServiceInfo(
                HTTPS_TYPE,
                f"{_label('bambu-edge ' + unit.node.name)}.{HTTPS_TYPE}",
                addresses=packed,
                port=unit.https_port,
                properties={**txt, "path": "/"},
                server=server,
            ),
        ]

    async def _register(self) -> None:
        assert self._aiozc is not None
        for info in self._infos:
            done = await self._aiozc.async_register_service(info, allow_name_change=True)
            await done
        self.advertised_on = [socket.inet_ntoa(a) for a in self._infos[0].addresses]
        log.info(
            "mDNS: announced as %r (node %s) on %s",
            self._infos[0].name,
            self.unit.node.id,
            ", ".join(self.advertised_on),
        )

    def _on_change(
        self, zeroconf: Zeroconf, service_type: str, name: str, state_change: ServiceStateChange
    ) -> None:
        if self._aiozc is None:  # stopping
            return
        table = self.nodes if service_type == BAMBU_EDGE_TYPE else self.moonraker
        if state_change is ServiceStateChange.Removed:
            table.remove(name)
            return
        if name in self._resolving or len(self._resolving) >= MAX_RESOLVING:
            return
        self._resolving.add(name)
        self.tasks.spawn(self._resolve(service_type, name), name="mdns-resolve")

    async def _resolve(self, service_type: str, name: str) -> None:
        try:
            if self._aiozc is None:
                return
            info = AsyncServiceInfo(service_type, name)
            if not await info.async_request(self._aiozc.zeroconf, RESOLVE_TIMEOUT_MS):
                return
            peer = peer_from_record(
                service_type, name, info.properties or {}, info.parsed_addresses(), info.port
            )
            if peer is None or (peer.node is not None and peer.node == self.unit.node.id):
                return  # unusable, or this unit's own record
            table = self.nodes if service_type == BAMBU_EDGE_TYPE else self.moonraker
            table.put(peer)
        finally:
            self._resolving.discard(name)

    async def stop(self) -> None:
        aiozc, self._aiozc = self._aiozc, None
        if aiozc is None:
            return
        if self._register_task is not None:
            self._register_task.cancel()
            await asyncio.gather(self._register_task, return_exceptions=True)
        if self._browser is not None:
            await self._browser.async_cancel()
        await asyncio.wait_for(aiozc.async_close(), 3.0)  # sends goodbyes for what was announced
