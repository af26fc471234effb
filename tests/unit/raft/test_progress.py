"""Progress: the leader's flow control for one follower."""

from __future__ import annotations

from dqueue.raft.progress import Progress
from dqueue.raft.types import ProgressState


def test_probe_pauses_after_one_append_until_answer():
    pr = Progress(5, max_inflight=4)
    assert not pr.is_paused()
    pr.sent_entries(7)
    assert pr.is_paused()
    assert pr.maybe_update(7)
    assert not pr.is_paused() and pr.next_index == 8


def test_replicate_bounds_inflight_and_frees_on_ack():
    pr = Progress(1, max_inflight=2)
    pr.maybe_update(0)
    pr.become_replicate()
    pr.sent_entries(3)
    pr.sent_entries(5)
    assert pr.is_paused() and pr.next_index == 6
    pr.maybe_update(3)
    pr.free_inflight(3)
    assert not pr.is_paused()


def test_stale_rejection_is_ignored():
    pr = Progress(10, max_inflight=4)
    assert not pr.maybe_decrease_to(5, 3)  # not the last probe's prev index
    assert pr.maybe_decrease_to(9, 3)
    assert pr.next_index == 4


def test_rejection_in_replicate_restarts_from_match():
    pr = Progress(1, max_inflight=4)
    pr.maybe_update(4)
    pr.become_replicate()
    pr.sent_entries(9)
    assert not pr.maybe_decrease_to(3, 0)
    assert pr.maybe_decrease_to(7, 0)
    assert pr.next_index == 5


def test_next_never_at_or_below_match():
    pr = Progress(10, max_inflight=4)
    pr.maybe_update(6)
    pr.probe_sent = True
    pr.next_index = 10
    assert pr.maybe_decrease_to(9, 0)
    assert pr.next_index == 7


def test_snapshot_state_is_paused_and_probe_resumes_after_it():
    pr = Progress(3, max_inflight=4)
    pr.become_snapshot(20)
    assert pr.is_paused() and pr.state is ProgressState.SNAPSHOT
    pr.become_probe()
    assert pr.next_index == 21 and not pr.is_paused()
