"""What a valid worker request is: the checks of the worker protocol's bodies, turned into the
plain commands the Raft process takes (docs/worker-protocol.md).

Pure: no socket, no clock. The gateway (``gateway.py``) calls these for every message a worker
sends; every value of a body comes from the network, so each check refuses with a
``RequestError`` naming the field, and nothing here raises anything else.
"""

from __future__ import annotations

from typing import Any

from dqueue.api import validation as v
from dqueue.api.errors import ApiError
from dqueue.api.fencing import is_lease_token, lease_token
from dqueue.queue import fields, workers
from dqueue.queue.fields import InvalidCommand
from dqueue.queue.results import DEFAULT_MAX_RESULT_BYTES, result_problem

# Every field a command carries is checked by the queue's rule (dqueue/queue/fields.py); only
# ``wait_ms`` is the gateway's own (bounded by the node's max_wait).
MAX_ACK_BATCH = fields.MAX_BATCH  # the acks one ack_batch command may carry
_LEASE_KEYS = frozenset({"rid", "worker_id", "max_tasks", "types", "lease_ms", "wait_ms",
                         "queues"})
_HOLDER_BASE_KEYS = frozenset({"rid", "id", "worker_id", "token"})
_ACK_KEYS = _HOLDER_BASE_KEYS | {"result"}
_NACK_KEYS = _HOLDER_BASE_KEYS | {"reason", "dead_letter", "traceback", "retry_delay_ms"}
_EXTEND_KEYS = _HOLDER_BASE_KEYS | {"lease_ms"}
_ACK_MANY_KEYS = frozenset({"rid", "worker_id", "items"})
_USUAL_ACK_ITEM_KEYS = frozenset({"id", "token"})
_ACK_ITEM_KEYS = _USUAL_ACK_ITEM_KEYS | {"result"}
_HEARTBEAT_KEYS = frozenset({"rid", "leaving"} | workers.INFO_FIELDS) - {"transport"}
# The requests of a lease holder about one task, and their fields.
_HOLDER_KEYS = {b"ack": _ACK_KEYS, b"nack": _NACK_KEYS, b"extend": _EXTEND_KEYS,
                b"release": _HOLDER_BASE_KEYS}


