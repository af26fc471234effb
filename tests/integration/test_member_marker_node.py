"""A member of a cluster with keys restarted on an empty data directory refuses to start
(dqueue/node/member_marker.py): it would have forgotten its vote and acknowledged entries."""

from __future__ import annotations

import shutil

import pytest

from dqueue.exit_status import RaftExit
from dqueue.testing import wait_for

TIMING = {"election_ticks": 30, "heartbeat_ticks": 3}


@pytest.mark.slow
def test_a_member_restarted_on_an_empty_data_directory_refuses_to_start(cluster_factory):
    cluster = cluster_factory(3, secure=True, **TIMING)
    cluster.start()
    leader = cluster.leader()
    victim = next(node for node in cluster.ids if node != leader)
    marker = cluster.secure_dir(victim) / f"{victim}.member"
    wait_for(marker.exists, 20, "the follower's marker (written with its first term)")
    cluster.kill(victim)
    shutil.rmtree(cluster.data_dir(victim))
    cluster.start(victim)
    assert cluster.procs[victim].wait(30) == RaftExit.REFUSED_TO_START
    assert "forgotten_member" in cluster.log_text(victim)
    assert "cluster add" in cluster.log_text(victim)
    # The others keep their leader; a member restarted on its own data directory is fine.
    other = next(node for node in cluster.ids if node not in (leader, victim))
    cluster.kill(other)
    cluster.start(other)
    assert cluster.leader(among=[leader, other]) in (leader, other)
    assert cluster.is_running(other)
