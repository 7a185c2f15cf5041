"""The backup manifest and the archive rules (pure): every field checked, only allow-listed names,
a newer format or schema refused in words that say what to do, checksums and completeness."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bambu_edge.backup.manifest import (
    DB_NAME,
    BackupError,
    FileEntry,
    Manifest,
    check_complete,
    check_file,
    check_member,
    check_schema,
    member_kind,
    parse_manifest,
)

SHA = "a" * 64


def _manifest(**kw: Any) -> Manifest:
    files = kw.pop("files", {DB_NAME: FileEntry(SHA, 10), "config.yaml": FileEntry("b" * 64, 3)})
    return Manifest(
        **{"app_version": "0.1.0", "schema_version": 6, "created_at": 1.7e9, "node": "garage", **kw},
        files=files,
    )


def _raw(change: Any = None) -> bytes:
    doc = _manifest().to_json()
    if change:
        change(doc)
    return json.dumps(doc).encode()


def test_a_manifest_round_trips_with_every_field() -> None:
    m = _manifest()
    doc = json.loads(m.dumps())
    assert doc["format"] == "bambu-edge-backup" and doc["format_version"] == 1
    assert doc["created"] == "2023-11-14T22:13:20Z"
    assert parse_manifest(m.dumps()) == m
    assert m.summary() == {
        "node": "garage",
        "created_at": 1.7e9,
        "app_version": "0.1.0",
        "schema_version": 6,
        "files": 2,
        "bytes": 13,
    }


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("manifest.json", "manifest"),
        ("config.yaml", "config"),
        ("data/bambu-edge.db", "data"),
        ("data/tls/server.key", "data"),
        ("data/csrf.key", "data"),
        (f"data/queue/files/{SHA}.3mf", "queue"),
        (f"data/queue/files/{SHA}.gcode", "queue"),
        ("data/queue/files/../../etc/passwd", None),
        (f"data/queue/files/{SHA}.3mf/x", None),
        ("/etc/passwd", None),
        ("../bambu-edge.db", None),
        ("data/bambu-edge.db-wal", None),
        ("data/timelapses/x.mp4", None),
        ("./config.yaml", None),
        ("", None),
    ],
)
def test_only_allow_listed_names_are_members(name: str, kind: str | None) -> None:
    assert member_kind(name) == kind


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (lambda d: d.update(format="zip"), "does not say format"),
        (lambda d: d.pop("format_version"), "format_version is missing"),
        (lambda d: d.update(format_version=True), "format_version is missing"),
        (lambda d: d.update(schema_version="6"), "schema_version is missing"),
        (lambda d: d.update(schema_version=-1), "schema_version is missing"),
        (lambda d: d.update(created_at=float("inf")), "created_at is missing"),
        (lambda d: d.update(node="../x"), "node is missing"),
        (lambda d: d.update(app_version=""), "app_version is missing"),
        (lambda d: d.update(files=[]), "the file list is missing"),
        (lambda d: d["files"].pop(DB_NAME), "it holds no database"),
        (lambda d: d["files"].update({"../evil": {"sha256": SHA, "size": 1}}), "does not restore: '../evil'"),
        (lambda d: d["files"].update({"manifest.json": {"sha256": SHA, "size": 1}}), "does not restore"),
        (lambda d: d["files"][DB_NAME].update(sha256="xyz"), "no checksum for data/bambu-edge.db"),
        (lambda d: d["files"][DB_NAME].update(size=-1), "no checksum for data/bambu-edge.db"),
    ],
)
def test_a_bad_manifest_is_not_a_backup(change: Any, words: str) -> None:
    with pytest.raises(BackupError) as e:
        parse_manifest(_raw(change))
    assert e.value.code == "not_a_backup" and words in e.value.message


@pytest.mark.parametrize("raw", [b"", b"\xff\xfe", b"[]", b"null", b"{"])
def test_a_manifest_that_is_not_json_is_not_a_backup(raw: bytes) -> None:
    with pytest.raises(BackupError, match=r"not valid JSON|does not say format") as e:
        parse_manifest(raw)
    assert e.value.code == "not_a_backup"


def test_a_newer_format_is_refused_with_what_to_do() -> None:
    with pytest.raises(BackupError) as e:
        parse_manifest(_raw(lambda d: d.update(format_version=2, app_version="2.0")))
    assert e.value.code == "newer_format"
    assert e.value.message == (
        "this backup was written in format 2 by bambu-edge 2.0; this bambu-edge reads format 1: "
        "update bambu-edge first"
    )


def test_a_newer_schema_is_refused_an_older_or_equal_one_taken() -> None:
    check_schema(_manifest(schema_version=6), 6)
    check_schema(_manifest(schema_version=3), 6)  # migrated at the next start
    with pytest.raises(BackupError) as e:
        check_schema(_manifest(schema_version=7, app_version="0.3.0"), 6)
    assert e.value.code == "newer_schema"
    assert e.value.message == (
        "this backup's database has schema version 7 (made by bambu-edge 0.3.0), but this bambu-edge "
        "knows only up to version 6: install bambu-edge 0.3.0 or newer to restore it"
    )


def test_members_are_checked_against_the_manifest() -> None:
    m = _manifest()
    seen: set[str] = set()
    entry = check_member(m, DB_NAME, seen)
    assert entry == FileEntry(SHA, 10) and seen == {DB_NAME}
    with pytest.raises(BackupError, match=r"holds data/bambu-edge\.db twice"):
        check_member(m, DB_NAME, seen)
    with pytest.raises(BackupError, match="which its manifest does not list"):
        check_member(m, "data/csrf.key", seen)
    check_file(DB_NAME, entry, SHA, 10)
    for sha, size in [("b" * 64, 10), (SHA, 11)]:
        with pytest.raises(BackupError, match="does not match its checksum") as e:
            check_file(DB_NAME, entry, sha, size)
        assert e.value.code == "corrupt"
    with pytest.raises(BackupError, match=r"cut short: config\.yaml is missing"):
        check_complete(m, seen)
    check_complete(m, {DB_NAME, "config.yaml"})
