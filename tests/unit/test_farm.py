"""Farm sync's pure parts: config, topics, what units send each other, a printer's state across
units, the other units as this one sees them, and who may command a printer from another unit."""

from __future__ import annotations

import pytest

from bambu_edge.config import ConfigError, parse_config
from bambu_edge.farm import topics, wire
from bambu_edge.farm.config import FARM_SECTION
from bambu_edge.farm.printer_sync import Incoming, Outgoing
from bambu_edge.farm.remote import RemoteFarm
from bambu_edge.farm.rights import refusal
from bambu_edge.jobs.records import FilamentSlot, PrintRecord
from bambu_edge.node import NODE_SECTION


def _farm(yaml: str):
    return parse_config(yaml, "c.yaml", env={}, sections=[NODE_SECTION, FARM_SECTION]).section("farm")


def test_farm_config() -> None:
    assert _farm("farm: null\n") is None
    cfg = _farm(
        "farm: {broker: 'mqtts://pi.local', username: garage, password: s3cret, ca_file: /x/ca.crt}\n"
    )
    assert (cfg.host, cfg.port, cfg.tls, cfg.username, cfg.ca_file) == (
        "pi.local",
        8883,
        True,
        "garage",
        "/x/ca.crt",
    )
    assert "s3cret" not in repr(cfg) and cfg.url == "mqtts://pi.local:8883"
    assert _farm("farm: {broker: 'mqtt://10.0.0.2:1884'}\n").port == 1884
    for bad, key in (
        ("farm: {broker: 'http://x'}", "farm.broker"),
        ("farm: {broker: 'mqtts://u:p@x'}", "farm.broker"),
        ("farm: {}", "farm.broker"),
        ("farm: {broker: 'mqtt://x', ca_file: /ca}", "farm.ca_file"),
        ("farm: {broker: 'mqtt://x', password: p}", "farm.password"),
        ("farm: {broker: 'mqtt://x', port: 1}", "farm.port"),
    ):
        with pytest.raises(ConfigError) as e:
            _farm(bad + "\n")
        assert e.value.key == key and e.value.line == 1


def test_topics_round_trip_and_refuse_strangers() -> None:
    assert topics.parse(topics.snapshot("garage", "x1c-a")) == topics.Topic("garage", "snapshot", "x1c-a")
    assert topics.parse(topics.history("attic")) == topics.Topic("attic", "history")
    for bad in (
        "bambu-edge/v2/garage/status",
        "bambu-edge/v1/Garage/status",
        "bambu-edge/v1/g/printers/X/state",
        "x",
    ):
        assert topics.parse(bad) is None


def _record(**kw) -> PrintRecord:
    base = dict(
        uid="a" * 32,
        printer_id="x1c-a",
        started_at=1_764_000_000.0,
        job="Benchy",
        outcome="success",
        ended_at=1_764_000_600.0,
        duration_s=600.0,
        filament=(FilamentSlot(slot=1, type="PLA", grams=12.5),),
        hms=("0300_0100_0001_0007",),
        error_code=None,
        energy_kwh=0.12,
    )
    base.update(kw)
    return PrintRecord(**base)


def test_a_record_crosses_the_wire_unchanged_and_bad_ones_are_refused() -> None:
    rec = _record()
    back, t = wire.record_from_wire(wire.loads(wire.dumps(wire.record_to_wire(rec, 1_764_000_601.5))))
    assert t == 1_764_000_601.5
    assert (back.uid, back.job, back.outcome, back.duration_s, back.filament, back.hms, back.energy_kwh) == (
        rec.uid,
        rec.job,
        rec.outcome,
        rec.duration_s,
        rec.filament,
        rec.hms,
        rec.energy_kwh,
    )
    good = wire.record_to_wire(rec, 1.0e9)
    for field, value in (
        ("uid", "../x"),
        ("printer_id", "X Y"),
        ("outcome", "exploded"),
        ("started_at", "soon"),
        ("error_code", "DROP TABLE"),
        ("ended_at", 1.0),
    ):
        body = {**good, "record": {**good["record"], field: value}}
        with pytest.raises(wire.WireError):
            wire.record_from_wire(body)
    for payload in (b"[1]", b"{", b'{"v": 2}', b"x" * (wire.MAX_PAYLOAD + 1)):
        with pytest.raises(wire.WireError):
            wire.loads(payload)


