"""Bugs planted once in the Ready rule, the core or the sessions, and the seed that finds each.

Each test injects its bug with a monkeypatch, runs the seed the 10,000-seed search found it
with (docs/raft.md, "Planted bugs"), expects the violation, and checks that the same seed
passes without the bug. The runs use the full default fault mix of ``scripts/simulate.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pytest

import dqueue.sim.cluster as sim_cluster
from dqueue.queue.sessions import Sessions
from dqueue.raft import MessageType, Ready, Role
from dqueue.raft.ready_plan import ReadyPlan, plan_ready
from dqueue.sim import SimConfig, run_seed


def _config(seed: int) -> SimConfig:
    # The shape scripts/simulate.py gave a seed when the search ran: odd seeds 3 members, even
    # seeds 5, bare client values (no queue workload) and 64-byte snapshot chunks.
    base = SimConfig()
    return replace(base, size=3 if seed % 2 else 5, queue_workload=False,
                   raft_options={**base.raft_options, "snapshot_chunk_bytes": 64})


def _also_early(kind: MessageType) -> Callable[[Ready, Role, int, str | None], ReadyPlan]:
    """The Ready rule with one more message kind allowed to leave before the write."""
    def buggy(ready: Ready, role: Role, term: int, vote: str | None) -> ReadyPlan:
        plan = plan_ready(ready, role, term, vote)
        moved = tuple(m for m in plan.late if m.type is kind)
        if not moved:
            return plan
        return ReadyPlan(plan.early + moved, tuple(m for m in plan.late if m.type is not kind),
                         plan.apply_first, plan.needs_write, plan.term_or_vote_changed)
    return buggy


def _assert_caught(seed: int, kind: str, monkeypatch: pytest.MonkeyPatch,
                   plant: Callable[[pytest.MonkeyPatch], None]) -> None:
    assert run_seed(seed, _config(seed)).violation is None
    plant(monkeypatch)
    violation = run_seed(seed, _config(seed)).violation
    assert violation is not None and violation.startswith(kind), violation


@pytest.mark.parametrize("seed", [1])
def test_follower_acknowledging_appends_before_its_write(seed, monkeypatch):
    """An append response leaves before the entries it acknowledges are stored (figure 2,
    5.3): a crash before the write loses entries the leader counted toward commit."""
    _assert_caught(seed, "promise_lost", monkeypatch, lambda mp: mp.setattr(
        sim_cluster, "plan_ready", _also_early(MessageType.APPEND_ENTRIES_RESPONSE)))


@pytest.mark.parametrize("seed", [8])
def test_vote_sent_before_its_write(seed, monkeypatch):
    """A granted vote leaves before the vote is stored (figure 2, 5.2): after a crash the
    member could grant a second vote in the same term."""
    _assert_caught(seed, "promise_lost", monkeypatch, lambda mp: mp.setattr(
        sim_cluster, "plan_ready", _also_early(MessageType.REQUEST_VOTE_RESPONSE)))


@pytest.mark.parametrize("seed", [1])
def test_session_applying_a_repeat_again(seed, monkeypatch):
    """The session table never recognises a repeat (dissertation 6.3): a duplicated PROPOSE
    or a client's retry is applied a second time."""
    _assert_caught(seed, "duplicate_apply", monkeypatch, lambda mp: mp.setattr(
        Sessions, "lookup", lambda self, client_id, seq: None))


def test_duplicates_counted_when_expected(monkeypatch):
    """A run that says duplicates are expected counts them instead of failing."""
    monkeypatch.setattr(Sessions, "lookup", lambda self, client_id, seq: None)
    result = run_seed(1, replace(_config(1), duplicates_expected=True))
    assert result.violation is None and result.stats["duplicates"] > 0
