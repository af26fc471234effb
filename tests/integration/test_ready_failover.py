"""``GET /ready`` through a leader kill, on a real 3-node cluster (supervisor, Raft and API
processes, LMDB, sockets on 127.0.0.1).

Two survivors elect a new leader within a few hundred milliseconds, too fast to be sure of
seeing a survivor without a leader: the plain failover only checks that they are ready again
under the new leader. So in the other test a follower is killed first (the leader and the other
follower still make a majority), then the leader: the last member cannot win an election
alone, and its ``/ready`` must say ``503 no_leader`` until the killed follower comes back.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dqueue.testing.cluster import NodeCluster, is_alive, wait_http
from dqueue.testing.http import Http

pytestmark = pytest.mark.integration

# From a kill to the election timeout of the survivors and back, on a loaded 2-core machine.
FAILOVER_DEADLINE_S = 60.0


def ready(nodes: NodeCluster, node_id: str) -> tuple[int, dict[str, str], Any]:
    """``GET /ready`` of a member: status, headers, body."""
    client = Http(nodes.http_addr[node_id], timeout_s=5)
    try:
        return client.call("GET", "/ready")
    finally:
        client.close()


def is_ready(nodes: NodeCluster, node_id: str) -> bool:
    status, _, body = ready(nodes, node_id)
    return status == 200 and body["ready"] is True


def is_gone(pid: int) -> bool:
    """The process has exited (a zombie not yet reaped by its new parent counts as gone)."""
    if not is_alive(pid):
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True


def kill_node(nodes: NodeCluster, node_id: str) -> None:
    """kill -9 a member's supervisor, Raft and API processes (by PID) and wait until all are
    gone."""
    proc = nodes.procs[node_id]
    pids = [proc.pid, *nodes.child_pids(node_id)]
    assert len(pids) == 3, f"{node_id} runs {pids}: supervisor, Raft and API expected"
    nodes.kill(node_id)
    assert proc.poll() is not None, f"{node_id}'s supervisor survived kill -9"
    wait_http(lambda: all(is_gone(pid) for pid in pids), f"{node_id}'s processes gone")


@pytest.fixture
def cluster(tmp_path) -> Iterator[NodeCluster]:
    nodes = NodeCluster(tmp_path, 3, log_format="json", start=True)
    try:
        nodes.leader()
        yield nodes
    finally:
        nodes.close()


def test_ready_through_a_leader_kill(cluster: NodeCluster) -> None:
    for node_id in cluster.ids:
        wait_http(lambda n=node_id: is_ready(cluster, n), f"{node_id} ready")
    leader = cluster.leader()
    follower, survivor = (n for n in cluster.ids if n != leader)

    kill_node(cluster, follower)
    # The leader and the survivor are still a majority: the survivor stays ready.
    status, _, body = ready(cluster, survivor)
    assert status == 200 and body["leader_id"] == leader, body

    kill_node(cluster, leader)
    # Once its election timeout passes, the survivor knows no leader, and cannot elect one.
    def no_leader() -> dict[str, Any] | None:
        status, headers, body = ready(cluster, survivor)
        if status != 503:
            assert status == 200 and body["leader_id"] == leader, (status, body)
            return None
        assert headers.get("retry-after") == "1"
        return body

    body = wait_http(no_leader, f"{survivor} without a leader", FAILOVER_DEADLINE_S)
    assert body["ready"] is False and body["reason"] == "no_leader", body
    assert body["leader_id"] is None and body["node_id"] == survivor
    assert "no leader" in body["message"]
    # No election succeeds with one member of three: it stays unready.
    assert ready(cluster, survivor)[0] == 503

    # The follower comes back: the two elect a leader and the survivor is ready again.
    cluster.start(follower)
    wait_http(lambda: is_ready(cluster, survivor), f"{survivor} ready again",
              FAILOVER_DEADLINE_S)
    new_leader = ready(cluster, survivor)[2]["leader_id"]
    assert new_leader in (follower, survivor)
    wait_http(lambda: is_ready(cluster, follower), f"{follower} ready after its restart",
              FAILOVER_DEADLINE_S)

    # The killed leader restarts as a follower of the new leader and becomes ready too.
    cluster.start(leader)
    wait_http(lambda: is_ready(cluster, leader), f"{leader} ready after its restart",
              FAILOVER_DEADLINE_S)
    views = {n: ready(cluster, n)[2] for n in cluster.ids}
    assert {v["leader_id"] for v in views.values()} == {new_leader}, views
    assert all(v["lag"] <= v["max_lag"] for v in views.values()), views



def test_two_survivors_of_a_leader_kill_are_ready_under_the_new_leader(
        cluster: NodeCluster) -> None:
    """The plain failover: the survivors elect a leader by themselves. A 503 seen on the way
    (the window is short) may only say ``no_leader``."""
    for node_id in cluster.ids:
        wait_http(lambda n=node_id: is_ready(cluster, n), f"{node_id} ready")
    leader = cluster.leader()
    survivors = [n for n in cluster.ids if n != leader]
    kill_node(cluster, leader)
    reasons: set[str] = set()

    def ready_under_a_new_leader(node_id: str) -> bool:
        status, _, body = ready(cluster, node_id)
        if status == 503:
            reasons.add(body["reason"])
            return False
        assert status == 200, (status, body)
        return body["leader_id"] not in (None, leader)

    for node_id in survivors:
        wait_http(lambda n=node_id: ready_under_a_new_leader(n), f"{node_id} ready again",
                  FAILOVER_DEADLINE_S)
    assert reasons <= {"no_leader"}, reasons
    new_leader = ready(cluster, survivors[0])[2]["leader_id"]
    assert new_leader in survivors and ready(cluster, survivors[1])[2]["leader_id"] == new_leader

    cluster.start(leader)
    wait_http(lambda: is_ready(cluster, leader), f"{leader} ready after its restart",
              FAILOVER_DEADLINE_S)
    assert ready(cluster, leader)[2]["leader_id"] == new_leader
