"""Another unit and a Moonraker printer on the LAN, as real zeroconf: run inside a test's network
namespace (``python -m tests.integration.mdns_peer ADDRESS [MOONRAKER_PORT]``). It announces both services, prints
each other ``_bambu-edge._tcp`` / ``_https._tcp`` record it resolves as a JSON line, withdraws the unit
when it reads ``bye`` and exits at the end of its input."""

from __future__ import annotations

import asyncio
import json
import socket
import sys

from zeroconf import IPVersion, ServiceStateChange, Zeroconf
from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf

UNIT = "_bambu-edge._tcp.local."
HTTPS = "_https._tcp.local."
MOONRAKER = "_moonraker._tcp.local."


async def main(address: str, moonraker_port: int = 7125) -> None:
    aiozc = AsyncZeroconf(ip_version=IPVersion.V4Only)
    packed = [socket.inet_aton(address)]
    unit = AsyncServiceInfo(
        UNIT,
        f"Farm B.{UNIT}",
        addresses=packed,
        port=3443,
        properties={"node": "farm-b", "name": "Farm B", "version": "9.9.9", "api": "/api"},
        server="farm-b.local.",
    )
    # As Moonraker's [zeroconf] component announces itself (instance "<name> @ <host>").
    moonraker = AsyncServiceInfo(
        MOONRAKER,
        f"Voron @ voron.{MOONRAKER}",
        addresses=packed,
        port=moonraker_port,
        properties={"uuid": "0f1e2d3c", "https_port": "", "version": "v0.9.3-1"},
        server="voron.local.",
    )
    for info in (unit, moonraker):
        await (await aiozc.async_register_service(info))
    print(json.dumps({"registered": True}), flush=True)

    pending: set[asyncio.Task[None]] = set()

    def on_change(zeroconf: Zeroconf, service_type: str, name: str, state_change: ServiceStateChange) -> None:
        if state_change is not ServiceStateChange.Removed and name != unit.name:  # not its own
            task = asyncio.ensure_future(resolve(service_type, name))
            pending.add(task)
            task.add_done_callback(pending.discard)

    async def resolve(service_type: str, name: str) -> None:
        info = AsyncServiceInfo(service_type, name)
        if await info.async_request(aiozc.zeroconf, 3000):
            props = {k.decode(): (v or b"").decode() for k, v in (info.properties or {}).items()}
            record = {
                "type": service_type,
                "name": name,
                "addresses": info.parsed_addresses(),
                "port": info.port,
            }
            print(json.dumps({**record, "properties": props}), flush=True)

    browser = AsyncServiceBrowser(aiozc.zeroconf, [UNIT, HTTPS], handlers=[on_change])
    loop = asyncio.get_running_loop()
    while line := await loop.run_in_executor(None, sys.stdin.readline):
        if line.strip() == "bye":
            await (await aiozc.async_unregister_service(unit))
            print(json.dumps({"bye": True}), flush=True)
    await browser.async_cancel()
    await aiozc.async_close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], *(int(p) for p in sys.argv[2:3])))
