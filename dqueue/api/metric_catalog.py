"""The one list of what the Raft process's figures are called on ``/metrics``, and what they mean.

The Raft process names its figures for itself (``persist_ms``, ``term``); this catalogue maps
each to the family an operator scrapes: its Prometheus name (base units, ``_total`` on
counters), its type, its HELP text, the factor that brings its values into base units, and
whether it is a cluster-wide figure. docs/metrics.md is the same table for people.

Cluster-wide figures (the replicated queue's depth by queue and status, and its task events by
queue and type) are exported by the leader only, so that ``sum()`` over every scraped node
counts each task once.
"""

from __future__ import annotations

from dataclasses import dataclass

# Milliseconds in the Raft process's histograms, seconds on /metrics.
MS = 0.001
# The queue of the depth figures when the Raft process reports no ``by_queue``.
DEFAULT_QUEUE = "default"
# The values of the ``role`` label, every one exported (1 for the current role, else 0), so
# that ``dqueue_raft_role{role="leader"}`` exists on every member that answers.
ROLES = ("follower", "pre_candidate", "candidate", "leader")


@dataclass(frozen=True)
class Figure:
    """How one figure of the Raft process is exported.

    Attributes:
        name: the family name on /metrics (counters end in ``_total``).
        kind: ``counter``, ``gauge`` or ``histogram``.
        help: the HELP text.
        scale: factor from the figure's unit to the base unit (histogram bounds and sums).
        cluster: a figure of the replicated state: exported by the leader only.
    """

    name: str
    kind: str
    help: str
    scale: float = 1.0
    cluster: bool = False


def _c(name: str, text: str, cluster: bool = False) -> Figure:
    return Figure(name, "counter", text, cluster=cluster)


def _g(name: str, text: str) -> Figure:
    return Figure(name, "gauge", text)


def _h(name: str, text: str, scale: float = 1.0) -> Figure:
    return Figure(name, "histogram", text, scale=scale)


_EVENT_HELP = {
    "enqueued": "Tasks added to the queue (idempotent repeats excluded)",
    "leased": "Leases granted on tasks (a task leased again after a retry counts again)",
    "acked": "Tasks acknowledged as done by their lease holder",
    "nacked": "Negative acknowledgements (the task is retried later or dead-lettered)",
    "expired": "Leases that ran out before an ack or nack (the task goes back to pending)",
    "dead_lettered": "Tasks moved to the dead-letter queue (attempts used up or nack said so)",
}

