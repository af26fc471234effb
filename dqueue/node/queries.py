"""Read queries of the IPC protocol: queue reads and the node's own health, cluster and metrics.

Queue reads (``get``, ``stats``, ``list``, ``queues``, ``queue``, ``schedules``,
``schedule``, ``rate_limits``, ``workers``) run against the applied queue
state once the read point is reached (ReadIndex) or at once for stale reads. ``health``,
``cluster`` and ``metrics`` describe this node and are always answered locally, leader or not.

A ``get`` with ``wait_ms`` is a long poll on one task (``GET /tasks/{id}?wait=``): once its read
point is reached it is answered as soon as the task is finished (completed, dead or cancelled)
or gone, else at the end of the wait with the task as it is (``wait_is_over``; the router
parks it and looks again whenever the state machine applies entries).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from dqueue.queue import InvalidCommand
from dqueue.queue.rate_limits import RateLimitBook
from dqueue.queue.schedule_admin import ScheduleBook
from dqueue.queue.task import FINISHED
from dqueue.queue.workers import WorkerBook
from dqueue.raft import Status

QUEUE_OPS = frozenset({"get", "stats", "list", "queues", "queue", "schedules", "schedule",
                       "rate_limits", "workers"})
LOCAL_OPS = frozenset({"health", "cluster", "metrics"})
_QUERY_KEYS = {
    "get": {"op", "id", "wait_ms"},
    "stats": {"op"},
    "list": {"op", "status", "type", "limit", "cursor", "queue"},
    "queues": {"op", "prefix"},
    "queue": {"op", "name"},
    "schedules": {"op"},
    "schedule": {"op", "name"},
    "rate_limits": {"op"},
    "workers": {"op"},
    "health": {"op"},
    "cluster": {"op"},
    "metrics": {"op"},
}


class QueueReads(Protocol):
    """The reads of the applied queue state (``QueueState``) that the queries run."""

    schedules: ScheduleBook
    rate_limits: RateLimitBook
    workers: WorkerBook

    def get_task(self, task_id: str) -> dict[str, Any] | None:
        """The plain form of a task, or None."""

    def stats(self) -> dict[str, Any]:
        """Counts by status, by type and status, and the cluster clock."""

    def list_tasks(self, status: str, type: str | None = None, limit: int = 100,
                   cursor: str | None = None, queue: str | None = None) -> dict[str, Any]:
        """One page of the tasks of one status (and type, and queue)."""

    def list_queues(self, prefix: str | None = None) -> list[dict[str, Any]]:
        """Every queue (whose name starts with ``prefix``)."""

    def get_queue(self, name: str) -> dict[str, Any] | None:
        """One queue's settings and counts, or None."""


class BadQuery(ValueError):
    """A query that cannot be answered as asked; the message names the field."""


def check_query(query: Mapping[str, Any]) -> str:
    """Return the op of a well-formed query.

    Raises:
        BadQuery: naming the bad field.
    """
    op = query.get("op")
    if not isinstance(op, str) or op not in _QUERY_KEYS:
        raise BadQuery(f"op: must be one of {', '.join(sorted(_QUERY_KEYS))}")
    # Keys may be of any type on the IPC socket (msgpack): sort their reprs, never the keys.
    extra = sorted(repr(k) if not isinstance(k, str) else k for k in query
                   if k not in _QUERY_KEYS[op])
    if extra:
        raise BadQuery(f"{extra[0]}: unknown field for {op}")
    if op == "get" and (not isinstance(query.get("id"), str) or not query["id"]):
        raise BadQuery("id: must be a non-empty string")
    wait_ms = query.get("wait_ms")
    if wait_ms is not None and (type(wait_ms) is not int or wait_ms < 0):
        raise BadQuery("wait_ms: must be a non-negative integer")
    if op == "schedule" and (not isinstance(query.get("name"), str) or not query["name"]):
        raise BadQuery("name: must be a non-empty string")
    if op == "queue" and (not isinstance(query.get("name"), str) or not query["name"]):
        raise BadQuery("name: must be a non-empty string")
    if op == "queues" and not isinstance(query.get("prefix") or "", str):
        raise BadQuery("prefix: must be a string")
    if op == "list":
        for name in ("status", "type", "cursor", "queue"):
            value = query.get(name)
            if value is not None and not isinstance(value, str):
                raise BadQuery(f"{name}: must be a string")
        if not isinstance(query.get("status"), str):
            raise BadQuery("status: is required")
        limit = query.get("limit")
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)):
            raise BadQuery("limit: must be an integer")
    return op


