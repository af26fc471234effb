"""The SDK's periodic schedule operations, mixed into ``Client`` (docs/schedules.md).

A schedule comes back as the API renders it: a dict with ``name``, ``cron`` and ``timezone``
or ``every_seconds``, ``task``, ``paused``, ``catch_up`` and the ``last_slot`` and
``next_slot`` times (docs/http-api.md, "Schedules").
"""

from __future__ import annotations

from typing import Any

from dqueue.client.admin_requests import Requester, item_path, listing, named_object


def _path(name: str, suffix: str = "") -> str:
    return item_path("schedules", name, suffix)


def _as_schedule(obj: Any) -> dict[str, Any]:
    return named_object(obj, "schedule")


class ScheduleAdmin:
    """Put, list, show, pause, resume and delete periodic schedules."""

    def put_schedule(self: Requester, name: str, task_type: str, *,
                     cron: str | None = None, timezone: str | None = None,
                     every_seconds: int | None = None, queue: str | None = None,
                     payload: Any = None, priority: int | None = None,
                     max_retries: int | None = None, paused: bool = False,
                     catch_up: str = "skip") -> dict[str, Any]:
        """Create or replace schedule ``name`` (``PUT /schedules/{name}``): a ``cron``
        expression in ``timezone`` (default UTC), or ``every_seconds``; each occurrence
        enqueues one ``task_type`` task. ``catch_up``: ``skip`` or ``latest`` after downtime.
        Raises InvalidRequest naming the bad field."""
        task = {key: value for key, value in (("type", task_type), ("queue", queue),
                                              ("payload", payload), ("priority", priority),
                                              ("max_retries", max_retries))
                if value is not None}
        body: dict[str, Any] = {"task": task, "paused": paused, "catch_up": catch_up}
        for key, value in (("cron", cron), ("timezone", timezone),
                           ("every_seconds", every_seconds)):
            if value is not None:
                body[key] = value
        return _as_schedule(self._request("PUT", _path(name), body)[1])

    def list_schedules(self: Requester) -> list[dict[str, Any]]:
        """Every schedule, in creation order."""
        obj = self._request("GET", "/schedules")[1]
        items = listing(obj, "schedules", "schedule")
        return [_as_schedule(item) for item in items]

    def get_schedule(self: Requester, name: str) -> dict[str, Any]:
        """One schedule with its last and next slots. Raises NotFound."""
        return _as_schedule(self._request("GET", _path(name))[1])

    def pause_schedule(self: Requester, name: str) -> dict[str, Any]:
        """Pause: nothing fires until resumed. Raises NotFound."""
        return _as_schedule(self._request("POST", _path(name, "/pause"), {})[1])

    def resume_schedule(self: Requester, name: str) -> dict[str, Any]:
        """Resume; the slots that passed while paused are skipped. Raises NotFound."""
        return _as_schedule(self._request("POST", _path(name, "/resume"), {})[1])

    def delete_schedule(self: Requester, name: str) -> None:
        """Delete a schedule (the tasks it enqueued stay). Raises NotFound."""
        self._request("DELETE", _path(name))
