"""The ``release`` command: a leased task handed back unstarted costs no attempt."""

from __future__ import annotations

from typing import Any

import pytest

import dqueue.queue as dq
from dqueue.queue.commands import InvalidCommand, command_from_plain
from dqueue.queue.release import Release

CONFIG = dq.QueueConfig(lease_ms=10_000, max_retries=1, backoff_base_ms=5_000,
                        backoff_jitter=0.0, retention_ms=100_000)
NONCE = "0123456789abcdef" * 2


class Run:
    """One state and the log index of its next command."""

    def __init__(self) -> None:
        self.state = dq.QueueState(CONFIG)
        self.index = 0

    def apply(self, command: Any) -> dict[str, Any]:
        self.index += 1
        outcome = self.state.apply(command, self.index)
        assert outcome is not None
        return outcome

    def ok(self, command: Any) -> dict[str, Any]:
        outcome = self.apply(command)
        assert outcome["ok"], outcome
        return outcome["value"]

    def lease(self, now_ms: int, worker: str = "w1", n: int = 1) -> list[dict[str, Any]]:
        return self.ok(dq.Lease(worker_id=worker, max_tasks=n, nonce=NONCE,
                                now_ms=now_ms))["tasks"]


def _run_with(n: int) -> Run:
    run = Run()
    run.ok(dq.Enqueue(tasks=tuple(dq.NewTask(id=f"t{i}", type="email") for i in range(n)),
                      now_ms=1_000))
    return run


def test_release_makes_the_task_visible_now_without_an_attempt() -> None:
    run = _run_with(1)
    (task,) = run.lease(2_000)
    assert task["attempts"] == 1
    value = run.ok(Release(id="t0", worker_id="w1", token=task["lease"]["token"], now_ms=3_000))
    released = value["task"]
    assert released["status"] == "pending" and released["attempts"] == 0
    assert released["lease"] is None and released["visible_at_ms"] == 3_000
    assert released["last_error"] is None
    # Visible at once (no backoff), to another worker.
    (again,) = run.lease(3_000, worker="w2")
    assert again["id"] == "t0" and again["attempts"] == 1


def test_releases_never_use_up_max_retries() -> None:
    run = _run_with(1)
    for step in range(5):  # far more hand-backs than max_retries (1) allows failures
        (task,) = run.lease(2_000 + step)
        run.ok(Release(id="t0", worker_id="w1", token=task["lease"]["token"],
                       now_ms=2_000 + step))
    (task,) = run.lease(3_000)
    # The first real failure is still only the first attempt: retried, not dead.
    value = run.ok(dq.Nack(id="t0", worker_id="w1", token=task["lease"]["token"],
                           reason="ValueError: bad", now_ms=3_000))
    assert value["task"]["status"] == "pending" and value["task"]["attempts"] == 1


def test_an_expired_lease_still_counts() -> None:
    run = _run_with(1)
    run.lease(2_000)
    run.ok(dq.Tick(now_ms=2_000 + CONFIG.lease_ms + 1))
    task = run.state.get_task("t0")
    assert task is not None and task["attempts"] == 1 and task["status"] == "pending"


@pytest.mark.parametrize("worker, token, code", [
    ("w2", None, "lease_conflict"),     # another worker
    ("w1", "wrong.0", "lease_conflict"),  # not the lease's token
])
def test_release_is_refused_to_anyone_not_holding_the_lease(worker: str, token: str | None,
                                                            code: str) -> None:
    run = _run_with(1)
    (task,) = run.lease(2_000)
    outcome = run.apply(Release(id="t0", worker_id=worker,
                                token=token or task["lease"]["token"], now_ms=3_000))
    assert not outcome["ok"] and outcome["code"] == code
    held = run.state.get_task("t0")
    assert held is not None and held["status"] == "leased" and held["attempts"] == 1


def test_release_of_an_unknown_or_completed_task_is_refused() -> None:
    run = _run_with(1)
    (task,) = run.lease(2_000)
    token = task["lease"]["token"]
    assert run.apply(Release(id="nope", worker_id="w1", token=token,
                             now_ms=3_000))["code"] == "not_found"
    run.ok(dq.Ack(id="t0", worker_id="w1", token=token, now_ms=3_000))
    outcome = run.apply(Release(id="t0", worker_id="w1", token=token, now_ms=3_000))
    assert outcome["code"] == "lease_conflict"
    completed = run.state.get_task("t0")
    assert completed is not None and completed["status"] == "completed"


def test_release_round_trips_its_plain_form_and_checks_fields() -> None:
    cmd = Release(id="t0", worker_id="w1", token="abc.0", now_ms=7)
    assert command_from_plain(cmd.to_plain()) == cmd
    with pytest.raises(InvalidCommand) as info:
        command_from_plain({"op": "release", "worker_id": "w1"})
    assert info.value.field == "id"
    with pytest.raises(InvalidCommand) as info:
        command_from_plain({"op": "release", "id": "t0", "worker_id": "w1", "lease_ms": 5})
    assert info.value.field == "lease_ms"


def test_released_state_survives_a_snapshot() -> None:
    run = _run_with(2)
    tasks = run.lease(2_000, n=2)
    run.ok(Release(id=tasks[0]["id"], worker_id="w1", token=tasks[0]["lease"]["token"],
                   now_ms=2_500))
    copy = dq.QueueState(CONFIG)
    copy.restore(run.state.snapshot())
    assert copy.get_task(tasks[0]["id"]) == run.state.get_task(tasks[0]["id"])
    # The restored copy leases the released task again, as the original would.
    a = copy.apply(dq.Lease(worker_id="w3", nonce=NONCE, now_ms=3_000), run.index + 1)
    b = run.state.apply(dq.Lease(worker_id="w3", nonce=NONCE, now_ms=3_000), run.index + 1)
    assert a == b and a is not None and a["value"]["tasks"][0]["id"] == tasks[0]["id"]
