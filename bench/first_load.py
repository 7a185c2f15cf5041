"""First load of the dashboard in Chromium: bytes on the wire and number of requests (target: at most
150 KB gzipped).

A logged-in user with an empty browser cache opens https://.../ and waits until every printer card
is live (3 virtual printers). Chromium's own network log (CDP ``Network.loadingFinished``,
``encodedDataLength``: headers and body as transferred) counts every response, the WebSocket
handshake included; WebSocket frames after it are live data, not the load (see ws_bytes.py).
The login page's first load (logged out) is measured the same way.

Baseline, side by side in the same run: the same loads with compression refused
(``Accept-Encoding: identity``), i.e. the files as they are on disk. Printed as figures and ratios.

    python bench/first_load.py [--printers 3] [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _farm import chromium, farm, kb

BUDGET = 150 * 1024
LIVE = "() => { const c = [...document.querySelectorAll('[data-testid=printer-card]')];" \
    " return c.length >= N && c.every((e) => e.dataset.linkState === 'connected'" \
    " && e.querySelector('[data-testid=temp-nozzle]')?.dataset.current); }"  # fmt: skip


@dataclass
class Load:
    bytes: int = 0
    headers: int = 0  # response header bytes (estimated from the header list) within `bytes`
    requests: int = 0
    by_type: dict[str, int] = field(default_factory=dict)
    encodings: set[str] = field(default_factory=set)


async def measure(browser, f, *, logged_in: bool, identity: bool, printers: int) -> Load:
    headers = {"Accept-Encoding": "identity"} if identity else {}
    ctx = await browser.new_context(ignore_https_errors=True, extra_http_headers=headers)
    if logged_in:
        await ctx.add_cookies([f.cookie()])
    page = await ctx.new_page()
    cdp = await ctx.new_cdp_session(page)
    await cdp.send("Network.enable")
    await cdp.send("Network.setCacheDisabled", {"cacheDisabled": True})
    load = Load()
    kinds: dict[str, str] = {}

    def sent(e: dict) -> None:
        load.requests += 1
        kinds[e["requestId"]] = e.get("type", "Other")

    def received(e: dict) -> None:
        hdrs = e["response"].get("headers") or {}
        enc = {k.lower(): v for k, v in hdrs.items()}.get("content-encoding")
        load.encodings.add(enc or "none")
        load.headers += 17 + sum(len(k) + len(v) + 4 for k, v in hdrs.items())  # + status line

    def finished(e: dict) -> None:
        n = int(e.get("encodedDataLength", 0))
        load.bytes += n
        k = kinds.get(e["requestId"], "Other")
        load.by_type[k] = load.by_type.get(k, 0) + n

    def ws_created(e: dict) -> None:
        load.requests += 1  # the WebSocket handshake is one more request
        kinds[e["requestId"]] = "WebSocket"

    def ws_handshake(e: dict) -> None:
        headers_text = e["response"].get("headersText") or ""
        n = len(headers_text) or sum(len(k) + len(v) + 4 for k, v in e["response"]["headers"].items())
        load.bytes += n
        load.by_type["WebSocket"] = load.by_type.get("WebSocket", 0) + n

    cdp.on("Network.requestWillBeSent", sent)
    cdp.on("Network.responseReceived", received)
    cdp.on("Network.loadingFinished", finished)
    cdp.on("Network.webSocketCreated", ws_created)
    cdp.on("Network.webSocketHandshakeResponseReceived", ws_handshake)
    if logged_in:
        await page.goto(f.base + "/")
        await page.wait_for_function(LIVE.replace("N", str(printers)), timeout=30_000)
    else:
        await page.goto(f.base + "/")
        await page.wait_for_selector("[data-testid=login-form]", timeout=30_000)
    await page.wait_for_timeout(300)  # anything still in flight lands
    await ctx.close()
    return load


async def main(args: argparse.Namespace) -> int:
    async with farm(args.printers, printing=True) as f, chromium() as browser:
        results: dict[tuple[str, bool], list[Load]] = {}
        for _ in range(args.runs):  # interleaved, so both sides see the same machine load
            for logged_in in (True, False):
                for identity in (False, True):
                    load = await measure(
                        browser, f, logged_in=logged_in, identity=identity, printers=args.printers
                    )
                    results.setdefault(("overview" if logged_in else "login", identity), []).append(load)
    ok = True
    for page in ("overview", "login"):
        gz, raw = results[(page, False)], results[(page, True)]
        gz_b = statistics.median(x.bytes for x in gz)
        raw_b = statistics.median(x.bytes for x in raw)
        print(
            f"first load, {page} page ({'logged in, ' + str(args.printers) + ' live cards' if page == 'overview' else 'logged out'}):"
        )
        print(
            f"  compressed (as served)     {kb(gz_b)}  in {gz[0].requests} requests  encodings {sorted(gz[0].encodings)}"
        )
        print(
            f"  baseline: identity         {kb(raw_b)}  in {raw[0].requests} requests  encodings {sorted(raw[0].encodings)}"
        )
        print(f"  ratio compressed/identity  {gz_b / raw_b:.2f}x")
        hdr = statistics.median(x.headers for x in gz)
        print(
            f"  of which response headers  {kb(hdr)}  (security headers on every response), bodies {kb(gz_b - hdr)}"
        )
        print(f"  budget 150 KB: {gz_b / BUDGET:.2f}x of it -> {'met' if gz_b <= BUDGET else 'MISSED'}")
        by = ", ".join(
            f"{k} {v / 1024:.1f} KB" for k, v in sorted(gz[0].by_type.items(), key=lambda kv: -kv[1])
        )
        print(f"  by type (compressed): {by}")
        ok = ok and gz_b <= BUDGET
    return 0 if ok else 1


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--printers", type=int, default=3)
    ap.add_argument("--runs", type=int, default=3)
    raise SystemExit(asyncio.run(main(ap.parse_args())))
