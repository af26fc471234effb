"""The SQS-compatible API on the node's HTTP port: parse, authenticate, dispatch, render.

``SqsService`` is the Falcon sink of ``POST /`` (the JSON and the Query protocol) and of
``GET``/``POST /{account_id}/{queue}`` (the Query protocol posting to a queue URL). Each request
is parsed by ``dqueue.sqs.requests``, authenticated by SigV4 against the access keys of the
secure folder (``dqueue.api.sqs_keys``; protected mode without keys), checked against the
action's role, and served by one handler of ``sqs_queues`` or ``sqs_messages``, which run one
dqueue command or read through ``ApiDeps`` (writes answered after a majority commit, reads
linearizable, followers forward). Every failure is answered as SQS answers it, in the
request's protocol (docs/sqs.md).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import falcon

from dqueue.api.auth import PortMode, is_loopback_addr
from dqueue.api.deps import ApiDeps
from dqueue.api.errors import ApiError
from dqueue.api.sqs_keys import AccessKey
from dqueue.logs import log_event
from dqueue.protocol.errors import ErrorCode
from dqueue.sqs import sigv4
from dqueue.sqs.errors import Rendered, SqsCode, SqsError
from dqueue.sqs.names import Account
from dqueue.sqs.requests import MAX_REQUEST_BYTES, SqsRequest, parse_request
from dqueue.sqs.responses import protocol_of, render_error, render_result

logger = logging.getLogger(__name__)

# The role each action needs (docs/security.md, "Roles"; the dqueue API's own table is
# ``dqueue.api.auth.ROUTE_ROLES``). An action missing here needs admin.
ACTION_ROLES: dict[str, str] = {
    "SendMessage": "produce", "SendMessageBatch": "produce",
    "ReceiveMessage": "consume", "DeleteMessage": "consume", "DeleteMessageBatch": "consume",
    "ChangeMessageVisibility": "consume", "ChangeMessageVisibilityBatch": "consume",
    "GetQueueUrl": "read", "ListQueues": "read", "GetQueueAttributes": "read",
    "ListQueueTags": "read", "ListDeadLetterSourceQueues": "read",
    "ListMessageMoveTasks": "read",
}
ALL_ROLES = frozenset({"produce", "consume", "read", "admin"})
MAX_MOVE_TASKS_KEPT = 100
# Queue API error code -> SQS error code (anything else is InternalFailure).
_API_CODES: dict[str, SqsCode] = {
    ErrorCode.QUEUE_NOT_FOUND: SqsCode.QUEUE_DOES_NOT_EXIST,
    ErrorCode.QUEUE_EXISTS: SqsCode.QUEUE_NAME_EXISTS,
    ErrorCode.QUEUE_FULL: SqsCode.OVER_LIMIT,
    ErrorCode.INVALID_FIELD: SqsCode.INVALID_PARAMETER_VALUE,
    ErrorCode.INVALID: SqsCode.INVALID_PARAMETER_VALUE,
    ErrorCode.NO_LEADER: SqsCode.SERVICE_UNAVAILABLE,
    ErrorCode.TIMEOUT: SqsCode.SERVICE_UNAVAILABLE,
    ErrorCode.UNAVAILABLE: SqsCode.SERVICE_UNAVAILABLE,
    ErrorCode.SHUTTING_DOWN: SqsCode.SERVICE_UNAVAILABLE,
}


def sqs_error_of(error: ApiError) -> SqsError:
    """The SQS error a dqueue API error is answered with."""
    code = _API_CODES.get(str(error.code), SqsCode.INTERNAL_FAILURE)
    if code is SqsCode.QUEUE_DOES_NOT_EXIST:
        return SqsError(code, "The specified queue does not exist.")
    if code is SqsCode.QUEUE_NAME_EXISTS:
        return SqsError(code, "A queue already exists with the same name and a different "
                              "value for attribute(s)")
    return SqsError(code, error.message)


@dataclass
class SqsContext:
    """What the action handlers share: the deps, the account, the receipt key, move tasks.

    Attributes:
        deps: the API's dependencies (commands and reads).
        account_id: the account of queue URLs and ARNs.
        region: the region of ARNs and of signatures.
        receipt_key: the HMAC key of receipt handles (``sqs_keys.receipt_key``).
        move_tasks: the last message move tasks this process ran (newest last).
        lock: guards ``move_tasks`` and ``settings_cache``.
        settings_cache: queue name -> (when read, its settings), for sends and receives.
    """

    deps: ApiDeps
    account_id: str
    region: str
    receipt_key: bytes
    move_tasks: deque[dict[str, Any]] = field(
        default_factory=lambda: deque(maxlen=MAX_MOVE_TASKS_KEPT))
    lock: threading.Lock = field(default_factory=threading.Lock)
    settings_cache: dict[str, tuple[float, dict[str, Any]]] = field(default_factory=dict)

    def account(self, endpoint: str) -> Account:
        """The account as seen by a request to ``endpoint`` (URLs carry the caller's host)."""
        return Account(endpoint, self.account_id, self.region)


Handler = Callable[[SqsContext, SqsRequest, Account], dict[str, Any]]


class SqsService:
    """The SQS sink (module docstring). Authenticates itself: ``dqueue.api.auth`` lets its
    paths through (``is_signed_path``).

    Args:
        ctx: the shared context of the handlers.
        handlers: action name -> handler.
        keys: the access keys, or None to follow the port's mode.
        port_mode: the HTTP port's mode now (``AuthMiddleware.current_mode``), for a node
            without keys.
        clock_ms: the time for signature checks (Unix ms).
    """

    def __init__(self, ctx: SqsContext, handlers: dict[str, Handler],
                 keys: dict[str, AccessKey] | None, port_mode: Callable[[], PortMode],
                 clock_ms: Callable[[], int] = lambda: int(time.time() * 1000)) -> None:
        self._ctx = ctx
        self._handlers = handlers
        self._keys = keys
        self._port_mode = port_mode
        self._clock_ms = clock_ms

    def __call__(self, req: falcon.Request, resp: falcon.Response, **_: str) -> None:
        """Serve one SQS request: POST (either protocol) or GET (the Query protocol)."""
        if req.method not in ("GET", "POST"):
            resp.set_header("Allow", "GET, POST")
            _send(resp, render_error(protocol_of(req.headers), SqsError(
                SqsCode.INVALID_ACTION, f"{req.method}: SQS requests are POST or GET"), ""))
            resp.status = falcon.HTTP_405
            return
        if req.method == "GET" and not req.query_string:
            # A bare GET (a browser, a probe) is no SQS request: 404, as for any unknown path.
            _send(resp, render_error(protocol_of(req.headers), SqsError(
                SqsCode.INVALID_ADDRESS, f"GET {req.path}: no SQS Action given"), ""))
            return
        self._serve(req, resp)

    def _serve(self, req: falcon.Request, resp: falcon.Response) -> None:
        request_id = str(uuid.uuid4())
        headers = {name.lower(): value for name, value in req.headers.items()}
        protocol = protocol_of(headers)
        try:
            body = self._body(req)
            request = parse_request(req.method, req.path, req.query_string, headers, body)
            protocol = request.protocol
            roles = self._authenticate(req, headers, body)
            role = ACTION_ROLES.get(request.action, "admin")
            if role not in roles and "admin" not in roles:
                raise SqsError(SqsCode.ACCESS_DENIED,
                               f"the access key lacks the role {role} that "
                               f"{request.action} needs")
            account = self._ctx.account(f"{req.scheme}://{req.netloc}")
            try:
                result = self._handlers[request.action](self._ctx, request, account)
            except ApiError as exc:
                raise sqs_error_of(exc) from None
            rendered = render_result(protocol, request.action, result, request_id)
        except SqsError as exc:
            rendered = render_error(protocol, exc, request_id)
        except Exception:  # a bug: answered as SQS does, logged here
            logger.exception("sqs request failed")
            rendered = render_error(protocol, SqsError(SqsCode.INTERNAL_FAILURE,
                                                       "internal failure"), request_id)
        _send(resp, rendered)

    def _body(self, req: falcon.Request) -> bytes:
        length = req.content_length or 0
        if length > MAX_REQUEST_BYTES:
            raise SqsError(SqsCode.INVALID_PARAMETER_VALUE,
                           f"the request is larger than {MAX_REQUEST_BYTES} bytes")
        return req.bounded_stream.read(length) if length else b""

    def _authenticate(self, req: falcon.Request, headers: dict[str, str],
                      body: bytes) -> frozenset[str]:
        """The caller's roles: SigV4 with keys; without, the port's mode decides."""
        if self._keys is None:
            mode = self._port_mode()
            if mode is PortMode.AUTHENTICATED:
                # Bearer tokens guard the dqueue API, loopback included: no way around them.
                raise SqsError(SqsCode.ACCESS_DENIED,
                               "this node requires credentials (bearer tokens are configured) "
                               "but has no SQS access keys: add sqs_keys.toml to the secure "
                               "folder (docs/sqs.md)")
            if mode is PortMode.OPEN or is_loopback_addr(req.remote_addr):
                return ALL_ROLES
            raise SqsError(SqsCode.ACCESS_DENIED,
                           "this node is in protected mode: no SQS access keys are configured "
                           "(sqs_keys.toml in the secure folder), so it serves loopback "
                           "clients only (docs/sqs.md)")
        keys = self._keys
        # The path as received (waitress's REQUEST_URI), which is what the client signed.
        raw_path = str(req.env.get("REQUEST_URI") or req.path).split("?", 1)[0]
        key_id = sigv4.verify(
            req.method, raw_path, req.query_string, headers, body,
            secret_for=lambda key: keys[key].secret if key in keys else None,
            now_ms=self._clock_ms(), region=self._ctx.region)
        return keys[key_id].roles


def _send(resp: falcon.Response, rendered: Rendered) -> None:
    resp.status = falcon.code_to_http_status(rendered.status)
    for name, value in rendered.headers.items():
        if name.lower() == "content-type":
            resp.content_type = value
        else:
            resp.set_header(name, value)
    resp.data = rendered.body


def log_sqs_mode(keys: dict[str, AccessKey] | None) -> None:
    """One line at start: how the SQS API authenticates."""
    log_event(logger, logging.INFO, "sqs_api", access_keys=len(keys or {}),
              signatures="required" if keys is not None else "not checked")
