"""Who may call which route of the HTTP API: bearer tokens with roles, and protected mode.

``ROUTE_ROLES`` is the one table of the role each route needs (docs/security.md, "Roles");
``AuthMiddleware`` enforces it. The HTTP port is in one of three modes, decided per request
from the node's configuration and its tokens file (``dqueue.tokens``):

- ``authenticated``: the secure folder has a tokens file. Every route but the open ones
  (``OPEN_HEALTH_ROUTES`` while ``api.open_health`` is true) needs ``Authorization: Bearer``
  with a token holding the route's role: ``401 unauthorized`` without a token or with one the
  file does not hold, ``403 forbidden`` naming the role when the token lacks it. This holds
  for loopback clients too.
- ``protected`` (no tokens file, no ``--insecure``): only loopback clients are served, with
  every role; any other address gets ``403 protected_mode`` saying how to configure tokens.
- ``open`` (no tokens file, ``--insecure``): every client is served with every role.

The caller's roles are left in ``req.context.roles``: a task's lease token and lease holder are
shown only to callers holding ``consume`` (``may_see_leases``).
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Mapping
from enum import StrEnum
from typing import Any

import falcon

from dqueue.api.errors import ApiError
from dqueue.config import NodeConfig
from dqueue.logs import log_event
from dqueue.protocol.zap import is_loopback
from dqueue.tokens import (
    MAX_TOKEN_CHARS,
    ROLES,
    TokenEntry,
    TokenFile,
    match_token,
    tokens_path,
)

logger = logging.getLogger(__name__)

ALL_ROLES = frozenset(ROLES)
# (method, route template) -> the role it needs. One place: a route missing here needs admin
# (tests/unit/api/test_auth.py checks that every responder of the app is listed).
ROUTE_ROLES: Mapping[tuple[str, str], str] = {
    ("POST", "/tasks"): "produce",
    ("POST", "/tasks/batch"): "produce",
    ("POST", "/tasks/lease"): "consume",
    ("POST", "/tasks/{id}/ack"): "consume",
    ("POST", "/tasks/{id}/nack"): "consume",
    ("POST", "/tasks/{id}/extend"): "consume",
    ("POST", "/tasks/{id}/release"): "consume",
    ("GET", "/tasks"): "read",
    ("GET", "/tasks/{id}"): "read",
    ("GET", "/stats"): "read",
    ("GET", "/stats/history"): "read",
    ("GET", "/cluster"): "read",
    ("GET", "/health"): "read",
    ("GET", "/ready"): "read",
    ("GET", "/metrics"): "read",
    ("GET", "/openapi.json"): "read",
    ("POST", "/tasks/{id}/cancel"): "admin",
    ("POST", "/dlq/redrive"): "admin",
    ("DELETE", "/dlq"): "admin",
    ("GET", "/queues"): "read",
    ("GET", "/queues/{name}"): "read",
    ("PUT", "/queues/{name}"): "admin",
    ("PATCH", "/queues/{name}"): "admin",
    ("DELETE", "/queues/{name}"): "admin",
    ("POST", "/queues/{name}/purge"): "admin",
    ("POST", "/queues/{name}/move"): "admin",
    ("GET", "/schedules"): "read",
    ("GET", "/schedules/{name}"): "read",
    ("PUT", "/schedules/{name}"): "admin",
    ("DELETE", "/schedules/{name}"): "admin",
    ("POST", "/schedules/{name}/pause"): "admin",
    ("POST", "/schedules/{name}/resume"): "admin",
    ("GET", "/rate-limits"): "read",
    ("GET", "/rate-limits/{type}"): "read",
    ("PUT", "/rate-limits/{type}"): "admin",
    ("DELETE", "/rate-limits/{type}"): "admin",
    ("GET", "/workers"): "read",
    ("POST", "/workers/heartbeat"): "consume",
    ("POST", "/cluster/members"): "admin",
    ("DELETE", "/cluster/members/{member}"): "admin",
    ("POST", "/cluster/members/{member}/promote"): "admin",
}
# Routes answered without a token while ``api.open_health`` is true (probes and scrapers).
OPEN_HEALTH_ROUTES = frozenset({("GET", "/health"), ("GET", "/ready"), ("GET", "/metrics"),
                                ("GET", "/openapi.json")})
FALLBACK_ROLE = "admin"
AUTH_FIELD = "Authorization"
_CHALLENGE = 'Bearer realm="dqueue"'


class PortMode(StrEnum):
    """Who a port serves (logged at start as ``port_mode``; docs/security.md)."""

    AUTHENTICATED = "authenticated"
    PROTECTED = "protected"
    OPEN = "open"


def role_for(method: str, template: str) -> str:
    """The role a route needs (``admin`` for a route the table does not list)."""
    return ROUTE_ROLES.get((method, template), FALLBACK_ROLE)


def is_signed_path(path: str, account_id: str) -> bool:
    """Whether ``path`` is one of the SQS API's (``/`` or ``/{account_id}/{queue}``): its sink
    authenticates by SigV4 (``dqueue.api.sqs_service``), not by bearer tokens."""
    if path == "/":
        return True
    prefix = f"/{account_id}/"
    return path.startswith(prefix) and "/" not in path[len(prefix):]


@functools.lru_cache(maxsize=1024)
def is_loopback_addr(addr: str | None) -> bool:
    """Whether a client address (as waitress reports it) is a loopback address."""
    return bool(addr) and is_loopback(addr)  # the ZAP handler's rule, one for every port


def may_see_leases(req: falcon.Request) -> bool:
    """Whether the caller may see a task's lease token and lease holder (role ``consume``)."""
    roles = getattr(req.context, "roles", None)
    return roles is not None and "consume" in roles