class RequestError(Exception):
    """A worker request refused before reaching the Raft process; answered with ``err``."""

    def __init__(self, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field


def check_worker_id(worker_id: str | None, worker_name: str) -> None:
    """Refuse a ``worker_id`` other than the worker the connection authenticated as.

    Args:
        worker_id: the request's ``worker_id`` (already checked as a string).
        worker_name: the name of the CURVE key the gateway admitted the connection with (its
            ZAP User-Id, ``workers/<name>.key``); empty without worker keys, where any id goes.

    Raises:
        RequestError: ``forbidden`` naming ``worker_id``, so that a worker cannot act as another.
    """
    if worker_name and worker_id != worker_name:
        raise RequestError("forbidden", f"worker_id must be {worker_name!r}, the name of the key "
                                        f"this worker connected with (not {worker_id!r}): with "
                                        "worker keys a worker leases and acks only as itself",
                           "worker_id")


def ack_items_of(body: dict[str, Any], worker_name: str = "",
                 max_result_bytes: int = DEFAULT_MAX_RESULT_BYTES) -> list[dict[str, Any]]:
    """The ``ack_batch`` items of a valid ``ack_many`` body (all or nothing); ``worker_name``
    as in ``check_worker_id``; an item's ``result`` at most ``max_result_bytes``. Raises
    RequestError."""
    try:
        v.check_keys(body, _ACK_MANY_KEYS, ("worker_id", "items"))
        worker_id = v.opt_text(body, "worker_id", fields.WORKER_ID)
        check_worker_id(worker_id, worker_name)
        raw = body["items"]
        if not isinstance(raw, list) or not 1 <= len(raw) <= fields.MAX_BATCH:
            raise RequestError("invalid_field",
                               f"items must be a list of 1 to {fields.MAX_BATCH} acks", "items")
        items = []
        for index, obj in enumerate(raw):
            if not is_usual_ack_item(obj):
                check_ack_item(obj, f"items[{index}].", max_result_bytes)
            item = {"id": obj.get("id"), "worker_id": worker_id, "token": obj.get("token")}
            if obj.get("result") is not None:
                item["result"] = obj["result"]
            items.append(item)
        return items
    except ApiError as exc:
        raise RequestError(exc.code, exc.message, exc.field) from None


def is_usual_ack_item(obj: Any) -> bool:
    """Whether ``obj`` is an ``ack_many`` item of the usual shape (no result) that
    ``check_ack_item`` accepts: the fast path, on exact types
    (tests/unit/api/test_worker_requests.py)."""
    return (type(obj) is dict and obj.keys() <= _USUAL_ACK_ITEM_KEYS
            and fields.TASK_ID.accepts(obj.get("id")) and is_lease_token(obj.get("token")))


def check_ack_item(obj: Any, prefix: str,
                   max_result_bytes: int = DEFAULT_MAX_RESULT_BYTES) -> None:
    """Check an ``ack_many`` item in full (its ``result`` at most ``max_result_bytes``).

    Raises:
        RequestError: ``obj`` is not a map.
        ApiError: naming the bad field of the item.
    """
    if not isinstance(obj, dict):
        raise RequestError("invalid_field", f"{prefix[:-1]} must be a map", prefix[:-1])
    v.check_keys(obj, _ACK_ITEM_KEYS, ("id",), prefix)
    v.opt_text(obj, "id", fields.TASK_ID, prefix)
    check_result(obj, max_result_bytes, prefix)
    lease_token(obj, "token", prefix)


def check_result(body: dict[str, Any], max_result_bytes: int, prefix: str = "") -> None:
    """Refuse a ``result`` (when there is one) that is not JSON or larger than
    ``max_result_bytes`` (dqueue/queue/results.py).

    Raises:
        RequestError: ``invalid_field`` naming ``<prefix>result``.
    """
    result = body.get("result")
    if result is not None:
        problem = result_problem(result, max_result_bytes)
        if problem is not None:
            raise RequestError("invalid_field", prefix + problem, prefix + "result")


def command_of(kind: bytes, body: dict[str, Any], max_wait_ms: int,
               worker_name: str = "",
               max_result_bytes: int = DEFAULT_MAX_RESULT_BYTES) -> tuple[dict[str, Any], int]:
    """Validate a request; return its plain command and lease wait. ``worker_name`` as in
    ``check_worker_id``; an ack's ``result`` at most ``max_result_bytes``. Raises
    RequestError."""
    try:
        if kind == b"lease":
            v.check_keys(body, _LEASE_KEYS, ("worker_id",))
            worker_id = v.opt_text(body, "worker_id", fields.WORKER_ID)
            check_worker_id(worker_id, worker_name)
            max_tasks = v.opt_field_int(body, "max_tasks", fields.LEASE_MAX_TASKS) or 1
            wait_ms = v.opt_int(body, "wait_ms", 0, max_wait_ms) or 0
            cmd = {"op": "lease", "worker_id": worker_id, "types": v.opt_types(body),
                   "max_tasks": max_tasks, "lease_ms": lease_ms(body)}
            queues = v.opt_queues(body)
            if queues is not None:
                cmd["queues"] = queues
            return cmd, wait_ms
        if kind == b"heartbeat":
            return heartbeat_command(body, worker_name), 0
        if kind in _HOLDER_KEYS:
            keys = _HOLDER_KEYS[kind]
            v.check_keys(body, keys, ("id", "worker_id"))
            cmd: dict[str, Any] = {"op": kind.decode(),
                                   "id": v.opt_text(body, "id", fields.TASK_ID),
                                   "worker_id": v.opt_text(body, "worker_id", fields.WORKER_ID)}
            check_worker_id(cmd["worker_id"], worker_name)
            if kind == b"nack":
                cmd["reason"] = v.opt_text(body, "reason", fields.REASON) or ""
                cmd["dead_letter"] = bool(v.opt_bool(body, "dead_letter"))
                traceback = v.opt_text(body, "traceback", fields.TRACEBACK)
                if traceback is not None:
                    cmd["traceback"] = traceback
                retry_delay_ms = v.opt_field_int(body, "retry_delay_ms", fields.DELAY_MS)
                if retry_delay_ms is not None:
                    cmd["retry_delay_ms"] = retry_delay_ms
            elif kind == b"ack" and body.get("result") is not None:
                check_result(body, max_result_bytes)
                cmd["result"] = body["result"]
            elif kind == b"extend":
                cmd["lease_ms"] = lease_ms(body)
            # Last: a bad field is named before a missing token is refused as not holding.
            cmd["token"] = lease_token(body, "token")
            return cmd, 0
    except ApiError as exc:
        raise RequestError(exc.code, exc.message, exc.field) from None
    raise RequestError("unknown_kind", f"unknown message kind {kind[:32]!r}", "kind")


def heartbeat_command(body: dict[str, Any], worker_name: str = "") -> dict[str, Any]:
    """The ``worker_heartbeat`` command of a ``heartbeat`` body (transport ``zmq``), every
    field checked by ``workers.check_info``; ``worker_name`` as in ``check_worker_id``.

    Raises:
        RequestError: naming the bad field.
        ApiError: an unknown field (``command_of`` turns it into a RequestError).
    """
    v.check_keys(body, _HEARTBEAT_KEYS, ())
    leaving = bool(v.opt_bool(body, "leaving"))
    try:
        info = workers.check_info({**{key: body[key] for key in body.keys() & _HEARTBEAT_KEYS
                                      if key not in ("rid", "leaving")}, "transport": "zmq"})
    except InvalidCommand as exc:
        raise RequestError("invalid_field", exc.message, exc.field) from None
    check_worker_id(info.worker_id, worker_name)
    return workers.Heartbeat(info=info, leaving=leaving).to_plain()


def lease_ms(body: dict[str, Any]) -> int | None:
    """The optional ``lease_ms`` of a lease or extend request."""
    return v.opt_field_int(body, "lease_ms", fields.LEASE_MS)
