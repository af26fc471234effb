"""Named queues on a real 3-node cluster: the SDK, the CLI and workers, through followers,
across a leader's death and a member's restart (issue 15)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from dqueue.client import Client, QueueExists, QueueNotFound, RetryPolicy, TaskStatus
from dqueue.testing import wait_for
from dqueue.testing.cluster import NodeCluster

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]

APP = textwrap.dedent("""
    from dqueue.worker import Worker

    worker = Worker()

    @worker.task("q-ok")
    def ok(payload, ctx):
        return None

    @worker.task("q-fail")
    def fail(payload, ctx):
        raise RuntimeError("always")
""")


def cli(cluster: NodeCluster, node_id: str, *args: str) -> object:
    """``dqueue-cli --json ARGS`` against one member; its JSON output."""
    done = subprocess.run([sys.executable, "-m", "dqueue.cli", "--server", cluster.url(node_id),
                           "--json", *args], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_queues_through_followers_workers_failover_and_restart(tmp_path):
    (tmp_path / "qapp.py").write_text(APP)
    cluster = NodeCluster(tmp_path, 3, queue={"backoff_base": "50ms", "lease_timeout": "2s"})
    try:
        cluster.start()
        leader = cluster.leader()
        follower = next(n for n in cluster.ids if n != leader)
        # Created through a follower (forwarded to the leader, answered after commit).
        via_follower = Client(cluster.url(follower), retry=RetryPolicy(deadline_s=30.0))
        made = cli(cluster, follower, "queue", "create", "jobs-dlq")
        assert made["name"] == "jobs-dlq" and made["depth"] == 0
        jobs = via_follower.create_queue("jobs", max_retries=1, lease_seconds=2,
                                         dead_letter_queue="jobs-dlq")
        assert jobs["settings"]["dead_letter_queue"] == "jobs-dlq"
        assert via_follower.create_queue("jobs", max_retries=1, lease_seconds=2,
                                         dead_letter_queue="jobs-dlq")["name"] == "jobs"
        with pytest.raises(QueueExists):
            via_follower.create_queue("jobs", max_retries=4)
        with pytest.raises(QueueNotFound):
            via_follower.enqueue("q-ok", queue="nowhere")

        ok_ids = [via_follower.enqueue("q-ok", i, queue="jobs").id for i in range(5)]
        failing = via_follower.enqueue("q-fail", queue="jobs").id
        default_id = via_follower.enqueue("q-ok", "stays").id  # the default queue
        assert via_follower.get(failing).queue == "jobs"
        names = [q["name"] for q in cli(cluster, follower, "queue", "list")]
        assert names == ["default", "jobs", "jobs-dlq"]

        # A worker of queue "jobs" runs its tasks and never touches the default queue's.
        worker = cluster.spawn_worker("--server", cluster.url(follower), "--app",
                                      "qapp:worker", "--queues", "jobs", "--wait", "1s",
                                      log_name="queue-worker")
        try:
            wait_for(lambda: all(via_follower.get(i).status is TaskStatus.COMPLETED
                                 for i in ok_ids), 60, "the jobs queue's tasks completed")
            # max_retries 1: two attempts, then moved to the dead-letter queue as pending.
            wait_for(lambda: via_follower.get(failing).queue == "jobs-dlq", 60,
                     "the failing task moved to jobs-dlq")
        finally:
            worker.send_signal(signal.SIGTERM)
            assert worker.wait(30) == 0
        moved = via_follower.get(failing)
        assert moved.status is TaskStatus.PENDING and moved.source_queue == "jobs"
        assert moved.last_error == "RuntimeError: always"
        assert via_follower.get(default_id).status is TaskStatus.PENDING
        dlq = via_follower.get_queue("jobs-dlq")
        assert dlq["counts"]["pending"] == 1 and dlq["dead_letter_sources"] == ["jobs"]

        # The leader dies: every queue and its settings are there on the new leader.
        cluster.kill(leader)
        survivors = [n for n in cluster.ids if n != leader]
        cluster.leader(among=survivors)
        client = Client([cluster.url(n) for n in survivors], retry=RetryPolicy(deadline_s=30))
        assert client.get_queue("jobs")["settings"]["max_retries"] == 1
        assert client.move_tasks("jobs-dlq") == 1  # back where it died
        back = client.get(failing)
        assert back.queue == "jobs" and back.attempts == 0
        client.update_queue("jobs", max_retries=None, wait_seconds=5)
        assert client.get_queue("jobs")["settings"]["max_retries"] is None

        # The dead member comes back and catches up: the same queues, the same counts.
        cluster.start(leader)
        wait_for(lambda: (cluster.health(leader) or {}).get("leader_id") is not None, 60,
                 "the restarted member knows the leader")
        on_restarted = Client(cluster.url(leader), retry=RetryPolicy(deadline_s=30))
        wait_for(lambda: on_restarted.get_queue("jobs")["settings"]["wait_seconds"] == 5, 60,
                 "the restarted member applied the update")
        assert on_restarted.get_queue("jobs")["counts"] == client.get_queue("jobs")["counts"]
        assert client.purge_queue("jobs") == 1
        assert client.delete_queue("jobs") == 5  # the completed tasks go with it
        with pytest.raises(QueueNotFound):
            client.get_queue("jobs")
    finally:
        cluster.close()
