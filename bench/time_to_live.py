"""Time from opening the dashboard in Chromium to the first live data on screen, with 10 printers.

A logged-in user with an empty cache opens https://.../ while 10 virtual printers print. Measured in
the page (``performance.now()``, zero = navigation start) by an observer installed before any of
the page's scripts: the WebSocket snapshot's arrival, the first card showing live data (link
connected and a nozzle temperature), and all 10 cards live.

Baselines, side by side in the same run (interleaved, so both see the same machine load):
- Chromium opening a static file of the same server (``/favicon.svg``): the cost of a new TLS
  connection and one request, which no page can avoid;
- a bare Python client (aiohttp) opening a new HTTPS connection and ``/api/ws`` and reading the
  snapshot: the data was there to be had this soon.

    python bench/time_to_live.py [--printers 10] [--runs 7]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

import aiohttp
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _farm import chromium, dashboard_tls, farm

OBSERVER = """
(() => {
  const N = __N__;
  const marks = (window.__ttl = {});
  const now = () => performance.now();
  const Native = window.WebSocket;
  function Watched(...args) {
    const ws = new Native(...args);
    ws.addEventListener('open', () => { marks.ws_open ??= now(); });
    ws.addEventListener('message', () => { marks.snapshot ??= now(); });
    return ws;
  }
  Watched.prototype = Native.prototype;
  Object.assign(Watched, { CONNECTING: 0, OPEN: 1, CLOSING: 2, CLOSED: 3 });
  window.WebSocket = Watched;
  const check = () => {
    const cards = document.querySelectorAll('[data-testid=printer-card]');
    let live = 0;
    for (const c of cards) {
      if (c.dataset.linkState === 'connected' && c.querySelector('[data-testid=temp-nozzle]')?.dataset.current) live += 1;
    }
    if (live && marks.first === undefined) marks.first = now();
    if (live >= N && marks.all === undefined) { marks.all = now(); observer.disconnect(); }
  };
  const observer = new MutationObserver(check);
  observer.observe(document, { subtree: true, childList: true, attributes: true });
})();
"""


async def page_run(browser, f, n: int) -> dict[str, float]:
    ctx = await browser.new_context(ignore_https_errors=True)
    await ctx.add_cookies([f.cookie()])
    await ctx.add_init_script(OBSERVER.replace("__N__", str(n)))
    page = await ctx.new_page()
    await page.goto(f.base + "/")
    await page.wait_for_function("() => window.__ttl && window.__ttl.all !== undefined", timeout=30_000)
    marks = await page.evaluate(
        "() => ({...window.__ttl, dcl: performance.getEntriesByType('navigation')[0].domContentLoadedEventEnd})"
    )
    await ctx.close()
    return marks


async def static_run(browser, f) -> float:
    ctx = await browser.new_context(ignore_https_errors=True)
    page = await ctx.new_page()
    await page.goto(f.base + "/favicon.svg")
    t = await page.evaluate("() => performance.getEntriesByType('navigation')[0].responseEnd")
    await ctx.close()
    return t


async def python_run(f) -> float:
    t0 = time.perf_counter()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=dashboard_tls())) as http:
        async with http.ws_connect(f"{f.base}/api/ws", headers={"Authorization": f"Bearer {f.token}"}) as ws:
            msg = await ws.receive(timeout=10)
            t = time.perf_counter() - t0
            assert orjson.loads(msg.data)["type"] == "snapshot"
    return t * 1000


async def main(args: argparse.Namespace) -> int:
    rows: dict[str, list[float]] = {
        k: [] for k in ("dcl", "ws_open", "snapshot", "first", "all", "static", "py")
    }
    async with farm(args.printers, printing=True) as f, chromium() as browser:
        await page_run(browser, f, args.printers)  # warm-up: the server's first TLS handshakes, imports
        for _ in range(args.runs):
            m = await page_run(browser, f, args.printers)
            for k in ("dcl", "ws_open", "snapshot", "first", "all"):
                rows[k].append(m[k])
            rows["static"].append(await static_run(browser, f))
            rows["py"].append(await python_run(f))
    med = {k: statistics.median(v) for k, v in rows.items()}
    print(
        f"open the dashboard -> live data, {args.printers} printers printing, median of {args.runs} cold loads:"
    )
    print(f"  DOMContentLoaded                 {med['dcl']:7.1f} ms")
    print(f"  WebSocket open                   {med['ws_open']:7.1f} ms")
    print(f"  snapshot arrived                 {med['snapshot']:7.1f} ms")
    print(
        f"  first card live                  {med['first']:7.1f} ms   (min {min(rows['first']):.1f}, max {max(rows['first']):.1f})"
    )
    print(f"  all {args.printers} cards live               {med['all']:7.1f} ms")
    print("baselines, same run:")
    print(f"  Chromium, one static file (TLS + 1 request)     {med['static']:7.1f} ms")
    print(f"  Python client, new HTTPS + WS snapshot         {med['py']:7.1f} ms")
    print(f"ratio first live / static file      {med['first'] / med['static']:.1f}x")
    print(f"ratio first live / Python snapshot  {med['first'] / med['py']:.1f}x")
    return 0


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--printers", type=int, default=10)
    ap.add_argument("--runs", type=int, default=7)
    raise SystemExit(asyncio.run(main(ap.parse_args())))
