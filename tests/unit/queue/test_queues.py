"""Named queues (issue 15): settings, the queue commands, dead-letter targets, snapshots."""

from __future__ import annotations

import json
from typing import Any

import pytest

import dqueue.queue as dq
from dqueue.queue import fields
from dqueue.queue.config import settings_to_plain
from dqueue.queue.queues import QueueSettings, check_settings
from dqueue.queue.snapshot import COLUMNS_2, STATUS_CODES

CONFIG = dq.QueueConfig(lease_ms=1_000, max_retries=3, backoff_base_ms=100, backoff_cap_ms=100,
                        backoff_jitter=0.0, retention_ms=100_000, dedup_window_ms=50_000)


class Driver:
    """Applies plain commands (as the log holds them) at increasing indexes."""

    def __init__(self, config: dq.QueueConfig = CONFIG) -> None:
        self.state = dq.QueueState(config)
        self.index = 0

    def run(self, plain: dict[str, Any]) -> dict[str, Any]:
        self.index += 1
        return self.state.apply(dq.command_from_plain(plain), self.index)

    def ok(self, plain: dict[str, Any]) -> dict[str, Any]:
        outcome = self.run(plain)
        assert outcome["ok"], outcome
        return outcome["value"]

    def code(self, plain: dict[str, Any]) -> str:
        outcome = self.run(plain)
        assert not outcome["ok"] and outcome["message"], outcome
        return outcome["code"]

    def create(self, name: str, now_ms: int = 0, **settings: Any) -> dict[str, Any]:
        return self.ok({"op": "create_queue", "name": name, "settings": settings,
                        "now_ms": now_ms})

    def enqueue(self, task_id: str, queue: str | None, now_ms: int = 0,
                **extra: Any) -> dict[str, Any]:
        task = {"id": task_id, "type": "t", **extra}
        if queue is not None:
            task["queue"] = queue
        return self.ok({"op": "enqueue", "tasks": [task], "now_ms": now_ms})

    def lease(self, now_ms: int, queues: list[str] | None = None,
              max_tasks: int = 1) -> list[dict[str, Any]]:
        plain: dict[str, Any] = {"op": "lease", "worker_id": "w", "max_tasks": max_tasks,
                                 "now_ms": now_ms}
        if queues is not None:
            plain["queues"] = queues
        return self.ok(plain)["tasks"]

    def nack(self, task: dict[str, Any], now_ms: int) -> dict[str, Any]:
        return self.ok({"op": "nack", "id": task["id"], "worker_id": "w",
                        "token": task["lease"]["token"], "reason": "boom",
                        "now_ms": now_ms})["task"]


def refused_field(obj: Any) -> str:
    with pytest.raises(fields.InvalidCommand) as caught:
        check_settings(obj)
    return caught.value.field


# ---------------------------------------------------------------- settings and names


BOUNDS = {
    "lease_ms": fields.LEASE_MS, "max_retries": fields.MAX_RETRIES,
    "backoff_base_ms": fields.BACKOFF_MS, "backoff_cap_ms": fields.BACKOFF_MS,
    "retention_ms": fields.RETENTION_MS, "delay_ms": fields.DELAY_MS,
    "max_depth": fields.MAX_DEPTH, "max_message_bytes": fields.MAX_MESSAGE_BYTES,
    "wait_ms": fields.WAIT_MS,
}


@pytest.mark.parametrize("name", sorted(BOUNDS))
def test_every_integer_setting_takes_its_bounds_and_refuses_past_them(name: str) -> None:
    rule = BOUNDS[name]
    # backoff_base_ms must not pass backoff_cap_ms: give the cap its highest value.
    extra = {"backoff_cap_ms": fields.BACKOFF_MS.high} if name == "backoff_base_ms" else {}
    for value in (rule.low, rule.high):
        assert getattr(check_settings({name: value, **extra}), name) == value
    for bad in (rule.low - 1, rule.high + 1, True, "5", 1.5):
        if name == "max_message_bytes" and bad == 0:
            continue  # 0 means "the edges' default"
        assert refused_field({name: bad, **extra}) == f"settings.{name}"


def test_optional_settings_follow_the_cluster_and_zero_means_no_bound_of_its_own() -> None:
    assert check_settings({"max_message_bytes": 0}).max_message_bytes == 0
    base = check_settings({"lease_ms": 5_000, "max_depth": 3, "tags": {"team": "a"}})
    cleared = check_settings({"lease_ms": None, "max_depth": None, "tags": None}, base=base)
    assert cleared == QueueSettings()
    kept = check_settings({"wait_ms": 1_000}, base=base)
    assert (kept.lease_ms, kept.max_depth, kept.wait_ms) == (5_000, 3, 1_000)


