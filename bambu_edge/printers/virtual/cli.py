"""``bambu-edge virtual-printer``: one virtual printer on a broker, until Ctrl-C."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from bambu_edge.printers.bambu import models
from bambu_edge.printers.virtual.printer import VirtualPrinter
from bambu_edge.printers.virtual.profiles import VIRTUAL_MODELS, make_serial, profile_for


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="bambu-edge virtual-printer",
        description="Run a virtual Bambu printer that speaks the LAN protocol on an MQTT broker.",
    )
    p.add_argument("--host", default="127.0.0.1", help="broker address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8883, help="broker TLS port (default 8883)")
    p.add_argument("--model", default=models.P1S, help=f"one of {', '.join(VIRTUAL_MODELS)} (default P1S)")
    p.add_argument("--serial", help="serial number (default: a new one with the model's prefix)")
    p.add_argument("--access-code", required=True, help="the broker password of user bblp")
    p.add_argument("--ca-file", help="CA that signed the broker's certificate (default: do not verify)")
    p.add_argument("--hz", type=float, default=1.0, help="reports per second (default 1)")
    p.add_argument(
        "--developer-mode",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="accept control commands (default); --no-developer-mode refuses them like 2025 firmware",
    )
    p.add_argument("--demo-prints", action="store_true", help="print demo jobs in a loop")
    p.add_argument("--demo-print-s", type=float, default=600.0, help="length of one demo print in seconds")
    p.add_argument(
        "--sdcard-dir", help="folder playing the printer's storage: print commands print the files in it"
    )
    p.add_argument(
        "--time-scale",
        type=float,
        default=1.0,
        help="print time = the file's estimate times this (default 1)",
    )
    return p


def virtual_printer_main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    try:
        profile = profile_for(args.model)
    except ValueError as e:
        print(f"bambu-edge virtual-printer: {e}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    printer = VirtualPrinter(
        args.host,
        args.port,
        args.serial or make_serial(profile.model),
        args.access_code,
        profile.model,
        args.ca_file,
        report_hz=args.hz,
        developer_mode=args.developer_mode,
        demo_prints=args.demo_prints,
        demo_print_s=args.demo_print_s,
        sdcard_dir=args.sdcard_dir,
        time_scale=args.time_scale,
    )

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await printer.start()
        print(
            f"virtual {printer.model} {printer.serial} on {args.host}:{args.port} "
            f"(topics device/{printer.serial}/...); Ctrl-C stops it",
            flush=True,
        )
        try:
            await stop.wait()
        finally:
            await printer.stop()

    try:
        asyncio.run(run())
    except (ConnectionError, OSError) as e:
        print(f"bambu-edge virtual-printer: {e}", file=sys.stderr)
        return 1
    return 0
