"""The history service inside the real daemon (in-process, so tests can reach its Python interface
and its database connection): the dispatcher's announcements, removed printers, SD-card writes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest

from bambu_edge.app import Daemon, config_sections
from bambu_edge.bus import Event
from bambu_edge.config import load_config
from bambu_edge.jobs.history import HistoryFilter
from bambu_edge.jobs.history_service import HISTORY_EVENT
from bambu_edge.jobs.records import ExpectedPrint, FilamentSlot
from bambu_edge.jobs.tracker import REASON_REMOVED
from bambu_edge.printers.base import PRINTER_REMOVED_EVENT
from bambu_edge.printers.virtual import VirtualPrinter
from tests.conftest import ACCESS_CODE
from tests.integration.daemon_proc import printer_entry, write_config
from tests.integration.waiting import eventually

SERIAL_P1S = "01P00A000000001"


@contextlib.asynccontextmanager
async def _running_daemon(tmp_path, broker, **entry: Any) -> AsyncIterator[tuple[Daemon, VirtualPrinter]]:
    """The daemon in this process with one virtual P1S (``entry``: more of its printer config)."""
    cfg_path = tmp_path / "config.yaml"
    write_config(
        cfg_path, tmp_path / "data", [{**printer_entry(broker, SERIAL_P1S, ACCESS_CODE, "p1s"), **entry}]
    )
    vp = VirtualPrinter(
        broker.host,
        broker.port,
        SERIAL_P1S,
        ACCESS_CODE,
        "P1S",
        str(broker.ca_path),
        report_hz=5.0,
        held=True,
    )
    await vp.start()
    d = Daemon(load_config(cfg_path, sections=config_sections()))
    await d.start()
    try:
        link = d.manager.get("p1s")  # type: ignore[union-attr]
        await eventually(lambda: link.state.view()["print"]["state"] is not None, what="first report")
        yield d, vp
    finally:
        await d.stop()
        await vp.stop()


@pytest.fixture
async def daemon(tmp_path, broker) -> AsyncIterator[tuple[Daemon, VirtualPrinter]]:
    async with _running_daemon(tmp_path, broker) as running:
        yield running


async def _next(sub, action: str, timeout: float = 20.0) -> dict[str, Any]:
    async with asyncio.timeout(timeout):
        while True:
            event = await sub.get()
            if event.kind == HISTORY_EVENT and event.data.action == action:
                return event.data.to_json()["record"]


async def test_the_dispatchers_announcement_labels_the_record(daemon):
    d, vp = daemon
    assert d.history is not None
    plan = (FilamentSlot(slot=5, type="ABS", color="#489FDFFF", grams=12.5, meters=4.2),)
    with d.bus.subscribe(HISTORY_EVENT) as sub:
        d.history.expect(
            "p1s",
            ExpectedPrint(
                job="cube", file="cube.gcode.3mf", plate=1, filament=plan, thumbnail="t1", queue_job_id=7
            ),
        )
        await vp.simulate_print("cube", duration_s=3, layers=10)
        started = await _next(sub, "started")
        await vp.finish(steps=3)
        ended = await _next(sub, "ended")
    assert started["queue_job_id"] == 7 and started["file"] == "cube.gcode.3mf"
    assert ended["outcome"] == "success" and ended["queue_job_id"] == 7
    assert ended["filament"] == [
        {"slot": 5, "type": "ABS", "color": "#489FDFFF", "grams": 12.5, "meters": 4.2}
    ]
    assert ended["thumbnail"] == f"/api/history/{ended['id']}/thumbnail"
    # The next print from elsewhere is not labelled with the queue job.
    with d.bus.subscribe(HISTORY_EVENT) as sub:
        await vp.simulate_print("vase", duration_s=2, layers=5)
        await vp.finish(steps=3)
        other = await _next(sub, "ended")
    assert other["job"] == "vase" and other["queue_job_id"] is None


async def test_a_removed_printer_has_its_record_closed(daemon):
    d, vp = daemon
    assert d.history is not None and d.manager is not None
    with d.bus.subscribe(HISTORY_EVENT) as sub:
        await vp.simulate_print("long one", duration_s=300, layers=100)
        rec = await _next(sub, "started")
        await d.manager.remove_printer("p1s")
        d.bus.publish(Event(PRINTER_REMOVED_EVENT, "p1s", {}))  # as the dashboard's delete announces it
        ended = await _next(sub, "ended")
    assert ended["uid"] == rec["uid"] and ended["outcome"] == "unknown"
    assert ended["failure_reason"] == REASON_REMOVED
    assert await d.history.repo.page(HistoryFilter(outcomes=("running",))) == ([], 0)


async def test_a_printer_that_vanished_without_an_event_is_closed_after_a_grace_time(daemon):
    d, vp = daemon
    assert d.history is not None and d.manager is not None
    d.history.tick_s, d.history.removed_grace_s = 0.1, 0.5
    with d.bus.subscribe(HISTORY_EVENT) as sub:
        await vp.simulate_print("long one", duration_s=300, layers=100)
        await _next(sub, "started")
        await d.manager.remove_printer("p1s")
        ended = await _next(sub, "ended")
    assert ended["outcome"] == "unknown" and ended["failure_reason"] == REASON_REMOVED


async def test_progress_is_not_written_per_report_and_a_clean_stop_writes_it(daemon):
    d, vp = daemon
    assert d.history is not None
    writes: list[str] = []

    def trace(sql: str) -> None:
        if "print_history" in sql and sql.lstrip().upper().startswith(("INSERT", "UPDATE")):
            writes.append(sql)

    await d.store.db.conn.set_trace_callback(trace)
    progress: list[int] = []
    with d.bus.subscribe("printer") as printer_events, d.bus.subscribe(HISTORY_EVENT) as sub:
        await vp.simulate_print("many layers", duration_s=6, layers=200)
        await vp.finish(steps=30)  # a report per step, as a running printer sends them
        await _next(sub, "ended")
        while (e := printer_events.get_nowait()) is not None:
            p = e.data.changes.get("print") or {}
            if "progress" in p:
                progress.append(p["progress"])
    assert len(progress) >= 10  # the printer reported progress many times...
    # ... and the record was written when it opened, when it started running, and when it ended.
    assert len(writes) == 3, writes

    # A print under way when the daemon stops: its latest progress is written at the stop.
    writes.clear()
    await vp.simulate_print("interrupted", duration_s=60, layers=100)
    await vp.advance(10.0, steps=4)  # preparing (6 s) done, 7 % printed
    link = d.manager.get("p1s")  # type: ignore[union-attr]

    def printing_5() -> bool:
        p = link.state.view()["print"]
        return p["state"] == "RUNNING" and p["job"] == "interrupted" and (p["progress"] or 0) >= 5

    await eventually(printing_5, what="progress 5 %")
    await eventually(lambda: len(writes) == 2, what="the record opened and written as running")
    written = link.state.view()["print"]["progress"]
    await vp.advance(6.0, steps=2)  # progress moves on; paced, it is not written yet
    await eventually(lambda: link.state.view()["print"]["progress"] > written, what="more progress")
    shown = link.state.view()["print"]["progress"]
    assert len(writes) == 2
    await d.stop()
    assert len(writes) == 3  # opened, running, and the progress at the stop
    db = await _reopen(d)
    try:
        (rec,) = [r for r in (await db.page(HistoryFilter(outcomes=("running",))))[0]]
        assert rec.job == "interrupted" and rec.progress is not None and rec.progress >= shown
    finally:
        await db.db.close()


async def _reopen(d: Daemon):
    from bambu_edge.jobs.history import HistoryRepository
    from bambu_edge.store.db import Database

    return HistoryRepository(await Database.open(d.config.db_path))


@pytest.fixture
async def daemon_with_storage(
    tmp_path, broker, vsftpd_factory
) -> AsyncIterator[tuple[Daemon, VirtualPrinter, Any]]:
    ftp = vsftpd_factory(server_cert=broker.server_pair)  # one printer: one certificate on both ports
    async with _running_daemon(tmp_path, broker, ftps_port=ftp.port) as (d, vp):
        assert d.history is not None
        d.history.print_file_delay_s = 0.2
        yield d, vp, ftp


async def test_a_print_from_the_slicer_gets_grams_and_thumbnail_from_its_file_on_the_printer(
    daemon_with_storage,
):
    from tests.factories.threemf import PlateSpec, make_3mf

    d, vp, ftp = daemon_with_storage
    ftp.path("/cache").mkdir(parents=True)
    # The slicer uploaded /cache/<job>.3mf and started it (P1S tray 1 holds PLA #0A2989).
    make_3mf(
        ftp.path("/cache/Widget.3mf"), plates=[PlateSpec(layers=42, filaments=[("PLA", "#0A2989", 21.5)])]
    )
    with d.bus.subscribe(HISTORY_EVENT) as sub:
        await vp.simulate_print("Widget", duration_s=12, layers=42, tray=1)
        rec = await _next(sub, "started")
        assert rec["thumbnail"] is None
        while not (rec := await _next(sub, "updated"))["thumbnail"]:
            pass
        await vp.finish(steps=3)
        ended = await _next(sub, "ended")
    assert rec["file"] == "/cache/Widget.3mf" and rec["total_layers"] == 42
    (slot,) = ended["filament"]
    assert (slot["slot"], slot["type"], slot["color"], slot["grams"]) == (1, "PLA", "#0A2989FF", 21.5)
    assert slot["meters"] and slot["meters"] > 0
    # The picture is served from the thumbnail cache (nothing of the 3MF is kept on the unit).
    stored = await d.history.repo.get(ended["id"])  # type: ignore[union-attr]
    png = await d.history.thumbnail(stored)  # type: ignore[union-attr,arg-type]
    assert png is not None and png.startswith(b"\x89PNG\r\n\x1a\n")
    leftovers = [p.name for p in d.config.data_dir.rglob("*") if p.suffix == ".3mf"]
    assert leftovers == []


def _retrievals(ftp: Any, name: str) -> int:
    """How many times vsftpd sent ``name`` (its protocol log: one RETR per download)."""
    return sum(1 for line in ftp.log().splitlines() if "RETR" in line and name in line)


async def test_a_print_from_the_file_browser_reads_its_file_once(daemon_with_storage):
    from tests.factories.threemf import PlateSpec, make_3mf

    d, vp, ftp = daemon_with_storage
    assert d.queue is not None
    ftp.path("/cache").mkdir(parents=True)
    make_3mf(
        ftp.path("/cache/Gadget.gcode.3mf"),
        plates=[PlateSpec(layers=42, filaments=[("PLA", "#0A2989", 21.5)])],
    )
    with d.bus.subscribe(HISTORY_EVENT) as sub:
        # Print-now reads the file to match its filament (P1S tray 1 holds PLA #0A2989) ...
        result = await d.queue.print_now("p1s", "/cache/Gadget.gcode.3mf")
        assert result["ams_mapping"] == [1]
        started = await _next(sub, "started")
        await vp.finish(steps=3)
        ended = await _next(sub, "ended")
    # ... and what it read labels the record: grams, slot and picture, with no second download.
    assert started["job"] == "Gadget" and started["file"] == "/cache/Gadget.gcode.3mf"
    assert ended["outcome"] == "success" and ended["queue_job_id"] is None
    (slot,) = ended["filament"]
    assert (slot["slot"], slot["type"], slot["grams"]) == (1, "PLA", 21.5)
    assert ended["thumbnail"] == f"/api/history/{ended['id']}/thumbnail"
    # A second read would start print_file_delay_s after the record opened: wait past it.
    await asyncio.sleep(d.history.print_file_delay_s + 0.5)  # type: ignore[union-attr]
    assert _retrievals(ftp, "Gadget.gcode.3mf") == 1


async def test_no_file_or_a_hostile_one_on_the_printer_costs_nothing_but_the_metadata(
    daemon_with_storage, caplog
):
    from tests.factories.threemf import make_zip_bomb

    caplog.set_level(logging.INFO, logger="bambu_edge.jobs.print_files")
    d, vp, ftp = daemon_with_storage
    ftp.path("/cache").mkdir(parents=True)
    make_zip_bomb(ftp.path("/cache/Bomb.3mf"))
    for job, words in (("Bomb", "Bomb.3mf cannot be read"), ("Nowhere", "no 3MF for 'Nowhere'")):
        with d.bus.subscribe(HISTORY_EVENT) as sub:
            await vp.simulate_print(job, duration_s=8, layers=10)
            await eventually(lambda w=words: w in caplog.text, what=words)
            await vp.finish(steps=3)
            ended = await _next(sub, "ended")
        assert ended["outcome"] == "success" and ended["thumbnail"] is None
        assert ended["file"] == "/data/Metadata/plate_1.gcode" and ended["filament"] == []
