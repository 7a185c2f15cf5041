"""Network namespaces a test makes (root only): a veth pair between two of them, so mDNS runs
between real sockets without a packet reaching any network but the test's own.

``NetNs.call(fn)`` runs ``fn`` on a fresh thread that has entered the namespace: the sockets it
opens and the processes it starts live there."""

from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")
CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def can_make_namespaces() -> str | None:
    """Why namespaces cannot be made here, or None."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None:
        return "iproute2 (ip) is not installed"
    return None


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=10)


@dataclass
class NetNs:
    name: str
    address: str  # the veth end's IPv4 address

    def run(self, *args: str) -> None:
        _ip("netns", "exec", self.name, *args)

    def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        result: dict[str, Any] = {}

        def body() -> None:
            fd = os.open(f"/var/run/netns/{self.name}", os.O_RDONLY)
            try:
                if _libc.setns(fd, CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), "setns failed")
            finally:
                os.close(fd)
            try:
                result["value"] = fn(*args, **kwargs)
            except BaseException as e:
                result["error"] = e

        thread = threading.Thread(target=body, name=f"netns-{self.name}")
        thread.start()
        thread.join()
        if "error" in result:
            raise result["error"]
        return result["value"]


class VethPair:
    """Two namespaces joined by a veth pair on 10.213.<n>.0/24, multicast routed over it."""

    def __init__(self, subnet: int = 213):
        tag = uuid.uuid4().hex[:6]
        self.a = NetNs(f"be-a-{tag}", f"10.{subnet}.7.1")
        self.b = NetNs(f"be-b-{tag}", f"10.{subnet}.7.2")
        self._veth = (f"bea{tag}", f"beb{tag}")

    def __enter__(self) -> VethPair:
        try:
            for ns in (self.a, self.b):
                _ip("netns", "add", ns.name)
            _ip("link", "add", self._veth[0], "type", "veth", "peer", "name", self._veth[1])
            for ns, dev in ((self.a, self._veth[0]), (self.b, self._veth[1])):
                _ip("link", "set", dev, "netns", ns.name)
                ns.run("ip", "link", "set", "lo", "up")
                ns.run("ip", "addr", "add", f"{ns.address}/24", "dev", dev)
                ns.run("ip", "link", "set", dev, "multicast", "on", "up")
                ns.run("ip", "route", "add", "224.0.0.0/4", "dev", dev)
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        for ns in (self.a, self.b):  # deleting a namespace deletes its end of the veth pair too
            subprocess.run(["ip", "netns", "del", ns.name], capture_output=True, timeout=10)