def wait_ms_of(query: Mapping[str, Any]) -> int:
    """How long a query that passed ``check_query`` may wait for its task to finish (0: none)."""
    return (query.get("wait_ms") or 0) if query["op"] == "get" else 0


def wait_is_over(queue: QueueReads, query: Mapping[str, Any]) -> bool:
    """Whether a waiting ``get`` may be answered now: its task is finished or gone."""
    task = queue.get_task(query["id"])
    return task is None or task.get("status") in FINISHED


def run_queue_query(queue: QueueReads, query: Mapping[str, Any],
                    raft: Callable[[], dict[str, Any]]) -> Any:
    """Answer a queue read from the applied state.

    Args:
        queue: the applied queue state.
        query: a query that passed ``check_query``.
        raft: gives the node's Raft figures, added to ``stats`` (called for ``stats`` only).

    Raises:
        BadQuery: a value the queue refuses (e.g. an unknown status).
    """
    op = query["op"]
    if op == "get":
        return queue.get_task(query["id"])
    if op == "stats":
        return {**queue.stats(), "raft": raft()}
    if op == "queues":
        return {"queues": queue.list_queues(query.get("prefix"))}
    if op == "queue":
        return queue.get_queue(query["name"])
    if op == "schedules":
        return {"schedules": queue.schedules.list_plain()}
    if op == "schedule":
        return queue.schedules.get_plain(query["name"])
    if op == "rate_limits":
        return {"rate_limits": queue.rate_limits.list_plain()}
    if op == "workers":
        return {"workers": queue.workers.list_plain()}
    limit = query.get("limit")
    try:
        return queue.list_tasks(
            query["status"], query.get("type"), 100 if limit is None else limit,
            query.get("cursor"), query.get("queue"),
        )
    except InvalidCommand as exc:
        raise BadQuery(f"{exc.field}: {exc.message}") from None


@dataclass(frozen=True)
class NodeView:
    """What the local queries need to know about the node, gathered by the loop."""

    node_id: str
    status: Status
    leader_http: str | None
    members: Mapping[str, str]  # member id -> raft address
    http_addrs: Mapping[str, str]  # member id -> HTTP address, where known
    stopping: bool


def raft_figures(view: NodeView) -> dict[str, Any]:
    """The Raft part of ``stats`` and ``health``."""
    st = view.status
    return {"node_id": view.node_id, "role": st.role.value, "term": st.term,
            "leader_id": st.leader_id, "commit_index": st.commit, "applied_index": st.applied,
            "last_index": st.last_index, "snapshot_index": st.snapshot_index}


def health(view: NodeView) -> dict[str, Any]:
    """``GET /health``: who this node is and what it knows of the leader."""
    st = view.status
    # Liveness, but never "ok" for a node that knows no leader: it cannot serve a write.
    # A removed member (it applied its own removal, or never heard of it while the others
    # refuse it) serves nothing any more: it says so rather than "ok" or "no_leader".
    status = ("stopping" if view.stopping else "removed" if st.removed
              else "ok" if st.leader_id is not None else "no_leader")
    return {"status": status, "node_id": view.node_id,
            "role": st.role.value, "term": st.term, "leader_id": st.leader_id,
            "leader_http": view.leader_http, "commit_index": st.commit,
            "applied_index": st.applied, "catch_up_index": st.catch_up_index}


def cluster(view: NodeView) -> dict[str, Any]:
    """``GET /cluster``: every member, with replication progress when this node leads."""
    st = view.status
    config = st.membership
    members = []
    for member_id in sorted(set(view.members) | set(config.members())):
        if member_id == view.node_id:
            role, match_index = st.role.value, st.last_index
        else:
            role = "leader" if member_id == st.leader_id else "follower"
            progress = st.progress.get(member_id)
            match_index = progress.match_index if progress is not None else None
        lag = None if match_index is None or not st.progress else st.last_index - match_index
        # Suffrage in the configuration in force (thesis 4.1); a member --peers names that
        # the configuration no longer holds (removed) is shown as such.
        suffrage = ("learner" if config.is_learner(member_id) else "voter"
                    if config.is_voter(member_id) or not config.voters else "removed")
        members.append({"id": member_id, "raft_addr": view.members.get(member_id),
                        "http_addr": view.http_addrs.get(member_id), "role": role,
                        "suffrage": suffrage, "match_index": match_index, "lag": lag})
    return {"leader_id": st.leader_id, "term": st.term, "members": members,
            "voters": sorted(config.voters), "learners": sorted(config.learners)}