def test_unknown_setting_is_named_with_the_known_ones() -> None:
    with pytest.raises(fields.InvalidCommand) as caught:
        check_settings({"visibility": 5})
    assert caught.value.field == "settings.visibility"
    assert "lease_ms" in caught.value.message and "dead_letter_queue" in caught.value.message


def test_setting_combinations_and_tags_are_checked() -> None:
    assert refused_field({"backoff_base_ms": 10, "backoff_cap_ms": 5}) == \
        "settings.backoff_base_ms"
    assert refused_field([("lease_ms", 5)]) == "settings"
    assert refused_field({"tags": ["a"]}) == "settings.tags"
    assert refused_field({"tags": {"k": 5}}) == "settings.tags.k"
    assert refused_field({"tags": {f"k{i}": "v" for i in range(fields.MAX_TAGS + 1)}}) == \
        "settings.tags"
    assert check_settings({"tags": {"b": "2", "a": "1"}}).tags == (("a", "1"), ("b", "2"))
    assert refused_field({"dead_letter_queue": "no spaces"}) == "settings.dead_letter_queue"


@pytest.mark.parametrize("name", ["a", "default", "Orders_2-x", "q.fifo", "x" * 80,
                                  "x" * 75 + ".fifo"])
def test_queue_names_follow_sqs(name: str) -> None:
    assert fields.QUEUE_NAME.check(name, "name") == name
    assert dq.command_from_plain({"op": "create_queue", "name": name}).name == name


@pytest.mark.parametrize("name", ["", "x" * 81, "x" * 76 + ".fifo", "a.b", "a b", "é",
                                  ".fifo", "q.fifo.fifo", "q.FIFO", 5, None])
def test_queue_names_outside_sqs_rules_are_refused(name: Any) -> None:
    with pytest.raises(fields.InvalidCommand) as caught:
        dq.command_from_plain({"op": "create_queue", "name": name})
    assert caught.value.field == "name"
    if name is not None:  # an enqueue without a queue goes to the default one
        with pytest.raises(fields.InvalidCommand) as caught:
            dq.command_from_plain({"op": "enqueue", "tasks": [{"type": "t", "id": "a",
                                                               "queue": name}]})
        assert caught.value.field == "tasks[0].queue"


# ---------------------------------------------------------------- create, update, delete


def test_create_is_idempotent_with_equal_settings_and_refused_with_others() -> None:
    d = Driver()
    first = d.create("jobs", now_ms=5, lease_ms=2_000)
    assert first["created"] and first["queue"]["settings"]["lease_ms"] == 2_000
    assert first["queue"]["created_at_ms"] == 5
    again = d.create("jobs", now_ms=9, lease_ms=2_000)
    assert not again["created"] and again["queue"]["created_at_ms"] == 5
    assert d.code({"op": "create_queue", "name": "jobs", "settings": {"lease_ms": 3_000}}) \
        == "queue_exists"
    assert d.code({"op": "create_queue", "name": "default", "settings": {"max_depth": 1}}) \
        == "queue_exists"
    assert [q["name"] for q in d.state.list_queues()] == ["default", "jobs"]
    assert d.state.list_queues("jo")[0]["settings"]["lease_ms"] == 2_000


def test_dead_letter_target_must_exist_and_differ() -> None:
    d = Driver()
    assert d.code({"op": "create_queue", "name": "jobs",
                   "settings": {"dead_letter_queue": "dlq"}}) == "queue_not_found"
    assert d.code({"op": "create_queue", "name": "jobs",
                   "settings": {"dead_letter_queue": "jobs"}}) == "invalid"
    d.create("dlq")
    d.create("jobs", dead_letter_queue="dlq")
    assert d.state.get_queue("dlq")["dead_letter_sources"] == ["jobs"]
    assert d.code({"op": "update_queue", "name": "dlq",
                   "changes": {"dead_letter_queue": "dlq"}}) == "invalid"


