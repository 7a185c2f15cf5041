"""A backup's manifest and the rules an archive must follow (pure: no I/O).

An archive is a gzip-compressed tar whose first member is ``manifest.json``; every other member is
a regular file whose name is on a fixed allow-list (``member_kind``) and in the manifest with its
size and SHA-256. Nothing else is accepted, so no member can name a path outside the staging
folder, a link, a device or a file the daemon does not own.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

FORMAT = "bambu-edge-backup"
FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"
MAX_MANIFEST_BYTES = 1024 * 1024
MAX_FILES = 10_000

CONFIG_NAME = "config.yaml"
DB_NAME = "data/bambu-edge.db"
# Paths under data_dir that a backup holds, by archive name (data/<path>).
DATA_FILES = ("bambu-edge.db", "csrf.key", "tls/server.crt", "tls/server.key", "tls/server.json")
QUEUE_FILE = re.compile(r"^data/queue/files/[0-9a-f]{64}\.(3mf|gcode)$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_NODE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


class BackupError(Exception):
    """A backup cannot be made or restored, in plain words. ``code`` names the kind for the API:
    corrupt, not_a_backup, newer_format, newer_schema, too_large, no_space, read_only, busy, ..."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class FileEntry:
    sha256: str
    size: int

    def to_json(self) -> dict[str, Any]:
        return {"sha256": self.sha256, "size": self.size}


@dataclass(frozen=True)
class Manifest:
    app_version: str
    schema_version: int  # the highest database migration applied (store/migrations/NNNN_*.sql)
    created_at: float
    node: str
    files: Mapping[str, FileEntry] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "format_version": self.format_version,
            "app_version": self.app_version,
            "schema_version": self.schema_version,
            "created_at": self.created_at,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.created_at)),
            "node": self.node,
            "files": {name: e.to_json() for name, e in self.files.items()},
        }

    def dumps(self) -> bytes:
        return (json.dumps(self.to_json(), indent=2, sort_keys=False) + "\n").encode()

    def summary(self) -> dict[str, Any]:
        """What the dashboard shows of a backup (no file list)."""
        return {
            "node": self.node,
            "created_at": self.created_at,
            "app_version": self.app_version,
            "schema_version": self.schema_version,
            "files": len(self.files),
            "bytes": sum(e.size for e in self.files.values()),
        }


def member_kind(name: str) -> str | None:
    """'manifest', 'config', 'data' or 'queue' for an allowed archive member name, else None."""
    if name == MANIFEST_NAME:
        return "manifest"
    if name == CONFIG_NAME:
        return "config"
    if name.startswith("data/") and name[5:] in DATA_FILES:
        return "data"
    if QUEUE_FILE.match(name):
        return "queue"
    return None


def _bad(message: str) -> BackupError:
    return BackupError("not_a_backup", f"not a bambu-edge backup: {message}")


def parse_manifest(raw: bytes) -> Manifest:
    """The manifest from its JSON, every field checked (an archive is untrusted)."""
    try:
        doc = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise _bad("its manifest.json is not valid JSON") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise _bad("its manifest.json does not say format: bambu-edge-backup")
    fv = doc.get("format_version")
    if not _is_int(fv) or fv < 1:
        raise _bad("format_version is missing")
    if fv > FORMAT_VERSION:
        raise BackupError(
            "newer_format",
            f"this backup was written in format {fv} by bambu-edge {doc.get('app_version')!s:.40}; "
            f"this bambu-edge reads format {FORMAT_VERSION}: update bambu-edge first",
        )
    app_version, schema, created, node = (
        doc.get(k) for k in ("app_version", "schema_version", "created_at", "node")
    )
    if not isinstance(app_version, str) or not 0 < len(app_version) <= 64:
        raise _bad("app_version is missing")
    if not _is_int(schema) or schema < 0:
        raise _bad("schema_version is missing")
    if not isinstance(created, int | float) or isinstance(created, bool) or not 0 <= created < 1e11:
        raise _bad("created_at is missing")
    if not isinstance(node, str) or not _NODE.match(node):
        raise _bad("node is missing")
    files_doc = doc.get("files")
    if not isinstance(files_doc, dict) or len(files_doc) > MAX_FILES:
        raise _bad("the file list is missing")
    files: dict[str, FileEntry] = {}
    for name, entry in files_doc.items():
        if member_kind(name) in (None, "manifest"):
            raise _bad(f"it lists a file bambu-edge does not restore: {name[:100]!r}")
        if not isinstance(entry, dict):
            raise _bad(f"no checksum for {name}")
        sha, size = entry.get("sha256"), entry.get("size")
        if not isinstance(sha, str) or not _SHA256.match(sha) or not _is_int(size) or size < 0:
            raise _bad(f"no checksum for {name}")
        files[name] = FileEntry(sha, size)
    if DB_NAME not in files:
        raise _bad("it holds no database")
    return Manifest(app_version, schema, float(created), node, files, fv)


def check_schema(manifest: Manifest, known: int) -> None:
    """Refuse a backup whose database is newer than this bambu-edge's migrations."""
    if manifest.schema_version > known:
        raise BackupError(
            "newer_schema",
            f"this backup's database has schema version {manifest.schema_version} (made by bambu-edge "
            f"{manifest.app_version}), but this bambu-edge knows only up to version {known}: install "
            f"bambu-edge {manifest.app_version} or newer to restore it",
        )


def check_member(manifest: Manifest, name: str, seen: set[str]) -> FileEntry:
    """The manifest's entry for archive member ``name``; refused if unlisted or repeated."""
    entry = manifest.files.get(name)
    if entry is None:
        raise BackupError("corrupt", f"the archive holds {name[:100]!r}, which its manifest does not list")
    if name in seen:
        raise BackupError("corrupt", f"the archive holds {name} twice")
    seen.add(name)
    return entry


def check_file(name: str, entry: FileEntry, sha256: str, size: int) -> None:
    if size != entry.size or sha256 != entry.sha256:
        raise BackupError("corrupt", f"{name} does not match its checksum: the archive is damaged")


def check_complete(manifest: Manifest, seen: set[str]) -> None:
    missing = sorted(set(manifest.files) - seen)
    if missing:
        raise BackupError("corrupt", f"the archive is cut short: {missing[0]} is missing")


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)
