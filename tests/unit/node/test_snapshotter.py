"""Snapshotter: the forked child captures the state at fork time; failures are survived."""

from __future__ import annotations

import os
import time

import pytest

from dqueue.node.snapshotter import Snapshotter


def _wait(snapshotter: Snapshotter, deadline_s: float = 10.0):
    deadline = time.monotonic() + deadline_s
    while snapshotter.busy:
        assert time.monotonic() < deadline, "the snapshot child never finished"
        taken = snapshotter.poll()
        if taken is not None or not snapshotter.busy:
            return taken
        time.sleep(0.005)  # polling interval of a deadline wait
    return None


@pytest.mark.parametrize("use_fork", [True, False])
def test_snapshot_holds_the_state_as_it_was_when_started(tmp_path, use_fork):
    snapshotter = Snapshotter(str(tmp_path), use_fork=use_fork)
    state = [b"a", b"b"]
    snapshotter.start(7, 2, lambda: b"".join(state))
    state.append(b"changed after the start")
    taken = _wait(snapshotter)
    assert (taken.index, taken.term, taken.data) == (7, 2, b"ab")
    assert not snapshotter.busy
    assert [n for n in os.listdir(tmp_path) if n.endswith(".tmp")] == []


def test_a_failing_child_is_reported_and_cleared(tmp_path):
    snapshotter = Snapshotter(str(tmp_path), use_fork=True)

    def boom() -> bytes:
        raise RuntimeError("serialization failed")

    snapshotter.start(3, 1, boom)
    assert _wait(snapshotter) is None
    assert not snapshotter.busy
    assert [n for n in os.listdir(tmp_path) if n.endswith(".tmp")] == []


def test_leftover_files_of_a_killed_node_are_removed(tmp_path):
    (tmp_path / "snapshot.5.123.tmp").write_bytes(b"partial")
    (tmp_path / "keep.txt").write_bytes(b"x")
    Snapshotter(str(tmp_path))
    assert sorted(os.listdir(tmp_path)) == ["keep.txt"]


def test_close_stops_a_running_child(tmp_path):
    snapshotter = Snapshotter(str(tmp_path), use_fork=True)
    snapshotter.start(1, 1, lambda: (time.sleep(30), b"")[1])
    snapshotter.close()
    assert not snapshotter.busy