def test_update_changes_only_the_named_settings() -> None:
    d = Driver()
    d.create("jobs", lease_ms=2_000, max_depth=5, backoff_cap_ms=100)
    changed = d.ok({"op": "update_queue", "name": "jobs", "changes": {"max_depth": None,
                                                                      "wait_ms": 3_000},
                    "now_ms": 7})["queue"]
    assert changed["settings"]["lease_ms"] == 2_000 and changed["settings"]["max_depth"] == 0
    assert changed["settings"]["wait_ms"] == 3_000 and changed["updated_at_ms"] == 7
    assert d.code({"op": "update_queue", "name": "nope", "changes": {"wait_ms": 1}}) \
        == "queue_not_found"
    # Each change is valid alone; with the queue's cap the base is too high.
    assert d.code({"op": "update_queue", "name": "jobs",
                   "changes": {"backoff_base_ms": 500}}) == "invalid"
    assert d.state.get_queue("jobs")["settings"]["backoff_base_ms"] is None
    for changes, field in (({}, "changes"), ({"backoff_base_ms": 5, "backoff_cap_ms": 1},
                                            "changes.backoff_base_ms")):
        with pytest.raises(fields.InvalidCommand) as caught:
            dq.command_from_plain({"op": "update_queue", "name": "jobs", "changes": changes})
        assert caught.value.field == field


def test_default_always_exists_and_cannot_be_deleted() -> None:
    d = Driver()
    assert d.state.get_queue("default")["counts"]["pending"] == 0
    assert d.code({"op": "delete_queue", "name": "default"}) == "invalid"
    assert d.code({"op": "delete_queue", "name": "nope"}) == "queue_not_found"
    assert d.enqueue("a", None)["tasks"][0]["queue"] == "default"


def test_unknown_queue_on_enqueue_lease_redrive_and_purge() -> None:
    d = Driver()
    assert d.code({"op": "enqueue", "tasks": [{"id": "a", "type": "t", "queue": "nope"}]}) \
        == "queue_not_found"
    assert d.code({"op": "enqueue", "tasks": [{"id": "a", "type": "t"},
                                              {"id": "b", "type": "t", "queue": "nope"}]}) \
        == "queue_not_found"
    assert d.state.get_task("a") is None  # all or nothing
    assert d.code({"op": "lease", "worker_id": "w", "queues": ["default", "nope"]}) \
        == "queue_not_found"
    assert d.code({"op": "redrive", "queue": "nope"}) == "queue_not_found"
    assert d.code({"op": "purge", "queue": "nope"}) == "queue_not_found"
    # A lease naming a missing queue is applied (and refused), not kept waiting.
    assert d.state.has_visible(None, 0, ["nope"]) and not d.state.has_visible(None, 0)


def test_delete_removes_tasks_of_every_status_and_stale_acks_find_nothing() -> None:
    d = Driver()
    d.create("jobs")
    for task_id in "abcd":
        d.enqueue(task_id, "jobs", idempotency_key=f"k{task_id}")
    d.enqueue("keep", None)
    a, b, c = d.lease(0, ["jobs"], max_tasks=3)
    d.ok({"op": "ack", "id": a["id"], "worker_id": "w", "token": a["lease"]["token"]})
    d.ok({"op": "nack", "id": b["id"], "worker_id": "w", "token": b["lease"]["token"],
          "dead_letter": True})
    assert {t: d.state.get_task(t)["status"] for t in "abcd"} == {
        "a": "completed", "b": "dead", "c": "leased", "d": "pending"}
    assert d.ok({"op": "delete_queue", "name": "jobs"}) == {"count": 4}
    assert d.state.get_queue("jobs") is None and d.state.get_task("keep") is not None
    assert all(d.state.get_task(t) is None for t in "abcd")
    assert d.code({"op": "ack", "id": c["id"], "worker_id": "w",
                   "token": c["lease"]["token"]}) == "not_found"
    assert d.code({"op": "nack", "id": c["id"], "worker_id": "w",
                   "token": c["lease"]["token"]}) == "not_found"
    assert d.state.stats()["by_queue"] == {"default": {
        "pending": 1, "leased": 0, "completed": 0, "dead": 0, "cancelled": 0}}
    # The name and the keys are free again: a new queue starts empty.
    d.create("jobs")
    assert not d.enqueue("a2", "jobs", idempotency_key="ka")["duplicates"][0]
    assert d.state.next_deadline_ms() is None  # c's lease entry went with it


