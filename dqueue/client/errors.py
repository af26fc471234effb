"""Typed exceptions raised by the SDK, shared by the HTTP and the ZeroMQ clients.

Each carries the server's machine-readable ``code`` and human ``message`` (and the ``field`` a
``400`` names), so that callers can branch on the type and show the message as the server wrote it.
"""

from __future__ import annotations

from typing import Any

from dqueue.protocol.errors import ErrorCode


class DQueueError(Exception):
    """Base of every error the SDK raises.

    Attributes:
        code: The server's stable error code (``not_found``, ``lease_conflict``...), or a
            client-side code (``unavailable``) when no server answered.
        message: The server's message, verbatim when there is one.
        status: The HTTP status, or None over ZeroMQ or when no server answered.
        field: The request field a ``400`` names, when it names one.
    """

    def __init__(
        self,
        message: str,
        *,
        code: str = ErrorCode.ERROR,
        status: int | None = None,
        field: str | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.field = field

    def __str__(self) -> str:
        prefix = f"{self.code}"
        if self.field:
            prefix += f" ({self.field})"
        return f"{prefix}: {self.message}"


class InvalidRequest(DQueueError):
    """The server refused the request as malformed (HTTP 400, 413, 415); nothing changed."""


class TaskNotFound(DQueueError):
    """No task has that id (HTTP 404)."""


class QueueNotFound(DQueueError):
    """The named queue does not exist (create it with ``Client.create_queue``)."""


class QueueExists(DQueueError):
    """A queue of that name exists with other settings (change them with ``update_queue``)."""


class LeaseConflict(DQueueError):
    """The caller does not hold the task's lease: it expired or passed to another worker (409)."""


class InvalidState(DQueueError):
    """The task is not in a state that allows the operation, e.g. cancel of a leased task (409)."""


class QueueFull(DQueueError):
    """The queue holds ``max_depth`` tasks already (HTTP 429 ``queue_full``); nothing was
    enqueued. Retry later (the answer's ``Retry-After``)."""


class IdempotencyKeyReused(DQueueError):
    """The idempotency key belongs to another task with a different body (HTTP 409
    ``idempotency_key_reused``); nothing was enqueued."""


class WaitTimeout(DQueueError, TimeoutError):
    """``Client.wait``: the task did not finish within the timeout.

    Attributes:
        task_id: The task waited for.
        task: The task as last seen (pending or leased), or None.
    """

    def __init__(self, task_id: str, timeout_s: float, task: Any = None) -> None:
        status = getattr(task, "status", None)
        state = f" (still {status.value})" if status is not None else ""
        super().__init__(f"task {task_id} did not finish within {timeout_s:g} s{state}",
                         code=ErrorCode.WAIT_TIMEOUT)
        self.task_id = task_id
        self.task = task


class NoLeader(DQueueError):
    """No node knew a leader before the client's deadline (HTTP 503 ``no_leader``/``timeout``).

    Attributes:
        leader_id: The last leader id a node hinted, if any.
        leader_http: The last leader HTTP address a node hinted, if any.
    """

    def __init__(
        self,
        message: str,
        *,
        code: str = ErrorCode.NO_LEADER,
        status: int | None = 503,
        leader_id: str | None = None,
        leader_http: str | None = None,
    ) -> None:
        super().__init__(message, code=code, status=status)
        self.leader_id = leader_id
        self.leader_http = leader_http


class Unavailable(DQueueError):
    """No node could be reached (connection refused, reset or timed out) before the deadline."""


class Unauthorized(DQueueError):
    """The server wants a bearer token, or does not know the one sent (HTTP 401), or the
    worker gateway refused this worker's CURVE key (the handshake failed)."""


class Forbidden(DQueueError):
    """The token lacks the role the operation needs (HTTP 403 ``forbidden``), or the node is in
    protected mode and serves loopback clients only (HTTP 403 ``protected_mode``).

    Attributes:
        role: The role the operation needs, when the server named it.
    """

    def __init__(self, message: str, *, code: str = ErrorCode.FORBIDDEN, status: int | None = 403,
                 field: str | None = None, role: str | None = None) -> None:
        super().__init__(message, code=code, status=status, field=field)
        self.role = role


def auth_error(code: str, server_message: str, *, status: int, had_token: bool,
               role: str | None = None) -> DQueueError:
    """The typed error of a 401 or 403, worded to say what to do about it.

    Args:
        code: the server's error code (``unauthorized``, ``forbidden``, ``protected_mode``).
        server_message: the server's message, kept after the advice.
        status: the HTTP status.
        had_token: whether the request carried a token.
        role: the role a ``forbidden`` answer names.
    """
    if status == 401:
        advice = ("the server refused the token (unknown or removed): check --token or "
                  "DQUEUE_TOKEN" if had_token else
                  "the server requires a token: pass --token or set DQUEUE_TOKEN")
        return Unauthorized(f"{advice} ({server_message})", code=code or ErrorCode.UNAUTHORIZED,
                            status=status, field="Authorization")
    if code == ErrorCode.FORBIDDEN and role:
        return Forbidden(f"the token lacks the role {role} ({server_message})", code=code,
                         status=status, field="Authorization", role=role)
    return Forbidden(server_message, code=code or ErrorCode.FORBIDDEN, status=status,
                     field="Authorization")


class ServerError(DQueueError):
    """Any other error answer (an unexpected 5xx, or a reply the client cannot read)."""


# Worth retrying on another node or a little later: NoLeader (the caller adds the leader hint).
_NO_LEADER_CODES = frozenset({ErrorCode.NO_LEADER, ErrorCode.TIMEOUT, ErrorCode.SHUTTING_DOWN})
# The typed error of each code (unknown ones: InvalidRequest for a 4xx, else ServerError).
_BY_CODE: dict[str, type[DQueueError]] = {
    ErrorCode.INVALID_JSON: InvalidRequest,
    ErrorCode.INVALID_FIELD: InvalidRequest,
    ErrorCode.UNKNOWN_FIELD: InvalidRequest,
    ErrorCode.MISSING_FIELD: InvalidRequest,
    ErrorCode.INVALID: InvalidRequest,
    ErrorCode.BAD_REQUEST: InvalidRequest,
    ErrorCode.BODY_TOO_LARGE: InvalidRequest,
    ErrorCode.UNSUPPORTED_MEDIA_TYPE: InvalidRequest,
    ErrorCode.NOT_FOUND: TaskNotFound,
    ErrorCode.LEASE_CONFLICT: LeaseConflict,
    ErrorCode.QUEUE_NOT_FOUND: QueueNotFound,
    ErrorCode.QUEUE_EXISTS: QueueExists,
    ErrorCode.INVALID_STATE: InvalidState,
    ErrorCode.QUEUE_FULL: QueueFull,
    ErrorCode.IDEMPOTENCY_KEY_REUSED: IdempotencyKeyReused,
    ErrorCode.UNAVAILABLE: Unavailable,
    ErrorCode.UNAUTHORIZED: Unauthorized,
    ErrorCode.FORBIDDEN: Forbidden,
    ErrorCode.PROTECTED_MODE: Forbidden,
}


def error_from_code(
    code: str, message: str, *, status: int | None = None, field: str | None = None
) -> DQueueError:
    """Return the typed exception for a server error ``code`` (ServerError when unknown).

    ``no_leader`` and ``timeout`` map to NoLeader; the caller adds the leader hint.
    """
    if code in _NO_LEADER_CODES:
        return NoLeader(message, code=code, status=status)
    cls = _BY_CODE.get(code)
    if cls is None:
        cls = InvalidRequest if status is not None and 400 <= status < 500 else ServerError
    return cls(message, code=code, status=status, field=field)
