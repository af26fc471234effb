"""The OpenAPI 3 description of the HTTP API, served at ``GET /openapi.json``.

Kept true by a test that compares its paths and methods with the app's routes and checks the
documented request fields against the validators' field sets.
"""

from __future__ import annotations

from typing import Any

from dqueue.api import validation as v
from dqueue.api.auth import OPEN_HEALTH_ROUTES, role_for
from dqueue.api.dlq import REDRIVE_FIELDS
from dqueue.api.queues import MOVE_FIELDS, SETTING_FIELDS
from dqueue.api.rate_limits import BODY_FIELDS as RATE_LIMIT_FIELDS
from dqueue.api.tasks import (
    ACK_FIELDS,
    ENQUEUE_FIELDS,
    EXTEND_FIELDS,
    LEASE_FIELDS,
    NACK_FIELDS,
    RELEASE_FIELDS,
)
from dqueue.api.workers import HEARTBEAT_FIELDS
from dqueue.queue import fields, schedules

_REF = "#/components/schemas/"
_JSON = "application/json"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": _REF + name}


def _json_response(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {_JSON: {"schema": schema}}}


def _error(description: str) -> dict[str, Any]:
    return _json_response(description, _ref("Error"))


_COMMON_ERRORS = {
    "503": {
        **_error("No leader known within the deadline (Retry-After header; leader hint)."),
        "headers": {"Retry-After": {"schema": {"type": "integer"}}},
    },
}
_BODY_ERRORS = {
    "400": _error("Invalid JSON or a bad field (the error names it)."),
    "413": _error("The body is larger than max_body_bytes."),
    "415": _error("The body is not application/json."),
    **_COMMON_ERRORS,
}
_ID_PARAM = [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}]


def _body(schema_name: str, required: bool = True) -> dict[str, Any]:
    return {"required": required, "content": {_JSON: {"schema": _ref(schema_name)}}}


def _op(summary: str, responses: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"summary": summary, "responses": responses, **extra}