FIGURES: dict[str, Figure] = {
    # Raft state of this member.
    "term": _g("dqueue_raft_term", "Current Raft term of this member."),
    "commit_index": _g("dqueue_raft_commit_index",
                       "Highest log index this member knows to be committed."),
    "applied_index": _g("dqueue_raft_applied_index",
                        "Highest log index applied to this member's queue state."),
    "last_index": _g("dqueue_raft_last_index", "Index of the last entry in this member's log."),
    "snapshot_index": _g("dqueue_raft_snapshot_index",
                         "Log index covered by this member's latest snapshot."),
    "catch_up_index": _g("dqueue_raft_catch_up_index",
                         "Index this member must reach before it counts as caught up after a "
                         "restore (0 when caught up)."),
    "leader_changes_total": _c("dqueue_raft_leader_changes_total",
                               "Times this member saw the leader change (itself included)."),
    "elections_started_total": _c("dqueue_raft_elections_started_total",
                                  "Elections (pre-vote included) this member started."),
    # The loop, the disk and the log.
    "loop_turns_total": _c("dqueue_raft_loop_turns_total",
                           "Turns of the Raft process's event loop."),
    "ready_total": _c("dqueue_raft_ready_total",
                      "Ready batches (state to persist, messages, entries to apply) handled."),
    "fsync_total": _c("dqueue_raft_fsync_total", "Ready batches written and synced to disk."),
    "store_syncs_total": _c("dqueue_raft_store_syncs_total",
                            "Synced LMDB write transactions of every kind (Readies, snapshots, "
                            "compaction)."),
    "entries_persisted_total": _c("dqueue_raft_entries_persisted_total",
                                  "Log entries written to this member's disk."),
    "entries_applied_total": _c("dqueue_raft_entries_applied_total",
                                "Committed log entries applied to the queue state."),
    "commands_applied_total": _c("dqueue_raft_commands_applied_total",
                                 "Queue commands applied (an entry carries one or more)."),
    "proposals_total": _c("dqueue_raft_proposals_total",
                          "Entries this member proposed as leader."),
    "persist_ms": _h("dqueue_raft_persist_seconds",
                     "Time to write and fsync one Ready batch to disk.", MS),
    "entries_per_ready": _h("dqueue_raft_entries_per_ready",
                            "Log entries per synced Ready batch (the group commit size)."),
    "commands_per_entry": _h("dqueue_raft_commands_per_entry",
                             "Queue commands batched into one log entry."),
    "command_ms": _h("dqueue_raft_command_seconds",
                     "Time from a command reaching this node's Raft process to its answer.", MS),
    "gc_ms": _h("dqueue_raft_gc_pause_seconds",
                "Pauses of full garbage collections in the Raft process.", MS),
    "gc_frozen_objects": _g("dqueue_raft_gc_frozen_objects",
                            "Objects moved out of the collector's reach after a full collection."),
    # Snapshots.
    "snapshots_taken_total": _c("dqueue_raft_snapshots_taken_total",
                                "Snapshots of the queue state this member took."),
    "snapshots_installed_total": _c("dqueue_raft_snapshots_installed_total",
                                    "Snapshots this member received from a leader and installed."),
    "snapshot_bytes": _g("dqueue_raft_snapshot_bytes",
                         "Size of the latest snapshot taken or installed, in bytes."),
    "snapshots_rejected_by_reason_total": _c(
        "dqueue_raft_snapshots_rejected_total",
        "InstallSnapshots this member refused, by reason: checksum, invalid (would not "
        "restore), too_large (raft.max_snapshot_bytes), index_too_high, term_above_message."),
    # Requests from the API process and from forwarding followers.
    "requests_pending": _g("dqueue_raft_requests_pending",
                           "Requests waiting for their entry to commit or their read to be safe."),
    "requests_parked": _g("dqueue_raft_requests_parked",
                          "Lease requests parked until a task is ready (long poll)."),
    "requests_resent_total": _c("dqueue_raft_requests_resent_total",
                                "Requests forwarded again to a new leader after a change."),
    "session_repeats_answered_total": _c("dqueue_raft_session_repeats_answered_total",
                                         "Repeated proposals answered with their first outcome "
                                         "(client sessions)."),
    "proposals_rejected_total": _c("dqueue_raft_proposals_rejected_total",
                                   "Proposals forwarded by a follower that this leader refused: "
                                   "they would not apply."),
    "session_clients": _g("dqueue_raft_session_clients",
                          "Client sessions kept in the queue state."),
    "session_outcomes": _g("dqueue_raft_session_outcomes",
                           "Proposal outcomes kept for client sessions, every client."),
    # The network between members, and the IPC link to the API process.
    "peer_sent_total": _c("dqueue_raft_peer_sent_total", "Messages sent to other members."),
    "peer_received_total": _c("dqueue_raft_peer_received_total",
                              "Messages received from other members."),
    "peer_send_dropped_total": _c("dqueue_raft_peer_send_dropped_total",
                                  "Messages to other members dropped (queue full, peer away)."),
    "peer_malformed_total": _c("dqueue_raft_peer_malformed_total",
                               "Peer frames that did not decode."),
    "peer_unknown_total": _c("dqueue_raft_peer_unknown_total",
                             "Peer messages from a sender that is not a member."),
    "peer_rejected_total": _c("dqueue_raft_peer_rejected_total",
                              "Peer handshakes and messages refused, by reason "
                              "(docs/security.md)."),
    "raft_malformed_total": _c("dqueue_raft_messages_malformed_total",
                               "Raft messages that decoded but were invalid or addressed to "
                               "another member."),
    "ipc_received_total": _c("dqueue_raft_ipc_received_total",
                             "Requests received from the API process."),
    "ipc_malformed_total": _c("dqueue_raft_ipc_malformed_total",
                              "IPC frames from the API process that did not decode."),
    "ipc_bad_request_total": _c("dqueue_raft_ipc_bad_request_total",
                                "IPC requests refused as invalid."),
    # The replicated queue (cluster-wide: leader only), and this member's event log.
    **{f"dqueue_queue_tasks_{event}_total": _c(f"dqueue_queue_tasks_{event}_total",
                                               f"{text}, by queue and type, as applied on the "
                                               "leader (exported by the leader only).",
                                               cluster=True)
       for event, text in _EVENT_HELP.items()},
    "dqueue_queue_events_dropped_total": _c("dqueue_queue_events_dropped_total",
                                            "Expiry and dead-letter log lines this member "
                                            "dropped because its buffer was full."),
}

# Figures of the metrics read that are shown another way: ``is_leader`` is
# ``dqueue_raft_role{role="leader"}``; the refusal total is the sum over reasons.
NOT_EXPORTED = frozenset({"is_leader", "role", "snapshots_rejected_total"})

# The families the collector builds itself (not from one figure).
UP = Figure("dqueue_raft_up", "gauge",
            "1 when the local Raft process answered this scrape, else 0.")
ROLE = Figure("dqueue_raft_role", "gauge",
              "This member's Raft role: 1 on the series of the current role, 0 on the others.")
QUEUE_TASKS = Figure("dqueue_queue_tasks", "gauge",
                     "Tasks in the queue by queue and status, as applied on the leader "
                     "(exported by the leader only).", cluster=True)