def test_purge_keeps_completed_and_cancelled_tasks() -> None:
    d = Driver()
    d.create("jobs")
    for task_id in "abcde":
        d.enqueue(task_id, "jobs")
    a, b, _ = d.lease(0, ["jobs"], max_tasks=3)
    d.ok({"op": "ack", "id": a["id"], "worker_id": "w", "token": a["lease"]["token"]})
    d.ok({"op": "nack", "id": b["id"], "worker_id": "w", "token": b["lease"]["token"],
          "dead_letter": True})
    d.ok({"op": "cancel", "id": "d"})
    assert d.ok({"op": "purge_queue", "name": "jobs"}) == {"count": 3}  # b dead, c leased, e
    assert d.state.get_queue("jobs")["counts"] == {
        "pending": 0, "leased": 0, "completed": 1, "dead": 0, "cancelled": 1}
    assert d.code({"op": "purge_queue", "name": "nope"}) == "queue_not_found"


# ---------------------------------------------------------------- retries and dead letters


def test_dead_letter_moves_after_max_retries_plus_one_failures() -> None:
    d = Driver()
    d.create("dlq", max_retries=5)
    d.create("jobs", max_retries=1, dead_letter_queue="dlq")
    assert d.enqueue("a", "jobs")["tasks"][0]["max_retries"] == 1
    first = d.nack(d.lease(0, ["jobs"])[0], 0)
    assert first["status"] == "pending" and first["queue"] == "jobs"
    second = d.nack(d.lease(1_000, ["jobs"])[0], 1_000)  # attempt max_retries + 1 fails
    assert second["status"] == "pending" and second["queue"] == "dlq"
    assert second["source_queue"] == "jobs" and second["attempts"] == 0
    assert second["max_retries"] == 5 and second["last_error"] == "boom"
    assert second["visible_at_ms"] == 1_000
    assert d.lease(1_000, ["jobs"]) == []
    assert [t["id"] for t in d.lease(1_000, ["jobs", "dlq"])] == ["a"]
    assert d.state.drain_events()[-1] == ("dead_lettered", "a", "t")


def test_max_retries_zero_dead_letters_on_the_first_failure_without_a_target() -> None:
    d = Driver()
    d.enqueue("a", None, max_retries=0)
    dead = d.nack(d.lease(0)[0], 0)
    assert dead["status"] == "dead" and dead["queue"] == "default"
    assert dead["source_queue"] is None


def test_an_expired_lease_dead_letters_into_the_target_and_wakes_its_lease() -> None:
    d = Driver()
    d.create("dlq")
    d.create("jobs", max_retries=0, lease_ms=500, dead_letter_queue="dlq")
    d.enqueue("a", "jobs")
    d.lease(0, ["jobs"])
    assert not d.state.has_visible(None, 499, ["dlq"])
    assert d.state.has_visible(None, 500, ["dlq"])  # the expiry moves it there, visible
    assert not d.state.has_visible(None, 500, ["jobs"])
    assert [t["id"] for t in d.lease(600, ["dlq"])] == ["a"]


def test_a_deleted_target_leaves_dead_tasks_in_their_queue() -> None:
    d = Driver()
    d.create("dlq")
    d.create("jobs", max_retries=0, dead_letter_queue="dlq")
    d.enqueue("a", "jobs")
    d.ok({"op": "delete_queue", "name": "dlq"})
    dead = d.nack(d.lease(0, ["jobs"])[0], 0)
    assert dead["status"] == "dead" and dead["queue"] == "jobs"


def test_move_tasks_back_to_their_source_and_to_a_destination() -> None:
    d = Driver()
    d.create("dlq")
    d.create("jobs", max_retries=0, dead_letter_queue="dlq")
    d.create("other")
    for task_id in "abc":
        d.enqueue(task_id, "jobs")
    for task in d.lease(0, ["jobs"], max_tasks=3):
        d.nack(task, 0)
    assert d.state.get_queue("dlq")["counts"]["pending"] == 3
    d.enqueue("z", "dlq")  # sent to dlq directly: it has no source to go back to
    assert d.ok({"op": "move_tasks", "source": "dlq", "max_tasks": 2, "now_ms": 10}) \
        == {"count": 2}
    back = d.state.get_task("a")
    assert back["queue"] == "jobs" and back["source_queue"] is None
    assert back["attempts"] == 0 and back["visible_at_ms"] == 10
    assert d.ok({"op": "move_tasks", "source": "dlq"}) == {"count": 1}  # c; z stays
    assert d.state.get_task("z")["queue"] == "dlq"
    assert d.ok({"op": "move_tasks", "source": "dlq", "destination": "other"}) == {"count": 1}
    assert d.state.get_task("z")["queue"] == "other"
    assert d.code({"op": "move_tasks", "source": "dlq", "destination": "dlq"}) == "invalid"
    assert d.code({"op": "move_tasks", "source": "nope"}) == "queue_not_found"
    assert d.code({"op": "move_tasks", "source": "dlq", "destination": "nope"}) \
        == "queue_not_found"
    assert [t["id"] for t in d.lease(20, ["jobs"], max_tasks=5)] == ["a", "b", "c"]


