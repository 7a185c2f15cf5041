"""The Moonraker link against the REAL Moonraker (PyPI, its own venv and data folder, loopback, a
free port) and a stand-in Klippy on its Unix socket (bambu_edge/printers/virtual/klippy.py: real Klippy
needs a microcontroller, see docs/klipper.md)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bambu_edge.printers.backoff import Backoff
from bambu_edge.printers.base import CommandOutcome, PrinterUpdate
from bambu_edge.printers.moonraker.link import MoonrakerLink
from bambu_edge.printers.moonraker.settings import MoonrakerSettings
from bambu_edge.printers.virtual.moonraker import MoonrakerServer, klippy_ready
from tests.integration.waiting import eventually


class Recorder:
    def __init__(self) -> None:
        self.updates: list[PrinterUpdate] = []
        self.outcomes: dict[str, CommandOutcome] = {}

    def on_update(self, printer_id: str, update: PrinterUpdate) -> None:
        self.updates.append(update)

    def on_command(self, printer_id: str, outcome: CommandOutcome) -> None:
        self.outcomes[outcome.sequence_id] = outcome


@pytest.fixture
async def moonraker(tmp_path: Path) -> AsyncIterator[MoonrakerServer]:
    server = MoonrakerServer(tmp_path / "mr", webcams={"door": "/webcam/?action=stream"})
    try:
        await server.start()
        await klippy_ready(server)
        yield server
    finally:
        await server.close()


def make_link(server: MoonrakerServer, **kw: Any) -> tuple[MoonrakerLink, Recorder]:
    rec = Recorder()
    settings = MoonrakerSettings(
        id="voron",
        name="Voron",
        host="127.0.0.1",
        port=server.port,
        api_key=kw.pop("api_key", None),
        light_macro_on="SET_PIN PIN=caselight VALUE=1",
        light_macro_off="SET_PIN PIN=caselight VALUE=0",
    )
    kw.setdefault("backoff", Backoff(initial=0.2, cap=1.0))
    kw.setdefault("command_timeout", 5.0)
    return MoonrakerLink(settings, rec, **kw), rec


async def outcome(rec: Recorder, seq: str) -> CommandOutcome:
    return await eventually(lambda: rec.outcomes.get(seq), what=f"answer to {seq}")


async def test_live_state_commands_and_files(moonraker: MoonrakerServer) -> None:
    klippy = moonraker.klippy
    assert klippy is not None
    link, rec = make_link(moonraker)
    await link.start()
    try:
        view = lambda: link.state.view()  # noqa: E731
        await eventually(lambda: view()["print"]["state"] == "IDLE", what="idle printer")
        v = view()
        assert v["link"]["state"] == "connected"
        assert v["model"] == "Klipper" and v["name"] == "Voron"
        # What the stand-in Klippy reported, through the real Moonraker.
        assert v["temps"]["nozzle"] == {"current": 24.5, "target": 0.0}
        assert v["temps"]["bed"] == {"current": 23.8, "target": 0.0}
        assert v["temps"]["chamber"] == {"current": 27.0, "target": None}
        assert v["klippy"]["state"] == "ready" and v["hms"] == []

        # Files: upload over Moonraker's HTTP API, list, start.
        body = b"; estimated printing time (normal mode) = 1h 40m\nG28\nG1 X10\n" * 50

        async def chunks():
            yield body

        stored, size = await link.files.upload_stream("/cube.gcode", chunks(), size=len(body))
        assert (stored, size) == ("/cube.gcode", len(body))
        assert (moonraker.gcodes / "cube.gcode").read_bytes() == body
        names = [(f.name, f.size) for f in await link.files.list("/")]
        assert ("cube.gcode", len(body)) in names

        seq = await link.send_command("print", {"path": "/cube.gcode"})
        assert (await outcome(rec, seq)).result == "success"
        assert 'SDCARD_PRINT_FILE FILENAME="cube.gcode"' in klippy.scripts
        await eventually(lambda: view()["print"]["state"] == "RUNNING", what="printing")
        assert view()["print"]["file"] == "cube.gcode" and view()["print"]["job"] == "cube"
        assert view()["temps"]["nozzle"]["target"] == 210.0

        # A delta from Klippy, applied live.
        klippy.advance(0.5, layer=3, total_layers=10, print_duration=600.0)
        await eventually(lambda: view()["print"]["progress"] == 50, what="progress 50")
        p = view()["print"]
        assert (p["layer"], p["total_layers"]) == (3, 10)
        assert p["remaining_s"] == 600  # no slicer estimate in the metadata: time so far / progress
        assert view()["temps"]["nozzle"]["current"] == 209.5

        # pause reaches Klippy as its pause_resume endpoint
        seq = await link.send_command("pause", {})
        assert (await outcome(rec, seq)).result == "success"
        assert ("pause_resume/pause", {}) in klippy.received
        await eventually(lambda: view()["print"]["state"] == "PAUSE", what="paused")
        seq = await link.send_command("resume", {})
        assert (await outcome(rec, seq)).result == "success"
        await eventually(lambda: view()["print"]["state"] == "RUNNING", what="resumed")

        # speed: Bambu's level 3 (sport) is M220 S124
        seq = await link.send_command("speed", {"level": 3})
        assert (await outcome(rec, seq)).result == "success"
        assert "M220 S124" in klippy.scripts
        await eventually(lambda: view()["print"]["speed_level"] == 3, what="speed level 3")

        # light: the configured macro
        seq = await link.send_command("light", {"on": True})
        assert (await outcome(rec, seq)).result == "success"
        assert "SET_PIN PIN=caselight VALUE=1" in klippy.scripts

        # A refusal carries Klipper's own words, through Moonraker.
        seq = await link.send_command("gcode", {"line": "FROBNICATE"})
        refused = await outcome(rec, seq)
        assert refused.result == "failed"
        assert 'Unknown command:"FROBNICATE"' in (refused.message or "")

        seq = await link.send_command("stop", {})
        assert (await outcome(rec, seq)).result == "success"
        assert ("pause_resume/cancel", {}) in klippy.received
        await eventually(lambda: view()["print"]["state"] == "FAILED", what="cancelled")
        assert view()["print"]["error"] == "cancelled"

        await link.files.delete("/cube.gcode")
        assert not (moonraker.gcodes / "cube.gcode").exists()
        assert "cube.gcode" not in [f.name for f in await link.files.list("/")]

        # The webcam of Moonraker's config, resolved against the printer's web server.
        await eventually(lambda: link.webcams, what="webcams")
        assert link.webcams[0].name == "door"
        assert link.webcams[0].stream_url == "http://127.0.0.1/webcam/?action=stream"
    finally:
        await link.stop()


async def test_klippy_shutdown_shown_in_plain_words_then_live_again(moonraker: MoonrakerServer) -> None:
    klippy = moonraker.klippy
    assert klippy is not None
    link, _ = make_link(moonraker)
    await link.start()
    try:
        view = lambda: link.state.view()  # noqa: E731
        await eventually(lambda: view()["print"]["state"] == "IDLE", what="idle printer")
        klippy.shutdown("MCU 'mcu' shutdown: Timer too close")
        await eventually(lambda: view()["klippy"]["state"] == "shutdown", what="klippy shutdown")
        v = view()
        assert v["link"]["state"] == "connected"  # Moonraker answers; Klipper does not print
        assert v["print"]["state"] == "OFFLINE"
        assert v["klippy"]["message"] == "MCU 'mcu' shutdown: Timer too close"
        assert v["hms"] == [
            {
                "code": "klippy_shutdown",
                "severity": "error",
                "text": "Klipper has shut down: MCU 'mcu' shutdown: Timer too close",
            }
        ]
        # FIRMWARE_RESTART: Klippy drops Moonraker, comes back ready; the link subscribes again.
        klippy.restart()
        await eventually(lambda: view()["klippy"]["state"] == "disconnected", what="klippy disconnected")
        await eventually(lambda: view()["print"]["state"] == "IDLE", what="ready again", timeout=30)
        assert view()["hms"] == []
        klippy.set("heater_bed", temperature=41.0)
        klippy.push()
        await eventually(lambda: view()["temps"]["bed"]["current"] == 41.0, what="live again")
    finally:
        await link.stop()


async def test_moonraker_stopped_is_offline_and_restarted_is_connected(moonraker: MoonrakerServer) -> None:
    link, _ = make_link(moonraker)
    await link.start()
    try:
        view = lambda: link.state.view()  # noqa: E731
        await eventually(lambda: view()["link"]["state"] == "connected", what="connected")
        await moonraker.stop()
        await eventually(lambda: view()["link"]["state"] == "offline", what="offline")
        assert view()["link"]["error"]
        with pytest.raises(Exception, match="not connected"):
            await link.send_command("pause", {})
        await moonraker.start()
        await eventually(lambda: view()["link"]["state"] == "connected", what="connected again", timeout=60)
        await eventually(lambda: view()["print"]["state"] == "IDLE", what="state again", timeout=30)
    finally:
        await link.stop()


async def test_api_key_required(tmp_path: Path) -> None:
    server = MoonrakerServer(tmp_path / "mr", trusted=False)
    try:
        await server.start()
        await klippy_ready(server)
        bad, _ = make_link(server, api_key="0" * 32)
        await bad.start()
        try:
            await eventually(lambda: bad.link_state == "auth_failed", what="auth_failed")
            assert bad.state.view()["link"]["error"] == "Moonraker refused the API key"
        finally:
            await bad.stop()
        good, _ = make_link(server, api_key=server.api_key())
        await good.start()
        try:
            await eventually(lambda: good.state.view()["print"]["state"] == "IDLE", what="idle printer")
            assert [f.name for f in await good.files.list("/")] == []
        finally:
            await good.stop()
    finally:
        await server.close()
