"""Online membership changes on real nodes (issue 16), while a client writes continuously:
a member joins as a learner, is promoted, and the leader is removed; with keys, the leader is
killed during a promotion and the removed member's key is refused afterwards; 3 -> 5 -> 3
voters with learners that never count toward a majority and a leader killed during a removal.
Every acknowledged write is on every final member; each change prints the longest time
without an acknowledged write."""

from __future__ import annotations

import contextlib
import re
import threading
import time
import urllib.request

import pytest
import zmq.auth

from dqueue.client import Client, RetryPolicy
from dqueue.client.cluster_admin import ClusterAdmin
from dqueue.client.errors import DQueueError, InvalidState, TaskNotFound
from dqueue.testing import wait_for
from dqueue.testing.cluster import NodeCluster, wait_http
from dqueue.testing.processes import http_json

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _drop_member(text: str, member: str) -> str:
    """A member's TOML without ``member`` in its [peers] and [peers_http] tables."""
    return "".join(line for line in text.splitlines(keepends=True)
                   if not re.match(rf"{member} = ", line))


class Writer:
    """Enqueues one task after the other; records the acknowledged ones and the longest
    time between two acknowledgements (per phase)."""

    def __init__(self, urls: list[str]) -> None:
        self.client = Client(urls, retry=RetryPolicy(deadline_s=60.0))
        self.acked: list[str] = []
        self.failures: list[DQueueError] = []
        self.stop = threading.Event()
        self.paused = threading.Event()
        self.last_ack = time.monotonic()
        self.longest_gap_s = 0.0
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        n = 0
        while not self.stop.is_set():
            if self.paused.is_set():
                self.stop.wait(0.05)  # polling interval while the test holds the writer
                self.last_ack = time.monotonic()
                continue
            try:
                task = self.client.enqueue("m", {"n": n})
            except DQueueError as exc:
                self.failures.append(exc)
                return
            now = time.monotonic()
            self.longest_gap_s = max(self.longest_gap_s, now - self.last_ack)
            self.last_ack = now
            self.acked.append(task.id)
            n += 1

    def phase_gap(self) -> float:
        """The longest time without an acknowledged write since the last call, the time
        since the last one included (and start a new phase)."""
        gap = max(self.longest_gap_s, time.monotonic() - self.last_ack)
        self.longest_gap_s = 0.0
        return gap


def test_add_a_learner_promote_it_and_remove_the_leader(tmp_path):
    cluster = NodeCluster(tmp_path, 4)
    try:
        for node_id in ("n1", "n2", "n3"):
            path = cluster.configs[node_id]
            path.write_text(_drop_member(path.read_text(), "n4"))
        # n4 is told nothing of the others but one URL: it learns their raft addresses
        # from their hellos once they reach it (peer_book.py).
        n4 = cluster.configs["n4"]
        n4_text = n4.read_text().replace("bootstrap = true", f'join = "{cluster.url("n1")}"')
        for other in ("n1", "n2", "n3"):
            n4_text = _drop_member(n4_text, other)
        n4.write_text(n4_text)
        for node_id in ("n1", "n2", "n3"):
            cluster.start(node_id)
        leader = cluster.leader(among=["n1", "n2", "n3"])
        admin = ClusterAdmin(Client([cluster.url(leader)],
                                    retry=RetryPolicy(deadline_s=60.0)))
        status = admin.status()
        assert (status["voters"], status["learners"]) == (["n1", "n2", "n3"], [])

        writer = Writer([cluster.url(n) for n in ("n1", "n2", "n3")])
        writer.thread.start()
        wait_for(lambda: len(writer.acked) >= 20, 60, "writes before the change")
        writer.phase_gap()

        # A member started with --join and an empty store waits: it never campaigns.
        cluster.start("n4")
        wait_http(lambda: cluster.health("n4") is not None, "n4 serving /health")
        assert cluster.health("n4")["role"] == "follower"
        # It asked the --join URL and says how to add it.
        wait_for(lambda: "join_waiting" in cluster.log_text("n4"), 30, "n4's join_waiting")
        assert "cluster add n4" in cluster.log_text("n4")

        # Asked of a follower over plain HTTP: it forwards the change to the leader and
        # answers once it committed (no redirect for the caller to follow).
        follower = next(n for n in ("n1", "n2", "n3") if n != leader)
        status_code, added = http_json(cluster.http_addr[follower], "POST", "/cluster/members", {
            "id": "n4", "raft_addr": cluster.raft_addr["n4"],
            "http_addr": cluster.http_addr["n4"]}, timeout_s=30.0)
        assert status_code == 201, added
        assert (added["voters"], added["learners"]) == (["n1", "n2", "n3"], ["n4"])
        lag = admin.wait_caught_up("n4", max_lag=50)
        print(f"\nadd learner n4: caught up (lag {lag}); longest write gap "
              f"{writer.phase_gap():.3f}s")
        n4_view = cluster.health("n4")
        assert n4_view is not None and n4_view["leader_id"] == leader

        promoted = admin.promote("n4")
        assert promoted["voters"] == ["n1", "n2", "n3", "n4"] and promoted["learners"] == []
        print(f"promote n4: longest write gap {writer.phase_gap():.3f}s")

        removed = admin.remove(leader)
        assert leader not in removed["voters"] and len(removed["voters"]) == 3
        print(f"remove {leader} (the leader): longest write gap {writer.phase_gap():.3f}s")
        final = removed["voters"]
        new_leader = cluster.leader(among=final)
        assert new_leader != leader and new_leader in final
        # The old leader, still running, applied its own removal and says so.
        wait_http(lambda: (cluster.health(leader) or {}).get("status") == "removed",
                  f"{leader} reporting itself removed")

        at_remove = len(writer.acked)
        wait_for(lambda: len(writer.acked) >= at_remove + 20, 60, "writes after the removal")
        writer.stop.set()
        writer.thread.join(70)
        assert not writer.failures

        # The removed member is out of every final member's configuration.
        for node_id in final:
            view = Client([cluster.url(node_id)]).cluster()
            assert sorted(view["voters"]) == sorted(final), node_id
        # Every acknowledged write is on every final member (each reads its own state).
        for node_id in final:
            client = Client([cluster.url(node_id)], retry=RetryPolicy(deadline_s=30.0))
            missing = []
            for task_id in writer.acked:
                try:
                    client.get(task_id)
                except TaskNotFound:
                    missing.append(task_id)
            assert not missing, (node_id, len(missing))
        # The old leader is out: killing it leaves writes committing on the three others.
        cluster.kill(leader)
        Client([cluster.url(new_leader)]).enqueue("m", {"after": "kill"})
    finally:
        cluster.close()


