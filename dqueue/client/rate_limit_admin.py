"""The SDK's task type rate limits, mixed into ``Client`` (docs/queues.md, "Rate limits").

A limit is ``"N/s"``, ``"N/m"`` or ``"N/h"``, counted over the whole cluster at lease time. A
queue's own limit is its ``rate_limit`` setting (``create_queue``/``update_queue``).
"""

from __future__ import annotations

from typing import Any

from dqueue.client.admin_requests import Requester, item_path, listing
from dqueue.client.errors import ServerError
from dqueue.protocol.errors import ErrorCode


def _as_limit(obj: Any) -> dict[str, str]:
    if not isinstance(obj, dict) or not isinstance(obj.get("type"), str) \
            or not isinstance(obj.get("rate_limit"), str):
        raise ServerError("unreadable rate limit", code=ErrorCode.BAD_REPLY)
    return {"type": obj["type"], "rate_limit": obj["rate_limit"]}


class RateLimitAdmin:
    """Set, list, show and remove the rate limits of task types (admin role)."""

    def set_rate_limit(self: Requester, task_type: str, rate_limit: str) -> dict[str, str]:
        """Limit leases of ``task_type`` to ``rate_limit`` (``"100/m"``) over every queue and
        worker (``PUT /rate-limits/{type}``). Raises InvalidRequest naming the bad field."""
        return _as_limit(self._request("PUT", item_path("rate-limits", task_type),
                                       {"rate_limit": rate_limit})[1])

    def list_rate_limits(self: Requester) -> list[dict[str, str]]:
        """Every type's limit, by type."""
        obj = self._request("GET", "/rate-limits")[1]
        return [_as_limit(item) for item in listing(obj, "rate_limits", "rate limit")]

    def get_rate_limit(self: Requester, task_type: str) -> dict[str, str]:
        """One type's limit. Raises NotFound when it has none."""
        return _as_limit(self._request("GET", item_path("rate-limits", task_type))[1])

    def delete_rate_limit(self: Requester, task_type: str) -> None:
        """Remove a type's limit. Raises NotFound when it has none."""
        self._request("DELETE", item_path("rate-limits", task_type))
