"""Printers added in the dashboard: the repository over the `printers` table, and their id slugs."""

from __future__ import annotations

from pathlib import Path

import pytest

from bambu_edge.config import PRINTER_ID_RE, PrinterConfig
from bambu_edge.store.db import Database
from bambu_edge.store.printers import PrinterExistsError, StoredPrinters, new_printer_id


@pytest.fixture
async def stored(tmp_path: Path):
    db = await Database.open(tmp_path / "bambu-edge.db")
    await db.migrate()
    yield StoredPrinters(db)
    await db.close()


def _cfg(pid: str = "x1c-left", **kw) -> PrinterConfig:
    base = dict(
        id=pid,
        name="X1C left",
        type="bambu",
        host="192.168.1.50",
        serial="00M09A350100123",
        access_code="01234567",
        read_only=False,
    )
    return PrinterConfig(**{**base, **kw})


@pytest.mark.parametrize(
    ("name", "taken", "expected"),
    [
        ("X1C left", set(), "x1c-left"),
        ("X1C left", {"x1c-left"}, "x1c-left-2"),
        ("X1C left", {"x1c-left", "x1c-left-2"}, "x1c-left-3"),
        ("  --Skrivar på loftet!! ", set(), "skrivar-pa-loftet"),
        ("🖨️ ✨", set(), "printer"),
        ("Sør-Øst Ærlig", set(), "sor-ost-aerlig"),
        ("A" * 200, set(), "a" * 48),
    ],
)
def test_ids_are_slugs_of_the_name_and_unique(name, taken, expected):
    pid = new_printer_id(name, taken)
    assert pid == expected
    assert PRINTER_ID_RE.match(pid)


async def test_add_list_update_delete(stored: StoredPrinters):
    assert await stored.list() == []
    await stored.add(_cfg(model="X1C", mqtt_port=18883))
    await stored.add(_cfg("p1s", name="P1S", serial="01P00A000000001"))
    got = await stored.list()
    assert [p.id for p in got] == ["x1c-left", "p1s"]  # in the order they were added
    first = got[0]
    assert (first.host, first.serial, first.access_code, first.model, first.mqtt_port, first.ftps_port) == (
        "192.168.1.50",
        "00M09A350100123",
        "01234567",  # leading zero kept: stored as text
        "X1C",
        18883,
        990,
    )
    assert first.read_only is False and first.type == "bambu"
    assert await stored.ids() == {"x1c-left", "p1s"}

    assert await stored.update(_cfg(name="Left one", host="10.0.0.9", access_code="87654321"))
    again = await stored.get("x1c-left")
    assert (again.name, again.host, again.access_code, again.model) == (
        "Left one",
        "10.0.0.9",
        "87654321",
        None,
    )
    assert not await stored.update(_cfg("nope"))

    assert await stored.delete("p1s")
    assert not await stored.delete("p1s")
    assert await stored.get("p1s") is None
    assert [p.id for p in await stored.list()] == ["x1c-left"]


async def test_a_taken_id_is_refused_and_nothing_changes(stored: StoredPrinters):
    await stored.add(_cfg())
    with pytest.raises(PrinterExistsError):
        await stored.add(_cfg(name="Other", serial="01P00A000000002"))
    assert [(p.id, p.name) for p in await stored.list()] == [("x1c-left", "X1C left")]


async def test_the_schema_refuses_what_validation_would(stored: StoredPrinters):
    import sqlite3

    with pytest.raises(sqlite3.IntegrityError):
        await stored.add(_cfg("Bad Id"))
    with pytest.raises(sqlite3.IntegrityError):
        await stored.add(_cfg("ok", mqtt_port=70000))
    assert await stored.list() == []