def test_redrive_and_purge_by_queue() -> None:
    d = Driver()
    d.create("jobs")
    d.enqueue("a", "jobs", max_retries=0)
    d.enqueue("b", None, max_retries=0)
    d.nack(d.lease(0, ["jobs"])[0], 0)
    d.nack(d.lease(0)[0], 0)
    assert [t["id"] for t in d.state.list_tasks("dead", queue="jobs")["tasks"]] == ["a"]
    assert d.ok({"op": "redrive", "queue": "jobs"}) == {"count": 1}
    assert d.state.get_task("a")["status"] == "pending"
    assert d.ok({"op": "purge", "queue": "jobs"}) == {"count": 0}
    assert d.ok({"op": "purge", "queue": "default"}) == {"count": 1}


# ---------------------------------------------------------------- per-queue settings


def test_max_depth_bounds_each_queue_on_its_own() -> None:
    d = Driver()
    d.create("small", max_depth=2)
    d.enqueue("a", "small")
    d.enqueue("b", "small")
    outcome = d.run({"op": "enqueue", "tasks": [{"id": "c", "type": "t", "queue": "small"}]})
    assert outcome["code"] == "queue_full" and outcome["queue"] == "small"
    batch = d.run({"op": "enqueue", "tasks": [{"id": "x", "type": "t"},
                                              {"id": "c", "type": "t", "queue": "small"}]})
    assert batch["code"] == "queue_full" and d.state.get_task("x") is None
    for task_id in "xyz":
        d.enqueue(task_id, None)  # the default queue has no bound of its own
    task = d.lease(0, ["small"])[0]
    d.ok({"op": "ack", "id": task["id"], "worker_id": "w", "token": task["lease"]["token"]})
    d.enqueue("c", "small")  # a finished task no longer counts


def test_lease_delay_and_retries_follow_the_queue() -> None:
    d = Driver()
    d.create("slow", lease_ms=7_000, delay_ms=300, max_retries=9)
    task = d.enqueue("a", "slow", now_ms=0)["tasks"][0]
    assert task["visible_at_ms"] == 300 and task["max_retries"] == 9
    assert d.enqueue("b", "slow", delay_ms=0, max_retries=1)["tasks"][0]["visible_at_ms"] == 0
    assert d.lease(300, ["slow"], max_tasks=2)[0]["lease"]["expires_at_ms"] == 7_300
    d.enqueue("c", None, now_ms=300)
    assert d.lease(300)[0]["lease"]["expires_at_ms"] == 1_300


def test_lease_across_queues_takes_the_best_by_priority_then_log_order() -> None:
    d = Driver()
    d.create("jobs")
    d.enqueue("a", None, priority=0)
    d.enqueue("b", "jobs", priority=0)
    d.enqueue("c", "jobs", priority=5)
    d.enqueue("d", None, priority=5)
    got = d.lease(0, ["jobs", "default"], max_tasks=4)
    assert [t["id"] for t in got] == ["c", "d", "a", "b"]


def test_retention_per_queue_prunes_finished_tasks() -> None:
    d = Driver()
    d.create("brief", retention_ms=60_000)
    for task_id, queue in (("a", "brief"), ("b", None)):
        d.enqueue(task_id, queue, max_retries=0)
        d.nack(d.lease(0, [queue or "default"])[0], 0)
    d.ok({"op": "tick", "now_ms": 60_000})
    assert d.state.get_task("a") is None and d.state.get_task("b") is not None
    d.ok({"op": "tick", "now_ms": 100_000})
    assert d.state.get_task("b") is None
    # A changed retention applies to the tasks already finished.
    d.enqueue("c", "brief", now_ms=100_000, max_retries=0)
    d.nack(d.lease(100_000, ["brief"])[0], 100_000)
    d.ok({"op": "update_queue", "name": "brief", "changes": {"retention_ms": 90_000},
          "now_ms": 100_000})
    d.ok({"op": "tick", "now_ms": 189_999})
    assert d.state.get_task("c") is not None
    d.ok({"op": "tick", "now_ms": 190_000})
    assert d.state.get_task("c") is None


