"""Where the SDK, ``dqueue-cli`` and ``dqueue-worker`` find the nodes and the token when they
are not given: ``DQUEUE_SERVER`` (one node URL, or several separated by commas) and
``DQUEUE_TOKEN`` (a bearer token, docs/security.md)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

SERVER_ENV = "DQUEUE_SERVER"
TOKEN_ENV = "DQUEUE_TOKEN"
DEFAULT_SERVER = "http://localhost:8080"


def split_servers(servers: str | Sequence[str]) -> list[str]:
    """The node URLs of ``servers``: one string or several, each of them comma-separated."""
    items = [servers] if isinstance(servers, str) else list(servers)
    return [part.strip() for item in items for part in item.split(",") if part.strip()]


def resolve_servers(servers: str | Sequence[str] | None = None,
                    environ: Mapping[str, str] | None = None) -> list[str]:
    """The node URLs to use: ``servers`` when given, else ``$DQUEUE_SERVER``, else
    ``DEFAULT_SERVER``; split at commas.

    Raises:
        ValueError: no URL at all (an empty list, or only commas).
    """
    env = os.environ if environ is None else environ
    urls = split_servers(env.get(SERVER_ENV) or DEFAULT_SERVER if servers is None else servers)
    if not urls:
        raise ValueError("at least one server URL is needed")
    return urls


def resolve_token(token: str | None = None,
                  environ: Mapping[str, str] | None = None) -> str | None:
    """The bearer token to send: ``token`` when given (``""``: none), else ``$DQUEUE_TOKEN``
    (unset or empty: none)."""
    if token is not None:
        return token or None
    return (os.environ if environ is None else environ).get(TOKEN_ENV) or None