def test_a_printer_state_is_a_snapshot_then_cumulative_changes() -> None:
    out, inc = Outgoing(), Incoming()
    view = {"id": "p", "print": {"progress": 1, "state": "RUNNING"}, "temps": {"bed": 20.0}, "pad": "x" * 400}
    kind, first = out.next(view, 0.0)
    assert kind == "snapshot"
    assert out.next(view, 1.0) is None  # nothing new: nothing sent
    v2 = {**view, "print": {"progress": 2, "state": "RUNNING"}}
    kind, c1 = out.next(v2, 1.0)
    assert kind == "changes" and c1["changes"] == {"print": {"progress": 2}}
    v3 = {**v2, "temps": {"bed": 30.0}}
    kind, c2 = out.next(v3, 2.0)
    # Cumulative: against the snapshot, so the newest message alone brings a late joiner up to date.
    assert c2["changes"] == {"print": {"progress": 2}, "temps": {"bed": 30.0}}
    # Retained messages may come in either order: changes wait for their snapshot.
    assert inc.changes(c2["base"], c2["changes"]) is None
    assert inc.snapshot(first["base"], first["view"]) == v3
    # Changes made against another snapshot (an earlier run of the unit) are not applied to this one.
    assert inc.changes("other-1", {"print": {"progress": 99}}) is None and inc.current == v3
    # Big changes or an old snapshot: a new snapshot.
    kind, _ = out.next({**v3, "pad": "y" * 400}, 3.0)
    assert kind == "snapshot"


def test_remote_units_and_their_printers() -> None:
    farm = RemoteFarm("garage", is_local=lambda pid: pid == "mine")
    assert farm.broker(True) == []
    farm.status("attic", {"state": "online", "name": "Attic", "since": 5.0}, 10.0)
    view = {"id": "p1", "name": "P1", "link": {"state": "connected", "since": 1.0, "error": None}}
    (added,) = farm.snapshot("attic", "p1", "e-1", view)
    assert added.kind == "added" and added.data["node"] == "attic" and added.data["remote"] is True
    assert added.data["node_online"] is True and added.data["read_only"] is True
    # Its unit goes: the printer stays listed, offline, saying why.
    (gone,) = farm.status("attic", {"state": "offline"}, 20.0)
    assert gone.data["node_online"] is False and gone.data["link"]["state"] == "offline"
    assert "Attic" in gone.data["link"]["error"]
    # An id this unit uses itself is not listed, and the clash is told.
    assert farm.snapshot("attic", "mine", "e-1", {**view, "id": "mine"}) == []
    assert farm.view("mine") is None and "mine" in farm.health()["clashes"][0]
    # This unit's own messages are not remote printers.
    assert farm.snapshot("garage", "p9", "e-1", view) == [] and farm.view("p9") is None
    # Without the broker no unit can be called online.
    farm.status("attic", {"state": "online"}, 30.0)
    (lost,) = farm.broker(False)
    assert "broker" in lost.data["link"]["error"]
    assert [c.kind for c in farm.removed("attic", "p1")] == ["removed"] and farm.views() == []


def test_rights_for_a_command_from_another_unit() -> None:
    assert refusal("user", "pause") is None and refusal("admin", "gcode") is None
    assert "not known" in refusal("superuser", "pause")
    assert "not a printer command" in refusal("admin", "format_sd")


async def test_a_remote_record_is_stored_once_and_only_newer_copies_change_it(tmp_path) -> None:
    from bambu_edge.jobs.history import HistoryFilter, HistoryRepository
    from bambu_edge.store.db import Database

    db = await Database.open(tmp_path / "db.sqlite")
    await db.migrate()
    try:
        repo = HistoryRepository(db, node="garage")
        running = _record(outcome="running", ended_at=None, duration_s=None)
        rid = await repo.save_remote(running, "attic", 100.0)
        assert rid is not None
        assert await repo.save_remote(running, "attic", 100.0) is None  # the same copy again
        ended = _record()
        assert await repo.save_remote(ended, "attic", 200.0) == rid
        assert await repo.save_remote(running, "attic", 150.0) is None  # an older copy, late
        assert await repo.save_remote(_record(job="Hijack"), "shed", 300.0) is None  # not shed's record
        items, total = await repo.page(HistoryFilter())
        assert (
            total == 1
            and items[0].outcome == "success"
            and items[0].node == "attic"
            and items[0].job == "Benchy"
        )
        assert (await repo.totals(HistoryFilter()))["filament"][0]["grams"] == 12.5
        # The local tracker never picks up another unit's records, and a local write with the
        # same uid never overwrites one; nothing of it is sent on as this unit's own.
        assert await repo.open_records() == []
        await repo.save(_record(outcome="running", ended_at=None, duration_s=None, job="Local"))
        assert (await repo.get(rid)).job == "Benchy"
        assert await repo.local_changed_since(0.0) == []
        other = _record(uid="b" * 32, job="Mine")
        await repo.save(other)
        assert [(r.uid, r.node) for r, _ in await repo.local_changed_since(0.0)] == [("b" * 32, "garage")]
    finally:
        await db.close()
