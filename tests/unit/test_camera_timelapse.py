"""The timelapse's frame rule and its spool's byte cap (a long print keeps start to end)."""

from __future__ import annotations

import itertools
from pathlib import Path

from bambu_edge.camera.timelapse import FrameRule, Spool, default_spool_dir


def test_a_frame_per_new_layer_or_per_interval() -> None:
    layers = FrameRule(every_layer=True, interval_s=30)
    assert [layers.due(n, 0.0) for n in (0, 1, 1, 2, 2, 3, None)] == [
        False,
        True,
        False,
        True,
        False,
        True,
        False,
    ]
    timed = FrameRule(every_layer=False, interval_s=30)
    assert [timed.due(None, t) for t in (0.0, 10.0, 29.0, 30.0, 45.0, 61.0)] == [
        True,
        False,
        False,
        True,
        False,
        True,
    ]


def test_the_spool_thins_itself_to_its_cap_and_keeps_the_whole_print(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "uid", max_bytes=10_000)
    spool.open()
    for i in range(100):
        spool.add(bytes([i]) * 1000)
    kept = [int(p.stem) for p in spool.frames()]
    assert spool.bytes <= 10_000 and sum(p.stat().st_size for p in spool.frames()) == spool.bytes
    assert kept[0] == 0 and kept[-1] >= 100 - spool.stride  # from the first layer to near the last
    assert all(b - a == spool.stride for a, b in itertools.pairwise(kept))  # evenly spread
    assert spool.last == bytes([99]) * 1000  # the print's last frame, kept for its picture
    assert spool.written < 100 * 1000  # skipped captures are never written
    spool.remove()
    assert not (tmp_path / "uid").exists()


def test_the_spool_is_in_ram_where_it_may_be_and_one_per_data_dir(tmp_path: Path) -> None:
    ram = tmp_path / "shm"
    ram.mkdir()
    a, b = default_spool_dir(tmp_path / "a", ram), default_spool_dir(tmp_path / "b", ram)
    assert a.parent == ram and b.parent == ram and a != b
    assert default_spool_dir(tmp_path / "a", ram) == a  # the same after a restart: a print goes on
    # No RAM directory to write to: the data dir.
    assert default_spool_dir(tmp_path / "a", tmp_path / "none") == tmp_path / "a" / "timelapse-spool"
