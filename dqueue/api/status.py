"""Node and cluster resources: health, stats, cluster, metrics, and the OpenAPI document."""

from __future__ import annotations

import json
from typing import Any

import falcon
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from dqueue.api import validation as v
from dqueue.api.deps import ApiDeps, send_json
from dqueue.api.errors import RETRY_AFTER_S, ApiError, invalid
from dqueue.protocol.errors import ErrorCode

# Local reads (this node's own view) answer at once when the Raft process runs; a short deadline
# lets a health check report a dead Raft process quickly.
LOCAL_READ_TIMEOUT_MS = 1_000


class Health:
    """``GET /health``: this node's view (local, answered without a leader)."""

    def __init__(self, deps: ApiDeps) -> None:
        self._deps = deps

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        value = self._deps.read({"op": "health"}, stale=True, timeout_ms=LOCAL_READ_TIMEOUT_MS)
        send_json(resp, falcon.HTTP_200, {"status": "ok", **_plain_dict(value)})


class Ready:
    """``GET /ready``: 200 only when this node can serve: a leader is known and its applied
    index is within ``ready_max_lag`` entries of its commit index; otherwise 503 with the
    reason (for load balancers and orchestrators, beside the liveness of ``/health``)."""

    def __init__(self, deps: ApiDeps) -> None:
        self._deps = deps

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        health = _plain_dict(
            self._deps.read({"op": "health"}, stale=True, timeout_ms=LOCAL_READ_TIMEOUT_MS))
        commit, applied = health.get("commit_index"), health.get("applied_index")
        lag = commit - applied if isinstance(commit, int) and isinstance(applied, int) else None
        max_lag = self._deps.config.ready_max_lag
        if health.get("status") in ("stopping", "removed"):
            reason = health["status"]
        elif health.get("leader_id") is None:
            reason = "no_leader"
        elif lag is None or lag > max_lag:
            reason = "lagging"
        else:
            reason = None
        body = {"ready": reason is None, "node_id": health.get("node_id"),
                "leader_id": health.get("leader_id"), "commit_index": commit,
                "applied_index": applied, "lag": lag, "max_lag": max_lag}
        if reason is None:
            send_json(resp, falcon.HTTP_200, body)
            return
        messages = {
            "stopping": "the node is shutting down",
            "removed": "this node was removed from the cluster's configuration",
            "no_leader": "this node knows no leader: the cluster is electing one or this node "
                         "is cut off from a majority",
            "lagging": f"this node's state machine is more than {max_lag} entries behind its "
                       "commit index (api.ready_max_lag)",
        }
        resp.set_header("Retry-After", "1")
        send_json(resp, falcon.HTTP_503, {**body, "reason": reason,
                                          "message": messages[reason]})


class Stats:
    """``GET /stats``: task counts (linearizable read) and this node's Raft figures."""

    def __init__(self, deps: ApiDeps) -> None:
        self._deps = deps

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        stats = _plain_dict(self._deps.read({"op": "stats"}))
        body = {
            "tasks": stats.get("by_status", {}),
            "by_type": stats.get("by_type", {}),
            "by_queue": stats.get("by_queue", {}),
            "raft": _plain_dict(stats.get("raft")),
        }
        send_json(resp, falcon.HTTP_200, body)


class Cluster:
    """``GET /cluster``: members, roles, leader, term, this node's commit and applied index, and
    each member's match index and replication lag (known on the leader)."""

    def __init__(self, deps: ApiDeps) -> None:
        self._deps = deps

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        # ?leader=true: only the leader knows each member's lag; elsewhere a 503 with the
        # leader hint, which the SDK follows (ClusterAdmin's catch-up wait).
        from_leader = v.query_params(req, frozenset({"leader"})).get("leader")
        if from_leader not in (None, "true", "false"):
            raise invalid("leader", "leader must be true or false")
        value = _plain_dict(
            self._deps.read({"op": "cluster"}, stale=True, timeout_ms=LOCAL_READ_TIMEOUT_MS)
        )
        if "commit_index" not in value or "applied_index" not in value:
            health = _plain_dict(
                self._deps.read({"op": "health"}, stale=True, timeout_ms=LOCAL_READ_TIMEOUT_MS)
            )
            value.setdefault("commit_index", health.get("commit_index"))
            value.setdefault("applied_index", health.get("applied_index"))
        peers_http = self._deps.config.peers_http
        members = value.get("members")
        if isinstance(members, list):
            for member in members:
                if isinstance(member, dict) and not member.get("http_addr"):
                    member["http_addr"] = peers_http.get(str(member.get("id")))
        if from_leader == "true" and value.get("leader_id") != self._deps.config.id:
            raise _ask_the_leader(value)
        send_json(resp, falcon.HTTP_200, value)


class Metrics:
    """``GET /metrics``: Prometheus text format of this process's registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._registry = registry

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.content_type = CONTENT_TYPE_LATEST
        resp.data = generate_latest(self._registry)


class OpenApi:
    """``GET /openapi.json``: the OpenAPI 3 document, serialized once."""

    def __init__(self, document: dict[str, Any]) -> None:
        self._data = json.dumps(document, indent=1).encode()

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.content_type = falcon.MEDIA_JSON
        resp.data = self._data


def _ask_the_leader(cluster: dict[str, Any]) -> ApiError:
    """The 503 of ``GET /cluster?leader=true`` on a node that does not lead."""
    leader_id = cluster.get("leader_id")
    leader_http = next((m.get("http_addr") for m in cluster.get("members") or []
                        if isinstance(m, dict) and m.get("id") == leader_id), None)
    return ApiError(falcon.HTTP_503, ErrorCode.NO_LEADER, "this node does not lead: ask the "
                    "leader", extra={"leader_id": leader_id, "leader_http": leader_http},
                    headers={"Retry-After": str(RETRY_AFTER_S)})


def _plain_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}
