"""Metric families from the Raft process's plain figures, and bounded type labels."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from dqueue.api.metric_catalog import FIGURES
from dqueue.api.metrics import (
    OTHER_TYPE,
    UNDESCRIBED,
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
        "mode": "catching_up",
        "peer_send_dropped_total": {"by": "peer", "values": {"n2": 3, "n3": 0}},
        "fsync_seconds": {"buckets": [[0.001, 5], [0.01, 9]], "sum": 0.03, "count": 10},
        "dqueue_custom": 1.5,
        "broken": {"buckets": [["x"]], "sum": 1, "count": 1},
        "nothing": None,
    }
    got = samples(families_from_plain(figures))
    assert got[("dqueue_raft_term", ())] == 4
    assert got[("dqueue_raft_elections_total", ())] == 2
    assert got[("dqueue_raft_mode", (("mode", "catching_up"),))] == 1
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
    # One family: the total is the sum over reasons.
    assert got[("dqueue_raft_snapshots_rejected_total", (("reason", "too_large"),))] == 2
    assert got[("dqueue_raft_snapshots_rejected_total",
                (("reason", "term_above_message"),))] == 1
    assert ("dqueue_raft_snapshots_rejected_total", ()) not in got
    assert got[("dqueue_raft_proposals_rejected_total", ())] == 4
    docs = {f.name: f.documentation for f in families}
    assert docs["dqueue_raft_snapshots_rejected"] == FIGURES[
        "snapshots_rejected_by_reason_total"].help
    assert "max_snapshot_bytes" in docs["dqueue_raft_snapshots_rejected"]
    assert docs["dqueue_raft_proposals_rejected"] == FIGURES["proposals_rejected_total"].help
    assert {f.type for f in families} == {"counter"}


def test_millisecond_histograms_are_exported_in_seconds():
    figures = {"persist_ms": {"buckets": [[1, 2], [5, 3], ["+Inf", 4]], "sum": 12.0,
                              "count": 4}}
    got = samples(families_from_plain(figures))
    assert got[("dqueue_raft_persist_seconds_bucket", (("le", "0.001"),))] == 2
    assert got[("dqueue_raft_persist_seconds_bucket", (("le", "0.005"),))] == 3
    assert got[("dqueue_raft_persist_seconds_sum", ())] == 0.012
    assert not any(name.startswith("dqueue_raft_persist_ms") for name, _ in got)


def test_cluster_figures_come_from_the_leader_only():
    figures = {"term": 2, "dqueue_queue_tasks_acked_total": {"by": "type",
                                                             "values": {"email": 5}}}
    on_leader = samples(families_from_plain(figures, leader=True))
    assert on_leader[("dqueue_queue_tasks_acked_total", (("type", "email"),))] == 5
    on_follower = samples(families_from_plain(figures, leader=False))
    assert on_follower == {("dqueue_raft_term", ()): 2}


def test_figures_with_two_labels_are_nested_and_odd_leaves_skipped():
    figures = {"dqueue_queue_tasks_acked_total": {
        "by": ["queue", "type"],
        "values": {"mail": {"email": 5, "sms": "x"}, "default": {"email": 2}, "bad": 3}}}
    got = samples(families_from_plain(figures, leader=True))
    assert got == {
        ("dqueue_queue_tasks_acked_total", (("queue", "default"), ("type", "email"))): 2,
        ("dqueue_queue_tasks_acked_total", (("queue", "mail"), ("type", "email"))): 5}


def test_collector_exports_depth_and_every_role_on_the_leader_only():
    def reader(role, stats=None):
        answers = {"metrics": {"term": 1}, "health": {"role": role},
                   "stats": stats or {"by_status": {"pending": 3}}}
        return lambda query, timeout_ms, stale: answers[query["op"]]

    leader = samples(list(RaftCollector(reader("leader"), 10).collect()))
    assert leader[("dqueue_queue_tasks", (("queue", "default"), ("status", "pending")))] == 3
    by_queue = {"by_status": {"pending": 5},
                "by_queue": {"default": {"pending": 1}, "mail": {"pending": 4, "dead": 2}}}
    named = samples(list(RaftCollector(reader("leader", by_queue), 10).collect()))
    assert {k[1]: v for k, v in named.items() if k[0] == "dqueue_queue_tasks"} == {
        (("queue", "default"), ("status", "pending")): 1,
        (("queue", "mail"), ("status", "dead")): 2,
        (("queue", "mail"), ("status", "pending")): 4}
    assert leader[("dqueue_raft_role", (("role", "leader"),))] == 1
    follower = samples(list(RaftCollector(reader("follower"), 10).collect()))
    assert not any(name == "dqueue_queue_tasks" for name, _ in follower)
    assert follower[("dqueue_raft_role", (("role", "leader"),))] == 0
    assert follower[("dqueue_raft_role", (("role", "follower"),))] == 1


def test_a_figure_missing_from_the_catalogue_says_so():
    families = families_from_plain({"brand_new_total": 1})
    assert [f.name for f in families] == ["dqueue_raft_brand_new"]
    assert UNDESCRIBED in families[0].documentation
