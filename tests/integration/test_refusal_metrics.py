"""A real node's ``/metrics`` exports the Raft core's refusal counters: refused snapshots by
every reason (0 before any happens), and refused forwarded proposals."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

from dqueue.raft import SnapshotRefusal
from dqueue.testing.cluster import NodeCluster
from dqueue.testing.http import Http

pytestmark = pytest.mark.integration


@pytest.fixture
def node(tmp_path) -> Iterator[NodeCluster]:
    nodes = NodeCluster(tmp_path, 1, log_format="json", start=True)
    try:
        nodes.leader()
        yield nodes
    finally:
        nodes.close()


def test_refusal_counters_are_exported_with_every_reason(node: NodeCluster) -> None:
    client = Http(node.http_addr["n1"])
    try:
        status, _, text = client.call("GET", "/metrics")
    finally:
        client.close()
    assert status == 200
    families = {f.name: f for f in text_string_to_metric_families(text)}
    for name in ("dqueue_raft_snapshots_rejected", "dqueue_raft_proposals_rejected"):
        assert families[name].type == "counter", name
        assert "not described" not in families[name].documentation  # its own help
    by_reason = {s.labels["reason"]: s.value
                 for s in families["dqueue_raft_snapshots_rejected"].samples
                 if s.name.endswith("_total")}
    assert by_reason == {r.value: 0 for r in SnapshotRefusal}
    # The total is the sum over reasons: no unlabelled series in the same family.
    assert all(s.labels for s in families["dqueue_raft_snapshots_rejected"].samples)
    assert [s.value for s in families["dqueue_raft_proposals_rejected"].samples
            if s.name.endswith("_total")] == [0]