def _schemas() -> dict[str, Any]:
    string = {"type": "string"}
    # The ids and the lease token a request presents: the rules of dqueue/queue/fields.py.
    ident = {"type": "string", "minLength": 1, "maxLength": v.MAX_STRING_CHARS}
    token = {"type": "string", "minLength": 1,
             "maxLength": fields.PRESENTED_LEASE_TOKEN.max_chars}
    seconds = {"type": "number", "description": "seconds, fractions allowed"}
    queue_name = {"type": "string", "pattern": fields.QUEUE_NAME_PATTERN.pattern,
                  "maxLength": fields.QUEUE_NAME.max_chars}
    time = {"type": "string", "format": "date-time"}
    nullable_time = {"type": ["string", "null"], "format": "date-time"}
    return {
        "Error": {
            "type": "object",
            "required": ["error"],
            "properties": {"error": {
                "type": "object", "required": ["code", "message"],
                "properties": {
                    "code": string, "message": string, "field": string,
                    "leader_id": {"type": ["string", "null"]},
                    "leader_http": {"type": ["string", "null"]},
                },
            }},
        },
        "Lease": {
            "type": ["object", "null"],
            "properties": {"worker_id": string, "token": string, "expires_at": time},
        },
        "Task": {
            "type": "object",
            "properties": {
                "id": string, "type": string, "payload": {},
                "priority": {"type": "integer"}, "max_retries": {"type": "integer"},
                "attempts": {"type": "integer"},
                "status": {"type": "string", "enum": list(v.TASK_STATUSES)},
                "idempotency_key": {"type": ["string", "null"]},
                "created_at": time, "updated_at": time, "visible_at": nullable_time,
                "lease": _ref("Lease"), "last_error": {"type": ["string", "null"]},
                "duplicate": {"type": "boolean", "description": "enqueue answers only"},
                "queue": string,
                "source_queue": {"type": ["string", "null"],
                                 "description": "the queue a dead letter was moved from"},
                "result": {"description": "a completed task's result (the handler's return "
                                          "value); absent when none"},
                "last_traceback": {"type": "string", "description": "the last lines of the "
                                   "last failure's traceback; absent when none"},
            },
        },
        "TaskList": {
            "type": "object",
            "properties": {
                "tasks": {"type": "array", "items": _ref("Task")},
                "next_cursor": {"type": ["string", "null"]},
            },
        },
        "EnqueueRequest": {
            "type": "object", "additionalProperties": False, "required": ["type"],
            "properties": {
                "type": {"type": "string", "pattern": v.TYPE_PATTERN.pattern},
                "payload": {"description": "any JSON value"},
                "priority": {"type": "integer", "minimum": v.MIN_PRIORITY,
                             "maximum": v.MAX_PRIORITY, "description": "higher first"},
                "max_retries": {"type": "integer", "minimum": 0, "maximum": v.MAX_MAX_RETRIES},
                "idempotency_key": {"type": "string", "maxLength": v.MAX_STRING_CHARS},
                "delay_seconds": {**seconds, "minimum": 0, "maximum": v.MAX_DELAY_SECONDS},
                "queue": queue_name,
            },
        },
        "BatchRequest": {
            "type": "object", "additionalProperties": False, "required": ["tasks"],
            "properties": {"tasks": {"type": "array", "minItems": 1,
                                     "maxItems": v.MAX_BATCH_TASKS,
                                     "items": _ref("EnqueueRequest")}},
        },
        "LeaseRequest": {
            "type": "object", "additionalProperties": False, "required": ["worker_id"],
            "properties": {
                "worker_id": ident,
                "types": {"type": "array", "items": string, "maxItems": v.MAX_TYPES},
                "lease_seconds": {**seconds, "exclusiveMinimum": 0,
                                  "maximum": v.MAX_LEASE_SECONDS},
                "wait_seconds": {**seconds, "minimum": 0, "maximum": 20},
                "max_tasks": {"type": "integer", "minimum": 1, "maximum": v.MAX_LEASE_TASKS},
                "queues": {"type": "array", "items": queue_name, "minItems": 1,
                           "maxItems": fields.MAX_QUEUES,
                           "description": "default: the queue default"},
            },
        },
        **queue_schemas(queue_name, seconds, time),
        "AckRequest": {
            "type": "object", "additionalProperties": False,
            "required": ["worker_id", "lease_token"],
            "properties": {
                "worker_id": ident, "lease_token": token,
                "result": {"description": "any JSON value, kept on the task; at most "
                                          "api.max_result_bytes as compact JSON"},
            },
        },
        "ReleaseRequest": {
            "type": "object", "additionalProperties": False,
            "required": ["worker_id", "lease_token"],
            "properties": {"worker_id": ident, "lease_token": token},
        },
        "NackRequest": {
            "type": "object", "additionalProperties": False,
            "required": ["worker_id", "lease_token"],
            "properties": {
                "worker_id": ident, "lease_token": token,
                "reason": {"type": "string", "maxLength": v.MAX_REASON_CHARS},
                "dead_letter": {"type": "boolean"},
                "traceback": {"type": "string", "maxLength": fields.MAX_TRACEBACK_CHARS,
                              "description": "the failure's last traceback lines: "
                                             "last_traceback"},
                "retry_delay_ms": {"type": "integer", "minimum": 0,
                                   "maximum": fields.DELAY_MS.high,
                                   "description": "the retry's delay, instead of the "
                                                  "queue's backoff"},
            },
        },
        "ExtendRequest": {
            "type": "object", "additionalProperties": False,
            "required": ["worker_id", "lease_token"],
            "properties": {
                "worker_id": ident, "lease_token": token,
                "lease_seconds": {**seconds, "exclusiveMinimum": 0,
                                  "maximum": v.MAX_LEASE_SECONDS},
            },
        },
        "RedriveRequest": {
            "type": "object", "additionalProperties": False,
            "properties": {"task_id": string, "type": string},
        },
        "HeartbeatRequest": _heartbeat_schema(ident),
    }


