"""WebSocket bytes per minute per dashboard client while 10 printers print.

The real daemon with 10 virtual printers (a mix of X1/H2 full reports and P1/A1 deltas, 1 report a
second each, all printing). Dashboards are Chromium pages on the overview, each reaching the daemon
through its own byte-counting TCP relay, so the count is what crosses the wire to that browser:
TLS records, WebSocket framing (no permessage-deflate: the daemon frames each event once for every
client and does not compress, web/ws.py), and the page's own API requests. Chromium's own log
(CDP ``Network.webSocketFrameReceived``) gives the frames and their decoded size besides.

Baseline, side by side in the same run: the MQTT bytes the daemon receives from the printers
meanwhile (the daemon's MQTT connections also go through a counting relay). Also shown: a bare
client with only the WebSocket (aiohttp, ``compress=0``), through its own relay.

    python bench/ws_bytes.py [--seconds 60] [--printers 10] [--clients 2]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _farm import CountingRelay, chromium, dashboard_tls, farm, kb

LIVE = (
    "() => { const c = [...document.querySelectorAll('[data-testid=printer-card]')];"
    " return c.length >= N && c.every((e) => e.dataset.linkState === 'connected'); }"
)


class Frames:
    def __init__(self) -> None:
        self.count = 0
        self.payload = 0
        self.counting = False

    def on_frame(self, e: dict) -> None:
        if self.counting:
            self.count += 1
            self.payload += len(e["response"].get("payloadData", "").encode())


async def main(args: argparse.Namespace) -> int:
    port = None
    async with farm(args.printers, printing=True, count_mqtt=True) as f, chromium() as browser:
        port = int(f.base.rsplit(":", 1)[1])
        relays: list[CountingRelay] = []
        frames: list[Frames] = []
        for _ in range(args.clients):
            relay = CountingRelay("127.0.0.1", port)
            await relay.start()
            relays.append(relay)
            ctx = await browser.new_context(ignore_https_errors=True)
            await ctx.add_cookies([f.cookie()])
            page = await ctx.new_page()
            cdp = await ctx.new_cdp_session(page)
            await cdp.send("Network.enable")
            fr = Frames()
            cdp.on("Network.webSocketFrameReceived", fr.on_frame)
            frames.append(fr)
            await page.goto(f"https://127.0.0.1:{relay.port}/")
            await page.wait_for_function(LIVE.replace("N", str(args.printers)), timeout=30_000)

        bare_relay = CountingRelay("127.0.0.1", port)
        await bare_relay.start()
        bare = {"frames": 0, "payload": 0, "counting": False}

        async def bare_client() -> None:
            async with (
                aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=dashboard_tls())) as http,
                http.ws_connect(
                    f"https://127.0.0.1:{bare_relay.port}/api/ws",
                    headers={"Authorization": f"Bearer {f.token}"},
                    compress=0,
                ) as ws,
            ):
                async for msg in ws:
                    if bare["counting"]:
                        bare["frames"] += 1
                        bare["payload"] += len(msg.data.encode())

        bare_task = asyncio.create_task(bare_client())
        await asyncio.sleep(5)  # snapshots delivered, pages settled

        mqtt0 = f.mqtt_relay.down
        wire0 = [r.down for r in relays]
        bare0 = bare_relay.down
        for fr in frames:
            fr.counting = True
        bare["counting"] = True
        await asyncio.sleep(args.seconds)
        for fr in frames:
            fr.counting = False
        bare["counting"] = False
        mqtt = f.mqtt_relay.down - mqtt0
        wire = [r.down - w for r, w in zip(relays, wire0, strict=True)]
        bare_wire = bare_relay.down - bare0
        bare_task.cancel()
        with contextlib.suppress(BaseException):
            await bare_task
        for r in [*relays, bare_relay]:
            await r.stop()

    per_min = 60.0 / args.seconds
    print(f"{args.printers} printers printing, {args.seconds:g} s measured, figures per minute:")
    print(f"  baseline: MQTT the daemon received (TLS, all printers)  {kb(mqtt * per_min)}")
    for i, (w, fr) in enumerate(zip(wire, frames, strict=True)):
        print(
            f"  Chromium client {i + 1}: on the wire                    {kb(w * per_min)}"
            f"   ({fr.count * per_min:.0f} frames, {kb(fr.payload * per_min).strip()} decoded)"
        )
    avg = sum(wire) / len(wire)
    print(f"  bare client, no compression: on the wire             {kb(bare_wire * per_min)}"
          f"   ({bare['frames'] * per_min:.0f} frames, {kb(bare['payload'] * per_min).strip()} payload)")  # fmt: skip
    print(f"ratio Chromium client / MQTT received   {avg / mqtt:.3f}x")
    print(
        f"ratio Chromium client / bare client     {avg / bare_wire:.2f}x  (the page's own requests besides the frames)"
    )
    return 0


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--printers", type=int, default=10)
    ap.add_argument("--clients", type=int, default=2)
    raise SystemExit(asyncio.run(main(ap.parse_args())))
