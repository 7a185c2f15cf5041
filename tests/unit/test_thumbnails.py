"""The thumbnail cache: PNGs only, keys of our own, written once and atomically, held under its cap
by dropping the oldest."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from bambu_edge.files.thumbnails import DIRNAME, ThumbnailCache, ThumbnailError, key_for
from tests.factories.threemf import make_png


def sha(n: int) -> str:
    return hashlib.sha256(str(n).encode()).hexdigest()


def test_put_get_and_write_once(tmp_path: Path) -> None:
    cache = ThumbnailCache.in_data_dir(tmp_path)
    assert cache.root == tmp_path / DIRNAME
    key = key_for(sha(1), 1)
    png = make_png(64, 64)
    assert cache.get(key) is None and not cache.has(key)
    path = cache.put(key, png)
    assert cache.get(key) == png and cache.path(key) == path
    before = path.stat()
    again = cache.put(key, make_png(32, 32))  # already there: nothing is written
    after = again.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert cache.get(key) == png
    # A new cache over the same folder finds it (a daemon restart).
    assert ThumbnailCache.in_data_dir(tmp_path).get(key) == png


def test_ensure_produces_once(tmp_path: Path) -> None:
    cache = ThumbnailCache(tmp_path / "t")
    calls = []

    def produce() -> bytes:
        calls.append(1)
        return make_png(16, 16)

    key = key_for(sha(2), 3)
    first = cache.ensure(key, produce)
    second = cache.ensure(key, produce)
    assert first == second and first is not None and len(calls) == 1
    assert cache.ensure(key_for(sha(3), 1), lambda: None) is None
    assert cache.ensure(key_for(sha(4), 1), lambda: b"GIF89a not a png") is None
    assert len(cache) == 1


@pytest.mark.parametrize(
    "bad_key", ["../../etc/passwd", "x", sha(1), sha(1) + "-p1/../x", sha(1).upper() + "-p1", "", "/abs-p1"]
)
def test_only_our_keys_are_accepted(tmp_path: Path, bad_key: str) -> None:
    cache = ThumbnailCache(tmp_path / "t")
    with pytest.raises(ThumbnailError):
        cache.put(bad_key, make_png(8, 8))
    with pytest.raises(ThumbnailError):
        cache.get(bad_key)
    assert list((tmp_path / "t").iterdir()) == []


def test_key_for_checks_its_inputs() -> None:
    assert key_for(sha(1).upper(), 2) == f"{sha(1)}-p2"
    for digest, plate in (("nothex", 1), (sha(1), 0), (sha(1), True), (sha(1)[:-1], 1)):
        with pytest.raises(ThumbnailError):
            key_for(digest, plate)  # type: ignore[arg-type]


def test_only_pngs_within_size_are_stored(tmp_path: Path) -> None:
    cache = ThumbnailCache(tmp_path / "t", max_image_bytes=5000)
    key = key_for(sha(5), 1)
    for data in (b"", b"<svg/>", b"\x89PNG\r\n\x1a\n" + bytes(30), make_png(300, 300)):
        with pytest.raises(ThumbnailError):
            cache.put(key, data)
    assert len(cache) == 0 and list((tmp_path / "t").iterdir()) == []


def test_cap_prunes_oldest_first(tmp_path: Path) -> None:
    png = make_png(40, 40)
    cache = ThumbnailCache(tmp_path / "t", max_bytes=len(png) * 3)
    keys = [key_for(sha(n), 1) for n in range(5)]
    for key in keys:
        cache.put(key, png)
        cache.get(keys[0])  # reading never refreshes: pruning is by write order
    assert [cache.has(k) for k in keys] == [False, False, True, True, True]
    assert cache.total_bytes == 3 * len(png)
    assert sorted(p.name for p in (tmp_path / "t").iterdir()) == sorted(f"{k}.png" for k in keys[2:])


def test_a_crash_leftover_is_cleaned_and_foreign_files_left_alone(tmp_path: Path) -> None:
    root = tmp_path / "t"
    root.mkdir()
    (root / ".tmp-abc123").write_bytes(b"half a png")
    (root / "notes.txt").write_text("mine")
    cache = ThumbnailCache(root)
    assert not (root / ".tmp-abc123").exists() and (root / "notes.txt").exists()
    assert len(cache) == 0


def test_remove_and_remove_file(tmp_path: Path) -> None:
    cache = ThumbnailCache(tmp_path / "t")
    for plate in (1, 2, 3):
        cache.put(key_for(sha(7), plate), make_png(8, 8))
    cache.put(key_for(sha(8), 1), make_png(8, 8))
    assert cache.remove(key_for(sha(7), 1)) and not cache.remove(key_for(sha(7), 1))
    assert cache.remove_file(sha(7)) == 2
    assert [p.name for p in (tmp_path / "t").iterdir()] == [f"{key_for(sha(8), 1)}.png"]
    os.unlink(tmp_path / "t" / f"{key_for(sha(8), 1)}.png")  # removed behind the cache's back
    assert cache.get(key_for(sha(8), 1)) is None and len(cache) == 0