def _heartbeat_schema(ident: dict[str, Any]) -> dict[str, Any]:
    """``POST /workers/heartbeat`` (docs/worker.md, "Seeing the workers")."""
    def count(rule: fields.IntRule) -> dict[str, Any]:
        return {"type": "integer", "minimum": rule.low, "maximum": rule.high}
    names = {"type": "array", "items": {"type": "string"}}
    return {
        "type": "object", "additionalProperties": False,
        "required": ["worker_id", "host", "pid", "concurrency", "started_at",
                     "heartbeat_seconds"],
        "properties": {
            "worker_id": ident,
            "host": {"type": "string", "minLength": 1,
                     "maxLength": fields.WORKER_HOST.max_chars},
            "pid": count(fields.WORKER_PID),
            "transport": {"type": "string", "enum": list(fields.WORKER_TRANSPORTS)},
            "queues": {**names, "maxItems": fields.MAX_QUEUES},
            "types": {**names, "maxItems": fields.MAX_TYPES},
            "concurrency": count(fields.WORKER_CONCURRENCY),
            "in_flight": count(fields.WORKER_IN_FLIGHT),
            "started_at": {"type": "string", "format": "date-time"},
            "heartbeat_seconds": {"type": "number",
                                  "minimum": fields.HEARTBEAT_MS.low / 1000,
                                  "maximum": fields.HEARTBEAT_MS.high / 1000,
                                  "description": "dropped after "
                                                 f"{fields.MISSED_HEARTBEATS} missed"},
            "leaving": {"type": "boolean", "description": "true: drop the worker now"},
        },
    }


# Request schema name -> the field set the validator accepts (checked by a test).
REQUEST_FIELDS = {
    "EnqueueRequest": ENQUEUE_FIELDS,
    "LeaseRequest": LEASE_FIELDS,
    "AckRequest": ACK_FIELDS,
    "ReleaseRequest": RELEASE_FIELDS,
    "NackRequest": NACK_FIELDS,
    "ExtendRequest": EXTEND_FIELDS,
    "RedriveRequest": REDRIVE_FIELDS,
    "QueueSettings": SETTING_FIELDS,
    "MoveRequest": MOVE_FIELDS,
    "ScheduleRequest": schedules.SPEC_FIELDS,
    "RateLimitRequest": RATE_LIMIT_FIELDS,
    "HeartbeatRequest": HEARTBEAT_FIELDS,
}
_RATE_LIMIT = {"type": "string", "pattern": "^[1-9][0-9]{0,6}/[smh]$",
               "description": "N per second, minute or hour over the whole cluster, "
                              "enforced at lease time, e.g. 100/m"}


