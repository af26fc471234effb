"""What the SDK's admin mixins share: the request seam of ``Client`` and reading named objects.

The mixins (``queue_admin``, ``schedule_admin``) are mixed into ``Client``; they reach the
server only through ``Client._request`` and check each answer's shape here before use.
"""

from __future__ import annotations

from typing import Any, Protocol
from urllib.parse import quote

from dqueue.client.errors import ServerError
from dqueue.protocol.errors import ErrorCode


class Requester(Protocol):
    """The one method of ``Client`` the admin mixins call."""

    def _request(self, method: str, path: str, body: Any = None, *,
                 wait_s: float = 0.0) -> tuple[int, Any]: ...


def item_path(collection: str, name: str, suffix: str = "") -> str:
    """The path of one named object: ``/{collection}/{name}{suffix}``, the name quoted."""
    return f"/{collection}/{quote(name, safe='')}{suffix}"


def named_object(obj: Any, what: str) -> dict[str, Any]:
    """``obj`` if it is an object with a string ``name``, else ``ServerError(BAD_REPLY)``."""
    if not isinstance(obj, dict) or not isinstance(obj.get("name"), str):
        raise ServerError(f"unreadable {what}", code=ErrorCode.BAD_REPLY)
    return obj


def listing(obj: Any, key: str, what: str) -> list[Any]:
    """The list under ``key`` of a listing answer, else ``ServerError(BAD_REPLY)``."""
    items = obj.get(key) if isinstance(obj, dict) else None
    if not isinstance(items, list):
        raise ServerError(f"unreadable {what} listing", code=ErrorCode.BAD_REPLY)
    return items
