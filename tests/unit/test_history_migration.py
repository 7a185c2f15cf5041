"""Migration 0002: print_history rebuilt for the tracker; rows written under 0001 are kept."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from bambu_edge.store.db import Database, load_migrations


async def test_rows_from_0001_are_copied_and_finished_becomes_success(tmp_path: Path):
    db = await Database.open(tmp_path / "db.sqlite")
    try:
        first, *rest = load_migrations()
        assert first.version == 1
        await db.migrate([first])
        await db.execute(
            "INSERT INTO print_history (printer_id, file, job, plate, started_at, ended_at, duration_s,"
            " outcome, layers, total_layers, filament_json, created_at, updated_at)"
            " VALUES ('p1', 'cube.3mf', 'cube', 1, 100, 700, 600, 'finished', 50, 50,"
            ' \'[{"type": "PLA", "grams": 3.5}]\', 100, 700)'
        )
        await db.execute(
            "INSERT INTO print_history (printer_id, started_at, outcome, filament_json, created_at, updated_at)"
            " VALUES ('p2', 200, 'failed', NULL, 200, 200)"
        )
        await db.migrate()
        rows = await db.fetchall("SELECT * FROM print_history ORDER BY id")
        assert [r["outcome"] for r in rows] == ["success", "failed"]
        assert rows[0]["job"] == "cube" and rows[0]["duration_s"] == 600 and rows[0]["plate"] == 1
        assert rows[0]["filament_json"] == '[{"type": "PLA", "grams": 3.5}]'
        assert rows[1]["filament_json"] == "[]" and rows[1]["hms_json"] == "[]"
        uids = {r["uid"] for r in rows}
        assert len(uids) == 2 and all(len(u) == 32 for u in uids)
        indexes = {r[0] for r in await db.fetchall("SELECT name FROM sqlite_master WHERE type = 'index'")}
        assert {"print_history_started", "print_history_open", "print_history_printer"} <= indexes
        assert [m.version for m in rest][:1] == [2]
        # The filament of ended prints is copied where totals read it.
        side = await db.fetchall("SELECT history_id, type, grams FROM print_history_filament")
        assert [tuple(r) for r in side] == [(rows[0]["id"], "PLA", 3.5)]
    finally:
        await db.close()


async def test_the_schema_refuses_what_the_tracker_never_writes(tmp_path: Path):
    db = await Database.open(tmp_path / "db.sqlite")
    await db.migrate()
    cols = "uid, printer_id, started_at, outcome, created_at, updated_at"
    try:
        await db.execute(
            f"INSERT INTO print_history ({cols}) VALUES (?, 'p1', 1, 'running', 1, 1)", ("a" * 32,)
        )
        # One printer runs one print at a time: a second open record is refused.
        with pytest.raises(sqlite3.IntegrityError):
            await db.execute(
                f"INSERT INTO print_history ({cols}) VALUES (?, 'p1', 2, 'running', 2, 2)", ("b" * 32,)
            )
        # The uid is unique (farm sync inserts by uid).
        with pytest.raises(sqlite3.IntegrityError):
            await db.execute(
                f"INSERT INTO print_history ({cols}) VALUES (?, 'p2', 2, 'running', 2, 2)", ("a" * 32,)
            )
        bad = [
            ("outcome", "'finished'"),
            ("error_code", "'7008006'"),
            ("hms_json", "'{}'"),
            ("filament_json", "'not json'"),
            ("progress", "101"),
            ("ended_at", "0"),  # before started_at, and a running record has no end
        ]
        for column, value in bad:
            with pytest.raises(sqlite3.IntegrityError):
                await db.execute(
                    f"INSERT INTO print_history ({cols}, {column}) VALUES (?, 'p3', 1, 'running', 1, 1, {value})"
                    if column != "outcome"
                    else f"INSERT INTO print_history ({cols}) VALUES (?, 'p3', 1, {value}, 1, 1)",
                    ("c" * 32,),
                )
        with pytest.raises(sqlite3.IntegrityError):  # STRICT: a string is not a time
            await db.execute(
                f"INSERT INTO print_history ({cols}) VALUES (?, 'p4', 'noon', 'success', 1, 1)", ("d" * 32,)
            )
    finally:
        await db.close()
