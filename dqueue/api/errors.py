"""Errors of the HTTP API and their JSON rendering.

Every error answer is ``{"error": {"code", "field", "message", ...}}`` (docs/http-api.md).
``ApiError`` is raised by resources and validation; queue outcomes and Raft client exceptions are
mapped to it here, so that one error handler renders everything.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

import falcon

from dqueue.logs import log_event
from dqueue.protocol.errors import ErrorCode
from dqueue.protocol.ipc_client import BadRequest, NoLeader, RequestTimeout

logger = logging.getLogger(__name__)

# Seconds a client should wait before retrying a 503.
RETRY_AFTER_S = 1

# Queue outcome code -> HTTP status.
_OUTCOME_STATUS = {
    ErrorCode.NOT_FOUND: falcon.HTTP_404,
    ErrorCode.LEASE_CONFLICT: falcon.HTTP_409,
    ErrorCode.INVALID_STATE: falcon.HTTP_409,
    ErrorCode.INVALID: falcon.HTTP_400,
    ErrorCode.IDEMPOTENCY_KEY_REUSED: falcon.HTTP_409,
    ErrorCode.QUEUE_FULL: falcon.HTTP_429,
    ErrorCode.QUEUE_NOT_FOUND: falcon.HTTP_404,
    ErrorCode.QUEUE_EXISTS: falcon.HTTP_409,
    ErrorCode.MEMBER_EXISTS: falcon.HTTP_409,
    ErrorCode.MEMBERSHIP_CHANGE_PENDING: falcon.HTTP_409,
    ErrorCode.UNKNOWN_FIELD: falcon.HTTP_400,
    ErrorCode.MISSING_FIELD: falcon.HTTP_400,
    ErrorCode.INVALID_FIELD: falcon.HTTP_400,
}
# Seconds a client should wait before retrying an enqueue refused by the queue's max_depth.
QUEUE_FULL_RETRY_AFTER_S = 1


class ApiError(Exception):
    """An error answer.

    Args:
        status: the HTTP status line, e.g. ``falcon.HTTP_400``.
        code: the stable machine-readable code.
        message: a human message naming the field when there is one.
        field: the request field at fault, or None.
        extra: more members of the error object (e.g. the leader hint).
        headers: more response headers (e.g. ``Retry-After``).
    """

    def __init__(
        self,
        status: str,
        code: str,
        message: str,
        field: str | None = None,
        extra: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.extra = extra or {}
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        """The JSON body of the answer."""
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.field is not None:
            error["field"] = self.field
        error.update(self.extra)
        return {"error": error}


def invalid(field: str, message: str, code: str = ErrorCode.INVALID_FIELD) -> ApiError:
    """A 400 naming ``field``."""
    return ApiError(falcon.HTTP_400, code, message, field=field)


_FIELD_PREFIX = re.compile(r"([A-Za-z_][A-Za-z0-9_.\[\]]*): ")


def value_of(outcome: dict[str, Any]) -> Any:
    """Return the value of a successful queue outcome, or raise the ApiError it maps to."""
    if outcome.get("ok"):
        return outcome.get("value")
    code = str(outcome.get("code") or ErrorCode.INVALID)
    status = _OUTCOME_STATUS.get(code, falcon.HTTP_500)
    message = str(outcome.get("message") or code)
    field = outcome.get("field")
    if field is None:
        # Queue outcomes name their field first: "tasks[0].queue: no queue x".
        named = _FIELD_PREFIX.match(message)
        field = named.group(1) if named is not None else None
    if code == ErrorCode.INVALID:
        raise ApiError(status, ErrorCode.INVALID_FIELD, message, field=field or "body")
    if code == ErrorCode.QUEUE_FULL:
        raise ApiError(status, code, message, extra={"max_depth": outcome.get("max_depth")},
                       headers={"Retry-After": str(QUEUE_FULL_RETRY_AFTER_S)})
    if code == ErrorCode.IDEMPOTENCY_KEY_REUSED:
        raise ApiError(status, code, message, field=field,
                       extra={"task_id": outcome.get("task_id")})
    raise ApiError(status, code, message, field=field)


_NAMED_FIELD = re.compile(r"([A-Za-z_][A-Za-z0-9_.\[\]]{0,63}): ")


def from_raft_error(exc: Exception) -> ApiError:
    """Map a ``RaftClient`` exception to a 503 (or 400 for BadRequest) with a leader hint."""
    headers = {"Retry-After": str(RETRY_AFTER_S)}
    if isinstance(exc, NoLeader):
        hint = {"leader_id": exc.leader_id, "leader_http": exc.leader_http}
        return ApiError(falcon.HTTP_503, ErrorCode.NO_LEADER, str(exc), extra=hint, headers=headers)
    if isinstance(exc, RequestTimeout):
        hint = {"leader_id": exc.leader_id, "leader_http": exc.leader_http}
        return ApiError(falcon.HTTP_503, ErrorCode.TIMEOUT, str(exc), extra=hint, headers=headers)
    if isinstance(exc, BadRequest):
        # The Raft process words its refusals "field: what is wrong" (queries.BadQuery).
        named = _NAMED_FIELD.match(str(exc))
        field = named.group(1) if named is not None else "body"
        return ApiError(falcon.HTTP_400, ErrorCode.INVALID_FIELD, str(exc), field=field)
    # RaftUnavailable, and any other failure of the link to the Raft process.
    return ApiError(falcon.HTTP_503, ErrorCode.UNAVAILABLE, str(exc), headers=headers)


def error_json(error: ApiError) -> bytes:
    """The JSON body of an error answer."""
    return json.dumps(error.body()).encode()


def write_error(resp: falcon.Response, error: ApiError) -> None:
    """Render ``error`` into ``resp``."""
    resp.status = error.status
    resp.content_type = falcon.MEDIA_JSON
    resp.data = error_json(error)
    for name, value in error.headers.items():
        resp.set_header(name, value)


def handle_api_error(
    req: falcon.Request, resp: falcon.Response, ex: ApiError, params: dict[str, Any]
) -> None:
    """Falcon error handler for ApiError."""
    write_error(resp, ex)


def handle_http_error(
    req: falcon.Request, resp: falcon.Response, ex: falcon.HTTPError, params: dict[str, Any]
) -> None:
    """Falcon's own errors (unknown route, wrong method, ...) in our JSON shape."""
    codes = {404: ErrorCode.NOT_FOUND, 405: ErrorCode.METHOD_NOT_ALLOWED,
             413: ErrorCode.BODY_TOO_LARGE}
    code = codes.get(ex.status_code, ErrorCode.HTTP_ERROR)
    message = ex.description or ex.title or code
    error = ApiError(ex.status, code, str(message), headers=dict(ex.headers or {}))
    write_error(resp, error)


def handle_unexpected(
    req: falcon.Request, resp: falcon.Response, ex: Exception, params: dict[str, Any]
) -> None:
    """Last resort: log the bug, answer 500 without details."""
    if isinstance(ex, falcon.HTTPError):
        handle_http_error(req, resp, ex, params)
        return
    log_event(
        logger, logging.ERROR, "request_failed",
        method=req.method, route=req.uri_template, error=repr(ex),
    )
    write_error(resp, ApiError(falcon.HTTP_500, ErrorCode.INTERNAL, "internal error"))
