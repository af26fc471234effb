"""Metric families from the Raft process's plain figures, and bounded type labels."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from dqueue.api.metrics import (
    OTHER_TYPE,
    RAFT_FIGURE_HELP,
    RaftCollector,
    TypeLabels,
    families_from_plain,
)


def samples(families):
    registry = CollectorRegistry()

    class Fixed:
        def collect(self):
            return families

    registry.register(Fixed())
    text = generate_latest(registry).decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for f in text_string_to_metric_families(text) for s in f.samples}


def test_numbers_strings_labelled_and_histograms():
    figures = {
        "term": 4,
        "elections_total": 2,
        "role": "follower",
        "peer_send_dropped_total": {"by": "peer", "values": {"n2": 3, "n3": 0}},
        "fsync_seconds": {"buckets": [[0.001, 5], [0.01, 9]], "sum": 0.03, "count": 10},
        "dqueue_custom": 1.5,
        "broken": {"buckets": [["x"]], "sum": 1, "count": 1},
        "nothing": None,
    }
    got = samples(families_from_plain(figures))
    assert got[("dqueue_raft_term", ())] == 4
    assert got[("dqueue_raft_elections_total", ())] == 2
    assert got[("dqueue_raft_role", (("role", "follower"),))] == 1
    assert got[("dqueue_raft_peer_send_dropped_total", (("peer", "n2"),))] == 3
    assert got[("dqueue_raft_fsync_seconds_bucket", (("le", "0.01"),))] == 9
    assert got[("dqueue_raft_fsync_seconds_bucket", (("le", "+Inf"),))] == 10
    assert got[("dqueue_raft_fsync_seconds_count", ())] == 10
    assert got[("dqueue_custom", ())] == 1.5
    assert not any(name.startswith("dqueue_raft_broken") for name, _ in got)
    assert not any(name.startswith("dqueue_raft_nothing") for name, _ in got)


def test_collector_reports_down_when_raft_does_not_answer():
    def read(query, timeout_ms, stale):
        raise TimeoutError("no answer")

    got = samples(list(RaftCollector(read, 10).collect()))
    assert got == {("dqueue_raft_up", ()): 0}


def test_collector_does_not_scrape_at_registration():
    calls = []
    CollectorRegistry().register(RaftCollector(lambda *a: calls.append(a), 10))
    assert calls == []


def test_type_labels_are_bounded():
    labels = TypeLabels(limit=2)
    assert [labels.label(t) for t in ("a", "b", "c", "a")] == ["a", "b", OTHER_TYPE, "a"]


def test_refused_snapshots_and_proposals_are_counters_with_their_own_help():
    figures = {
        "snapshots_rejected_total": 3,
        "snapshots_rejected_by_reason_total": {
            "by": "reason", "values": {"too_large": 2, "term_above_message": 1}},
        "proposals_rejected_total": 4,
    }
    families = families_from_plain(figures)
    got = samples(families)
    assert got[("dqueue_raft_snapshots_rejected_total", ())] == 3
    assert got[("dqueue_raft_snapshots_rejected_by_reason_total",
                (("reason", "too_large"),))] == 2
    assert got[("dqueue_raft_snapshots_rejected_by_reason_total",
                (("reason", "term_above_message"),))] == 1
    assert got[("dqueue_raft_proposals_rejected_total", ())] == 4
    docs = {f.name: f.documentation for f in families}
    assert docs["dqueue_raft_snapshots_rejected"] == RAFT_FIGURE_HELP["snapshots_rejected_total"]
    assert "max_snapshot_bytes" in docs["dqueue_raft_snapshots_rejected_by_reason"]
    assert docs["dqueue_raft_proposals_rejected"] == RAFT_FIGURE_HELP["proposals_rejected_total"]
    assert {f.type for f in families} == {"counter"}