def _task_paths() -> dict[str, Any]:
    task = _json_response("The task.", _ref("Task"))
    not_found = {"404": _error("No such task.")}
    conflict = {"409": _error("The caller does not hold the lease, or the task's state "
                              "forbids it.")}

    def action(summary: str, schema: str | None) -> dict[str, Any]:
        extra = {"requestBody": _body(schema, required=True)} if schema else {}
        return {"post": _op(summary, {"200": task, **not_found, **conflict, **_BODY_ERRORS},
                            parameters=_ID_PARAM, **extra)}

    return {
        "/tasks": {
            "post": _op("Enqueue a task.", {
                "201": _json_response("Created.", _ref("Task")),
                "200": _json_response("Duplicate idempotency key: the original task.",
                                      _ref("Task")),
                **_BODY_ERRORS,
            }, requestBody=_body("EnqueueRequest")),
            "get": _op("List tasks by status (e.g. the dead-letter queue).", {
                "200": _json_response("A page of tasks.", _ref("TaskList")),
                "400": _error("A bad query parameter."), **_COMMON_ERRORS,
            }, parameters=[
                {"name": "status", "in": "query", "required": True,
                 "schema": {"type": "string", "enum": list(v.TASK_STATUSES)}},
                {"name": "type", "in": "query", "schema": {"type": "string"}},
                {"name": "limit", "in": "query",
                 "schema": {"type": "integer", "minimum": 1, "maximum": v.MAX_LIST_LIMIT}},
                {"name": "cursor", "in": "query", "schema": {"type": "string"}},
            ]),
        },
        "/tasks/batch": {
            "post": _op("Enqueue 1 to 1,000 tasks in one command.", {
                "201": _json_response("Created (each task has its duplicate flag).",
                                      _ref("TaskList")),
                **_BODY_ERRORS,
            }, requestBody=_body("BatchRequest")),
        },
        "/tasks/lease": {
            "post": _op("Lease the next visible task (long poll with wait_seconds).", {
                "200": _json_response("The leased task, or {tasks: [...]} with max_tasks.",
                                      {"oneOf": [_ref("Task"), _ref("TaskList")]}),
                "204": {"description": "Nothing to lease."},
                **_BODY_ERRORS,
            }, requestBody=_body("LeaseRequest")),
        },
        "/tasks/{id}": {
            "get": _op("Get a task; with wait, a long poll until it is completed, dead or "
                       "cancelled.", {"200": task, **not_found, **_COMMON_ERRORS},
                       parameters=[*_ID_PARAM, {
                           "name": "wait", "in": "query",
                           "description": "seconds (fractions allowed) to wait for the task "
                                          "to finish; cut to api.max_wait",
                           "schema": {"type": "number", "minimum": 0}}]),
        },
        "/tasks/{id}/ack": action("Complete a leased task.", "AckRequest"),
        "/tasks/{id}/nack": action("Fail a leased task (retry with backoff or dead-letter).",
                                   "NackRequest"),
        "/tasks/{id}/extend": action("Extend a lease.", "ExtendRequest"),
        "/tasks/{id}/release": action("Hand a leased task back unstarted (no attempt "
                                      "counted).", "ReleaseRequest"),
        "/tasks/{id}/cancel": action("Cancel a pending task.", None),
    }


def queue_schemas(queue_name: dict[str, Any], seconds: dict[str, Any],
                  time: dict[str, Any]) -> dict[str, Any]:
    """The schemas of the named-queue resources (docs/http-api.md, "Queues")."""
    optional_seconds = {**seconds, "type": ["number", "null"]}
    optional_int = {"type": ["integer", "null"]}
    settings = {
        "lease_seconds": optional_seconds, "max_retries": optional_int,
        "backoff_base_seconds": optional_seconds, "backoff_cap_seconds": optional_seconds,
        "retention_seconds": optional_seconds, "delay_seconds": optional_seconds,
        "max_depth": optional_int, "max_message_bytes": optional_int,
        "wait_seconds": {**optional_seconds, "maximum": fields.WAIT_MS.high / 1000},
        "dead_letter_queue": {**queue_name, "type": ["string", "null"]},
        "tags": {"type": ["object", "null"], "additionalProperties": {"type": "string"},
                 "maxProperties": fields.MAX_TAGS},
        "content_dedup": {"type": ["boolean", "null"],
                          "description": "FIFO queues: deduplicate by content (SQS API)"},
        "rate_limit": {**_RATE_LIMIT, "type": ["string", "null"]},
    }
    counts = {"type": "object", "additionalProperties": {"type": "integer"}}
    return {
        "QueueSettings": {"type": "object", "additionalProperties": False,
                          "properties": settings,
                          "description": "null: back to the cluster's default"},
        "Queue": {"type": "object", "properties": {
            "name": queue_name, "created_at": time, "updated_at": time,
            "settings": {"type": "object", "properties": settings}, "counts": counts,
            "depth": {"type": "integer", "description": "pending plus leased"},
            "dead_letter_sources": {"type": "array", "items": queue_name}}},
        "ScheduleRequest": {"type": "object", "additionalProperties": False, "properties": {
            "cron": {"type": "string", "description": "five fields: minute hour day month "
                                                      "weekday"},
            "timezone": {"type": "string", "description": "IANA zone of cron; default UTC"},
            "every_seconds": {"type": "integer", "minimum": 1,
                              "maximum": schedules.EVERY_SECONDS.high},
            "task": {"type": "object", "properties": {
                "queue": queue_name, "type": {"type": "string"}, "payload": {},
                "priority": {"type": "integer"}, "max_retries": {"type": "integer"}},
                "required": ["type"]},
            "paused": {"type": "boolean"},
            "catch_up": {"type": "string", "enum": list(schedules.CATCH_UP)}},
            "required": ["task"]},
        "RateLimitRequest": {"type": "object", "additionalProperties": False,
                             "properties": {"rate_limit": _RATE_LIMIT},
                             "required": ["rate_limit"]},
        "MoveRequest": {"type": "object", "additionalProperties": False, "properties": {
            "destination": queue_name,
            "max_tasks": {"type": "integer", "minimum": 1,
                          "maximum": fields.MOVE_MAX_TASKS.high}}},
    }


