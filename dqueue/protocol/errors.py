"""Every error code that crosses a process boundary, in one enum.

The codes travel in IPC ``err`` replies, peer ``fwd_res`` answers, worker ``err`` replies, queue
outcomes and HTTP error bodies (docs/http-api.md, docs/worker-protocol.md). Members are ``str``,
so they pack and render as their value: the values are the wire format and never change (clients
of earlier versions branch on them). A code received from the network is kept as the string it
is; ``ErrorCode`` is how this code base writes one.

The queue state machine (``dqueue/queue``) imports nothing but the standard library, so it writes
its outcome codes itself; ``tests/unit/protocol/test_errors.py`` checks that each of them is a
member here.
"""

from __future__ import annotations

from enum import StrEnum


class ErrorCode(StrEnum):
    """A stable, machine-readable error code."""

    # Where the request could not be served (IPC, peer, HTTP 503, worker err).
    NO_LEADER = "no_leader"  # no leader known within the deadline
    NOT_LEADER = "not_leader"  # peer only: the node a command was forwarded to does not lead
    TIMEOUT = "timeout"  # accepted, not completed within the deadline (it may still commit)
    SHUTTING_DOWN = "shutting_down"  # the node is stopping
    UNAVAILABLE = "unavailable"  # the Raft process (or the server) did not answer
    BAD_REQUEST = "bad_request"  # IPC: a malformed request; HTTP: one waitress refused
    DUPLICATE_REQUEST = "duplicate_request"  # a client session's repeat, outcome no longer kept
    TOO_MANY_REQUESTS = "too_many_requests"  # worker gateway: too many waiting leases
    # Queue outcomes (dqueue/queue): what the state machine refused.
    NOT_FOUND = "not_found"
    LEASE_CONFLICT = "lease_conflict"
    INVALID_STATE = "invalid_state"
    INVALID = "invalid"  # a command the queue refuses (the HTTP API answers invalid_field)
    QUEUE_FULL = "queue_full"
    QUEUE_NOT_FOUND = "queue_not_found"
    QUEUE_EXISTS = "queue_exists"
    IDEMPOTENCY_KEY_REUSED = "idempotency_key_reused"
    # Membership changes (``/cluster/members``): refused before anything is proposed.
    MEMBER_EXISTS = "member_exists"  # adding a member id the configuration holds already
    MEMBERSHIP_CHANGE_PENDING = "membership_change_pending"  # one change at a time (4.1)
    # Validation of a request body (HTTP and worker gateway).
    INVALID_JSON = "invalid_json"
    INVALID_FIELD = "invalid_field"
    UNKNOWN_FIELD = "unknown_field"
    MISSING_FIELD = "missing_field"
    UNKNOWN_KIND = "unknown_kind"  # worker gateway: a message kind it does not serve
    BODY_TOO_LARGE = "body_too_large"
    HEADERS_TOO_LARGE = "headers_too_large"
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    NOT_IMPLEMENTED = "not_implemented"
    HTTP_ERROR = "http_error"  # any other HTTP status of the framework or server
    INTERNAL = "internal"  # a bug: answered 500 without details
    # Authentication and authorization (HTTP).
    UNAUTHORIZED = "unauthorized"
    FORBIDDEN = "forbidden"
    PROTECTED_MODE = "protected_mode"
    # Client side only: the SDK's codes for what no server said.
    ERROR = "error"  # an error answer without a code
    BAD_REPLY = "bad_reply"  # a reply the client cannot read
    HANDSHAKE_REFUSED = "handshake_refused"  # the worker gateway refused this worker's key
    WAIT_TIMEOUT = "wait_timeout"  # Client.wait: the task did not finish within the timeout