def load_token_file(config: NodeConfig) -> TokenFile | None:
    """The node's tokens file (None without a secure folder).

    Raises:
        TokenFileError: the file exists and is malformed (the API process refuses to start).
    """
    if not config.secure_dir:
        return None
    return TokenFile(tokens_path(config.secure_dir), on_reload=_log_reload)


def _log_reload(entries: tuple[TokenEntry, ...] | None, error: str | None) -> None:
    if error is not None:
        log_event(logger, logging.ERROR, "tokens_reload_failed", error=error,
                  kept=len(entries or ()))
    else:
        log_event(logger, logging.INFO, "tokens_reloaded", tokens=len(entries or ()),
                  present=entries is not None)


def http_mode(config: NodeConfig, token_file: TokenFile | None) -> PortMode:
    """The mode of the HTTP port now."""
    if token_file is not None and token_file.entries() is not None:
        return PortMode.AUTHENTICATED
    return PortMode.OPEN if config.insecure else PortMode.PROTECTED


def protected_mode_error(port: str = "HTTP") -> ApiError:
    """The 403 a non-loopback client gets in protected mode."""
    return ApiError(
        falcon.HTTP_403, "protected_mode",
        f"this node is in protected mode: no credentials are configured for its {port} port, "
        "so it serves loopback clients only. Create a token with `dqueue-cli tokens add NAME "
        "--roles produce,consume,read --secure-dir DIR`, start the node with --secure-dir DIR "
        "and send `Authorization: Bearer <token>`; or start the node with --insecure to serve "
        "every address without credentials (docs/security.md)",
        field=AUTH_FIELD)


def unauthorized(message: str, invalid_token: bool = False) -> ApiError:
    """A 401 with its ``WWW-Authenticate`` challenge (RFC 6750)."""
    challenge = _CHALLENGE + (', error="invalid_token"' if invalid_token else "")
    return ApiError(falcon.HTTP_401, "unauthorized", message, field=AUTH_FIELD,
                    headers={"WWW-Authenticate": challenge})


def forbidden(entry: TokenEntry, role: str, method: str, template: str) -> ApiError:
    """A 403 naming the role the token lacks."""
    return ApiError(
        falcon.HTTP_403, "forbidden",
        f"the token {entry.name!r} lacks the role {role} ({method} {template} needs {role}; "
        f"it has {','.join(sorted(entry.roles, key=ROLES.index))})",
        field=AUTH_FIELD, extra={"role": role})


def bearer_token(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, or None when absent."""
    if not header:
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    token = token.strip()
    return token or None


class AuthMiddleware:
    """Falcon middleware: protected mode before routing, the route's role after it.

    Args:
        config: ``insecure`` and ``open_health`` are used.
        token_file: the node's tokens (None without a secure folder).
    """

    def __init__(self, config: NodeConfig, token_file: TokenFile | None) -> None:
        self._config = config
        self._token_file = token_file
        self._open = OPEN_HEALTH_ROUTES if config.open_health else frozenset()
        self._mode_lock = threading.Lock()
        self.mode = http_mode(config, token_file)

    def current_mode(self) -> PortMode:
        """The mode now; a change (a tokens file created or removed) is logged once."""
        mode = http_mode(self._config, self._token_file)
        if mode is not self.mode:
            with self._mode_lock:
                if mode is not self.mode:
                    self.mode = mode
                    log_port_mode("http", self._config.http_addr, mode)
        return mode

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Refuse non-loopback clients in protected mode; serve open and protected callers
        with every role."""
        mode = self.current_mode()
        if is_signed_path(req.path, self._config.sqs_account_id):
            req.context.roles = frozenset()  # the SQS resource authenticates by SigV4
            return
        if mode is PortMode.AUTHENTICATED:
            req.context.roles = frozenset()
            return
        if mode is PortMode.PROTECTED and not is_loopback_addr(req.remote_addr):
            raise protected_mode_error()
        req.context.roles = ALL_ROLES

    def process_resource(self, req: falcon.Request, resp: falcon.Response, resource: Any,
                         params: dict[str, Any]) -> None:
        """In authenticated mode, check the bearer token against the route's role."""
        if self._token_file is None or req.context.roles:
            return  # open or protected mode (process_request gave every role)
        template = req.uri_template or ""
        method = req.method
        if (method, template) in self._open:
            return
        if resource is None or not hasattr(resource, "on_" + method.lower()):
            return  # Falcon answers 404 or 405; those reveal nothing
        header = req.get_header(AUTH_FIELD)
        token = bearer_token(header)
        if token is None:
            raise unauthorized(
                "this node requires a bearer token: send `Authorization: Bearer <token>` "
                "(create one with `dqueue-cli tokens add NAME --roles ...`)"
                if not header else "the Authorization header is not `Bearer <token>`")
        entries = self._token_file.entries() or ()
        entry = match_token(entries, token) if len(token) <= MAX_TOKEN_CHARS else None
        if entry is None:
            raise unauthorized("the bearer token is not one this node knows (mistyped, or "
                               "removed with `dqueue-cli tokens rm`)", invalid_token=True)
        role = role_for(method, template)
        if role not in entry.roles:
            raise forbidden(entry, role, method, template)
        req.context.roles = entry.roles
        req.context.token_name = entry.name


def log_port_mode(port: str, addr: str, mode: PortMode) -> None:
    """One ``port_mode`` line: which port, its address, and who it serves."""
    log_event(logger, logging.INFO, "port_mode", port=port, addr=addr, mode=mode.value)

