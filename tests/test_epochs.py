"""The Spark engine's partition markers, read while tasks write them (no Spark needed)."""

from __future__ import annotations

from distw2v.distributed.epochs import _mark_done, finished_partitions


def test_markers_are_counted_only_when_whole(tmp_path) -> None:
    markers = str(tmp_path / "done" / "epoch-0")
    assert finished_partitions(markers) == {}  # no directory yet: nothing done
    _mark_done(markers, 3, 1234)
    _mark_done(markers, 11, 7)
    # what a task killed mid-write, or one still writing, would leave
    (tmp_path / "done" / "epoch-0" / "part-5").write_bytes(b"")
    (tmp_path / "done" / "epoch-0" / ".writing-part-6-99").write_bytes(b"12")
    assert finished_partitions(markers) == {3: 1234, 11: 7}
    assert sorted(p.name for p in (tmp_path / "done" / "epoch-0").iterdir()) == [
        ".writing-part-6-99", "part-11", "part-3", "part-5"]