def test_configure_reaches_the_queues_that_did_not_choose_their_own_value() -> None:
    d = Driver()
    d.create("own", lease_ms=2_000)
    d.create("follows")
    new = dq.QueueConfig(lease_ms=9_000, max_retries=7, retention_ms=100_000)
    d.ok({"op": "configure", "settings": settings_to_plain(new)})
    for name, expected in (("own", 2_000), ("follows", 9_000), ("default", 9_000)):
        task = d.enqueue(f"t-{name}", name)["tasks"][0]
        assert task["max_retries"] == 7
        assert d.lease(0, [name])[0]["lease"]["expires_at_ms"] == expected, name


# ---------------------------------------------------------------- reads and snapshots


def test_stats_and_listings_are_by_queue() -> None:
    d = Driver()
    d.create("jobs")
    d.enqueue("a", "jobs")
    d.enqueue("b", None)
    d.lease(0, ["jobs"])
    stats = d.state.stats()
    assert stats["by_status"]["pending"] == 1 and stats["by_status"]["leased"] == 1
    assert stats["by_queue"]["jobs"]["leased"] == 1 and stats["by_queue"]["default"]["pending"] == 1
    assert [t["id"] for t in d.state.list_tasks("pending", queue="default")["tasks"]] == ["b"]
    assert d.state.list_tasks("pending", queue="jobs")["tasks"] == []


def test_snapshot_round_trip_keeps_queues_tasks_and_settings() -> None:
    d = Driver()
    d.create("dlq", tags={"team": "x"})
    d.create("jobs", now_ms=3, max_retries=0, dead_letter_queue="dlq", lease_ms=4_000)
    d.enqueue("a", "jobs", now_ms=3)
    d.enqueue("b", "jobs", now_ms=3)
    d.enqueue("c", None, now_ms=3)
    d.nack(d.lease(3, ["jobs"])[0], 3)
    d.lease(3, ["jobs"])
    data = d.state.snapshot()
    restored = dq.QueueState(CONFIG)
    restored.restore(data)
    assert restored.snapshot() == data
    assert restored.list_queues() == d.state.list_queues()
    for task_id in "abc":
        assert restored.get_task(task_id) == d.state.get_task(task_id)
    assert restored.get_task("a")["source_queue"] == "jobs"
    assert restored.get_queue("dlq")["dead_letter_sources"] == ["jobs"]
    # Indexes are rebuilt per queue: leases after the restore agree.
    index = d.index + 1
    for state in (d.state, restored):
        lease = dq.command_from_plain({"op": "lease", "worker_id": "w", "max_tasks": 5,
                                       "queues": ["dlq", "default", "jobs"], "now_ms": 5_000})
        assert [t["id"] for t in state.apply(lease, index)["value"]["tasks"]] == ["a", "b", "c"]


def test_format_2_snapshot_restores_into_the_default_queue() -> None:
    d = Driver()
    d.enqueue("a", None)
    d.enqueue("b", None, max_retries=0)
    d.lease(0, max_tasks=1)
    document = json.loads(d.state.snapshot())
    document["format"] = 2
    del document["queues"]
    for column in ("queue", "source_queue", "group", "result", "last_traceback"):
        del document["tasks"][column]
    assert tuple(document["tasks"]) == COLUMNS_2 and STATUS_CODES[0] is dq.TaskStatus.PENDING
    restored = dq.QueueState(CONFIG)
    restored.restore(json.dumps(document).encode())
    assert [q["name"] for q in restored.list_queues()] == ["default"]
    assert restored.get_task("a") == d.state.get_task("a")
    assert restored.get_task("b")["queue"] == "default"
    assert restored.stats()["by_queue"]["default"]["leased"] == 1
    assert restored.snapshot() == d.state.snapshot()  # written again as format 4


@pytest.mark.parametrize("mutate", [
    lambda doc: doc["queues"].append(["default", doc["queues"][0][1], 0, 0]),
    lambda doc: doc["queues"].pop(0),
    lambda doc: doc["tasks"]["queue"].__setitem__(0, 9),
    lambda doc: doc["queues"][1].__setitem__(1, {"lease_ms": -1}),
    lambda doc: doc["queues"][1].__setitem__(0, "bad name"),
])
def test_malformed_queues_in_a_snapshot_are_refused(mutate: Any) -> None:
    d = Driver()
    d.create("jobs")
    d.enqueue("a", "jobs")
    document = json.loads(d.state.snapshot())
    mutate(document)
    restored = dq.QueueState(CONFIG)
    with pytest.raises(ValueError):
        restored.restore(json.dumps(document).encode())
    assert restored.list_queues()[0]["name"] == "default" and restored.get_task("a") is None