def _rejected_keys(cluster: NodeCluster, node_id: str) -> float:
    """``dqueue_raft_peer_rejected_total{reason="unknown_key"}`` of a member."""
    with urllib.request.urlopen(cluster.url(node_id) + "/metrics", timeout=5) as answer:
        text = answer.read().decode()
    found = re.search(r'^dqueue_raft_peer_rejected_total\{reason="unknown_key"\} (\S+)$', text,
                      re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def _check_writes(cluster: NodeCluster, members: list[str], acked: list[str]) -> None:
    """Every acknowledged write is on each member (each reads its own applied state)."""
    for node_id in members:
        client = Client([cluster.url(node_id)], retry=RetryPolicy(deadline_s=30.0))
        missing = []
        for task_id in acked:
            try:
                client.get(task_id)
            except TaskNotFound:
                missing.append(task_id)
        assert not missing, (node_id, len(missing))


def test_secure_leader_killed_mid_change_then_removed_and_its_key_refused(tmp_path):
    cluster = NodeCluster(tmp_path, 4, secure=True)
    try:
        assert cluster.keys_dir is not None
        for node_id in ("n1", "n2", "n3"):
            path = cluster.configs[node_id]
            path.write_text(_drop_member(path.read_text(), "n4"))
            # The bootstrap members never had n4's key: they learn it from the log.
            (cluster.keys_dir / node_id / "members" / "n4.key").unlink()
        n4 = cluster.configs["n4"]
        n4.write_text(n4.read_text().replace(
            "bootstrap = true", f'join = "{cluster.url("n1")}"'))
        n4_key = zmq.auth.load_certificate(str(cluster.keys_dir / "n4" / "n4.key"))[0]
        for node_id in ("n1", "n2", "n3"):
            cluster.start(node_id)
        leader = cluster.leader(among=["n1", "n2", "n3"])
        writer = Writer([cluster.url(n) for n in ("n1", "n2", "n3")])
        writer.thread.start()
        wait_for(lambda: len(writer.acked) >= 20, 60, "writes before the change")
        writer.phase_gap()
        cluster.start("n4")
        admin = ClusterAdmin(Client([cluster.url(n) for n in ("n1", "n2", "n3")],
                                    retry=RetryPolicy(deadline_s=60.0)))
        admin.add_learner("n4", cluster.raft_addr["n4"], cluster.http_addr["n4"],
                          n4_key.decode())
        admin.wait_caught_up("n4", max_lag=50)
        print(f"\nsecure add learner n4: longest write gap {writer.phase_gap():.3f}s")

        # kill -9 the leader while the promotion is on its way: it commits or is lost.
        promoting = threading.Thread(target=lambda: _promote_quietly(admin), daemon=True)
        promoting.start()
        cluster.kill(leader)
        promoting.join(70)
        survivors = [n for n in ("n1", "n2", "n3", "n4") if n != leader]
        admin = ClusterAdmin(Client([cluster.url(n) for n in survivors],
                                    retry=RetryPolicy(deadline_s=60.0)))
        with contextlib.suppress(InvalidState):  # it committed before the leader died
            admin.promote("n4")
        print(f"promote n4, leader {leader} killed: longest write gap "
              f"{writer.phase_gap():.3f}s")
        removed = admin.remove(leader)
        assert sorted(removed["voters"]) == sorted(survivors) and removed["learners"] == []
        print(f"remove dead {leader}: longest write gap {writer.phase_gap():.3f}s")
        at_remove = len(writer.acked)
        wait_for(lambda: len(writer.acked) >= at_remove + 20, 60, "writes after the removal")
        writer.stop.set()
        writer.thread.join(70)
        assert not writer.failures
        _check_writes(cluster, survivors, writer.acked)

        # The removed member comes back: every member refuses its key now.
        before = {n: _rejected_keys(cluster, n) for n in survivors}
        cluster.start(leader)
        wait_for(lambda: all(_rejected_keys(cluster, n) > before[n] for n in survivors), 60,
                 "the removed member's handshakes refused")
        new_leader = cluster.leader(among=survivors)
        assert new_leader in survivors
    finally:
        cluster.close()


def _promote_quietly(admin: ClusterAdmin) -> None:
    with contextlib.suppress(DQueueError):  # the test asks again itself
        admin.promote("n4")


def _join_config(cluster: NodeCluster, member: str) -> None:
    path = cluster.configs[member]
    path.write_text(path.read_text().replace(
        "bootstrap = true", f'join = "{cluster.url("n1")}"'))


def test_three_to_five_to_three_with_a_leader_killed_mid_change(tmp_path):
    cluster = NodeCluster(tmp_path, 5, raft={"snapshot_entries": 200})
    try:
        for node_id in ("n1", "n2", "n3"):
            path = cluster.configs[node_id]
            path.write_text(_drop_member(_drop_member(path.read_text(), "n4"), "n5"))
        for node_id in ("n4", "n5"):
            _join_config(cluster, node_id)
        for node_id in ("n1", "n2", "n3"):
            cluster.start(node_id)
        cluster.leader(among=["n1", "n2", "n3"])
        everyone = cluster.urls()
        admin = ClusterAdmin(Client(everyone, retry=RetryPolicy(deadline_s=60.0)))
        writer = Writer(everyone)
        writer.thread.start()
        wait_for(lambda: len(writer.acked) >= 300, 120, "writes before the changes")
        writer.phase_gap()

        for node_id in ("n4", "n5"):
            cluster.start(node_id)
            admin.add_learner(node_id, cluster.raft_addr[node_id], cluster.http_addr[node_id])
            admin.wait_caught_up(node_id, max_lag=50)
            print(f"\nadd learner {node_id}: longest write gap {writer.phase_gap():.3f}s")

        # Learners never count: with two of the three voters down, the voter and the two
        # learners alive (3 of 5 processes) commit nothing.
        writer.paused.set()
        leader = cluster.leader(among=["n1", "n2", "n3"])
        down = [n for n in ("n1", "n2", "n3") if n != leader]
        for node_id in down:
            cluster.kill(node_id)
        with pytest.raises(DQueueError):
            Client([cluster.url(leader)], retry=RetryPolicy(deadline_s=3.0)).enqueue(
                "m", {"probe": "learners"})
        for node_id in down:
            cluster.start(node_id)
        cluster.leader(among=["n1", "n2", "n3"])
        writer.paused.clear()
        writer.phase_gap()

        for node_id in ("n4", "n5"):
            admin.promote(node_id)
            print(f"promote {node_id}: longest write gap {writer.phase_gap():.3f}s")
        assert sorted(admin.status()["voters"]) == ["n1", "n2", "n3", "n4", "n5"]
        # A member added online restarts from its own store (no --peers entry names it on
        # the others): it is still a voter and catches up.
        cluster.stop("n5")
        cluster.start("n5")
        wait_http(lambda: (cluster.health("n5") or {}).get("leader_id") is not None,
                  "n5 back with a leader")
        print(f"restart n5: longest write gap {writer.phase_gap():.3f}s")

        # Remove one member while the leader is killed with -9; then remove the dead leader.
        leader = cluster.leader()
        gone = next(n for n in ("n1", "n2", "n3") if n != leader)
        removing = threading.Thread(target=lambda: _quietly(lambda: admin.remove(gone)),
                                    daemon=True)
        removing.start()
        cluster.kill(leader)
        removing.join(70)
        alive = [n for n in cluster.ids if n != leader]
        admin = ClusterAdmin(Client([cluster.url(n) for n in alive],
                                    retry=RetryPolicy(deadline_s=60.0)))
        with contextlib.suppress(TaskNotFound):  # not a member: removed before the kill
            admin.remove(gone)
        print(f"remove {gone}, leader {leader} killed: longest write gap "
              f"{writer.phase_gap():.3f}s")
        final = admin.remove(leader)["voters"]
        print(f"remove dead {leader}: longest write gap {writer.phase_gap():.3f}s")
        assert sorted(final) == sorted(n for n in alive if n != gone)
        cluster.kill(gone)
        at_end = len(writer.acked)
        wait_for(lambda: len(writer.acked) >= at_end + 50, 60, "writes on the final three")
        writer.stop.set()
        writer.thread.join(70)
        assert not writer.failures
        for node_id in final:
            view = Client([cluster.url(node_id)]).cluster()
            assert (sorted(view["voters"]), view["learners"]) == (sorted(final), []), node_id
        _check_writes(cluster, final, writer.acked)
    finally:
        cluster.close()


def _quietly(call) -> None:
    with contextlib.suppress(DQueueError):
        call()