def queue_paths() -> dict[str, Any]:
    """The named-queue resources."""
    name = [{"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}]
    queue = _json_response("The queue.", _ref("Queue"))
    missing = {"404": _error("No such queue.")}
    counted = {"type": "object", "additionalProperties": {"type": "integer"}}
    return {
        "/queues": {"get": _op("Every queue with its settings and counts.", {
            "200": _json_response("The queues.", {"type": "object", "properties": {
                "queues": {"type": "array", "items": _ref("Queue")}}}), **_COMMON_ERRORS,
        }, parameters=[{"name": "prefix", "in": "query", "schema": {"type": "string"}}])},
        "/queues/{name}": {
            "put": _op("Create a queue (again with equal settings: 200, no change).", {
                "201": queue, "200": queue,
                "409": _error("The queue exists with other settings."), **_BODY_ERRORS,
            }, parameters=name, requestBody=_body("QueueSettings", required=False)),
            "get": _op("A queue's settings, counts by status and depth.", {
                "200": queue, **missing, **_COMMON_ERRORS}, parameters=name),
            "patch": _op("Change some settings; the others stay.", {
                "200": queue, **missing, **_BODY_ERRORS,
            }, parameters=name, requestBody=_body("QueueSettings")),
            "delete": _op("Delete a queue and all its tasks (not the queue default).", {
                "200": _json_response("Deleted.", counted), **missing, **_BODY_ERRORS,
            }, parameters=name),
        },
        "/queues/{name}/purge": {"post": _op(
            "Delete the queue's pending, leased and dead tasks.", {
                "200": _json_response("How many were purged.", counted), **missing,
                **_COMMON_ERRORS}, parameters=name)},
        "/queues/{name}/move": {"post": _op(
            "Move pending and dead tasks to destination, or back where each died.", {
                "200": _json_response("How many were moved.", counted), **missing,
                **_BODY_ERRORS}, parameters=name,
            requestBody=_body("MoveRequest", required=False))},
    }


def _schedule_paths() -> dict[str, Any]:
    """The periodic schedule resources (docs/schedules.md)."""
    name = [{"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}]
    schedule = _json_response("The schedule.", {"type": "object"})
    missing = {"404": _error("No such schedule.")}
    return {
        "/schedules": {"get": _op("Every schedule, in creation order.", {
            "200": _json_response("The schedules.", {"type": "object", "properties": {
                "schedules": {"type": "array", "items": {"type": "object"}}}}),
            **_COMMON_ERRORS})},
        "/schedules/{name}": {
            "put": _op("Create or replace a schedule (slots before now never fire).", {
                "201": schedule, "200": schedule, **_BODY_ERRORS,
            }, parameters=name, requestBody=_body("ScheduleRequest")),
            "get": _op("A schedule, its last and next slots.", {
                "200": schedule, **missing, **_COMMON_ERRORS}, parameters=name),
            "delete": _op("Delete a schedule (its tasks stay).", {
                "200": _json_response("Deleted.", {"type": "object"}), **missing,
                **_BODY_ERRORS}, parameters=name),
        },
        "/schedules/{name}/pause": {"post": _op("Pause: no slot fires until resumed.", {
            "200": schedule, **missing, **_COMMON_ERRORS}, parameters=name)},
        "/schedules/{name}/resume": {"post": _op(
            "Resume; slots passed while paused are skipped.", {
                "200": schedule, **missing, **_COMMON_ERRORS}, parameters=name)},
    }


def _rate_limit_paths() -> dict[str, Any]:
    """The task type rate limit resources (docs/queues.md, "Rate limits")."""
    name = [{"name": "type", "in": "path", "required": True, "schema": {"type": "string"}}]
    limit = _json_response("The type's limit.", {"type": "object", "properties": {
        "type": {"type": "string"}, "rate_limit": _RATE_LIMIT}})
    missing = {"404": _error("The type has no limit.")}
    return {
        "/rate-limits": {"get": _op("Every task type's rate limit, by type.", {
            "200": _json_response("The limits.", {"type": "object", "properties": {
                "rate_limits": {"type": "array", "items": {"type": "object"}}}}),
            **_COMMON_ERRORS})},
        "/rate-limits/{type}": {
            "put": _op("Set a type's limit, over every queue (an equal one changes nothing).",
                       {"201": limit, "200": limit, **_BODY_ERRORS}, parameters=name,
                       requestBody=_body("RateLimitRequest")),
            "get": _op("A type's limit.", {"200": limit, **missing, **_COMMON_ERRORS},
                       parameters=name),
            "delete": _op("Remove a type's limit.", {
                "200": _json_response("Deleted.", {"type": "object"}), **missing,
                **_BODY_ERRORS}, parameters=name),
        },
    }


def _worker_paths() -> dict[str, Any]:
    """The workers table (docs/worker.md, "Seeing the workers"): the same on every node."""
    worker = {"type": ["object", "null"]}
    return {
        "/workers": {"get": _op("Every listed worker, sorted by id.", {
            "200": _json_response("The workers.", {"type": "object", "properties": {
                "workers": {"type": "array", "items": {"type": "object"}}}}),
            "400": _error("A query parameter (there are none)."), **_COMMON_ERRORS})},
        "/workers/heartbeat": {"post": _op(
            "A worker is alive: list or refresh it (leaving: drop it).", {
                "200": _json_response("The worker as listed (null when leaving).", {
                    "type": "object", "properties": {"worker": worker}}),
                "409": _error("The table is full."), **_BODY_ERRORS},
            requestBody=_body("HeartbeatRequest"))},
    }


def _node_paths() -> dict[str, Any]:
    any_object = {"type": "object"}
    count = {"type": "object", "properties": {"redriven": {"type": "integer"}}}
    purged = {"type": "object", "properties": {"purged": {"type": "integer"}}}
    return {
        "/dlq/redrive": {
            "post": _op("Re-queue dead tasks (one, one type, or all).", {
                "200": _json_response("How many were redriven.", count), **_BODY_ERRORS,
            }, requestBody=_body("RedriveRequest", required=False)),
        },
        "/dlq": {
            "delete": _op("Purge dead tasks (of one type, or all).", {
                "200": _json_response("How many were purged.", purged),
                "400": _error("A bad query parameter."), **_COMMON_ERRORS,
            }, parameters=[{"name": "type", "in": "query", "schema": {"type": "string"}}]),
        },
        "/health": {"get": _op("This node's role, term, leader and indexes.", {
            "200": _json_response("Healthy.", any_object), **_COMMON_ERRORS})},
        "/ready": {"get": _op("Whether this node can serve: a leader is known and the applied "
                              "index is within api.ready_max_lag of the commit index.", {
            "200": _json_response("Ready.", any_object),
            "503": _json_response("Not ready; the reason is in the body.", any_object)})},
        "/stats": {"get": _op("Task counts by status and type, and Raft figures.", {
            "200": _json_response("Statistics.", any_object), **_COMMON_ERRORS})},
        "/stats/history": {"get": _op(
            "The dashboard's samples of the last 15 minutes: depth and rates.", {
                "200": _json_response("Samples.", any_object), **_COMMON_ERRORS})},
        "/cluster": {"get": _op("Members, roles, leader, term, indexes and lag.", {
            "200": _json_response("Cluster status.", any_object),
            "400": _error("A bad query parameter."), **_COMMON_ERRORS},
            parameters=[{"name": "leader", "in": "query", "schema": {"type": "boolean"},
                         "description": "true: answered by the leader only (a 503 with the "
                                        "leader hint elsewhere), which knows every lag"}])},
        **_member_paths(),
        "/metrics": {"get": _op("Prometheus metrics.", {"200": {
            "description": "Prometheus text format.",
            "content": {"text/plain": {"schema": {"type": "string"}}}}})},
        "/openapi.json": {"get": _op("This document.", {
            "200": _json_response("OpenAPI 3 document.", any_object)})},
    }


def _member_paths() -> dict[str, Any]:
    """Membership changes (docs/http-api.md, "Cluster membership"): answered once committed."""
    member = [{"name": "member", "in": "path", "required": True, "schema": {"type": "string"}}]
    changed = _json_response("The change committed; the configuration after it.", {
        "type": "object", "properties": {
            "id": {"type": "string"}, "change": {"type": "string"},
            "index": {"type": "integer"},
            "voters": {"type": "array", "items": {"type": "string"}},
            "learners": {"type": "array", "items": {"type": "string"}}}})
    refused = {"404": _error("No such member."),
               "409": _error("Another change is not committed yet, or the change does not "
                             "fit the configuration.")}
    add_body = {"required": True, "content": {_JSON: {"schema": {
        "type": "object", "required": ["id", "raft_addr", "http_addr"], "properties": {
            "id": {"type": "string"}, "raft_addr": {"type": "string"},
            "http_addr": {"type": "string"}, "public_key": {"type": "string"},
            "learner": {"type": "boolean"}}}}}}
    return {
        "/cluster/members": {"post": _op("Add a member as a learner.", {
            "201": changed, "409": refused["409"], **_BODY_ERRORS}, requestBody=add_body)},
        "/cluster/members/{member}": {"delete": _op(
            "Remove a member (the leader hands over leadership first).", {
                "200": changed, **refused, **_COMMON_ERRORS}, parameters=member)},
        "/cluster/members/{member}/promote": {"post": _op("Make a learner a voter.", {
            "200": changed, **refused, **_COMMON_ERRORS}, parameters=member)},
    }


def openapi_document() -> dict[str, Any]:
    """The whole OpenAPI 3.1 document."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "dqueue HTTP API",
            "version": "1",
            "description": "A distributed task queue replicated by Raft. Any node answers; "
                           "writes are answered after commit on a majority.",
        },
        "paths": _with_roles({**_task_paths(), **queue_paths(), **_schedule_paths(),
                              **_rate_limit_paths(), **_worker_paths(),
                              **_node_paths()}),
        "components": {"schemas": _schemas(), "securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer",
                       "description": "A token from `dqueue-cli tokens add`, needed when the "
                                      "node has a tokens file (docs/security.md)"}}},
    }


def _with_roles(paths: dict[str, Any]) -> dict[str, Any]:
    """Each operation with the bearer requirement and the role it needs (auth.ROUTE_ROLES)."""
    for path, operations in paths.items():
        template = path.split("?", 1)[0]
        for method, operation in operations.items():
            key = (method.upper(), template)
            role = role_for(*key)
            operation["security"] = [{}, {"bearer": []}] if key in OPEN_HEALTH_ROUTES else [
                {"bearer": []}]
            operation["x-dqueue-role"] = role
            operation.setdefault("description", "")
            operation["description"] = (operation["description"] + f" Role: `{role}`"
                                        + (" (open while api.open_health is true)."
                                           if key in OPEN_HEALTH_ROUTES else ".")).strip()
    return paths
