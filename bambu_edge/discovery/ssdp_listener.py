"""UDP listeners for Bambu printers' SSDP announcements (protocol/BAMBU.md section 9).

One socket per configured port, bound on all addresses: printers broadcast to 255.255.255.255:2021
and multicast to 239.255.255.250:1990. SO_REUSEADDR and SO_REUSEPORT let Bambu Studio (or another
listener) on the same host bind the same ports; broadcast and multicast datagrams reach every such
socket. Joining the multicast group can fail (no multicast route): that is logged and reported,
and the socket still hears broadcasts and unicast.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from bambu_edge.printers.bambu.ssdp import MAX_PACKET, Announcement, parse_notify

log = logging.getLogger(__name__)

SSDP_GROUP = "239.255.255.250"

# (announcement, source address, epoch seconds, monotonic seconds)
OnAnnouncement = Callable[[Announcement, str, float, float], None]


def open_socket(port: int, bind: str = "") -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if hasattr(socket, "SO_REUSEPORT"):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)  # a flood waits in no big queue
        sock.bind((bind, port))
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


def join_group(sock: socket.socket, group: str = SSDP_GROUP, interface: str = "0.0.0.0") -> None:
    """Join ``group`` on ``interface`` (0.0.0.0: the one the kernel routes the group to); OSError
    when there is none."""
    mreq = socket.inet_aton(group) + socket.inet_aton(interface)
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, listener: SsdpListener):
        self.listener = listener

    def datagram_received(self, data: bytes, addr: tuple) -> None:
        self.listener.received(data, addr[0])

    def error_received(self, exc: Exception) -> None:
        log.debug("SSDP socket error: %s", exc)


@dataclass
class SsdpListener:
    """Listens on ``ports``; every Bambu printer's announcement goes to ``on_announcement``."""

    ports: tuple[int, ...]
    on_announcement: OnAnnouncement
    interface: str = "0.0.0.0"  # where the multicast group is joined
    bound: list[int] = field(default_factory=list)
    errors: dict[int, str] = field(default_factory=dict)  # port -> why it is not listened on
    multicast_error: str | None = None
    packets: int = 0
    announcements: int = 0
    _transports: list[asyncio.DatagramTransport] = field(default_factory=list)

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        for port in self.ports:
            try:
                sock = open_socket(port)
            except OSError as e:
                self.errors[port] = f"cannot listen on UDP port {port}: {e.strerror or e}"
                log.error("SSDP: %s", self.errors[port])
                continue
            try:
                join_group(sock, interface=self.interface)
            except OSError as e:
                self.multicast_error = f"cannot join {SSDP_GROUP} (no multicast route?): {e.strerror or e}"
                log.warning("SSDP: port %d: %s; broadcasts are still heard", port, self.multicast_error)
            transport, _ = await loop.create_datagram_endpoint(lambda: _Protocol(self), sock=sock)
            self._transports.append(transport)
            self.bound.append(port)
        if self.bound:
            log.info("SSDP: listening for printers on UDP %s", ", ".join(map(str, self.bound)))

    def received(self, data: bytes, source: str) -> None:
        self.packets += 1
        if len(data) > MAX_PACKET:
            return
        announcement = parse_notify(data)
        if announcement is None:
            return
        self.announcements += 1
        self.on_announcement(announcement, source, time.time(), time.monotonic())

    async def stop(self) -> None:
        for transport in self._transports:
            transport.close()
        self._transports.clear()
