"""``Client.wait``: wait for a task to finish with long polls on the server, not a loop of GETs.

Each request is ``GET /tasks/{id}?wait=SECONDS``: the node answers as soon as the task is
completed, dead or cancelled (the Raft process looks at it again whenever it applies entries),
or at the end of the wait with the task as it is. A timeout longer than one long poll's
``MAX_POLL_S`` (the node's default ``api.max_wait``; a node cuts a longer wait to its own)
takes several polls in a row.
"""

from __future__ import annotations

import time
from typing import Any, Protocol
from urllib.parse import quote

from dqueue.client.errors import WaitTimeout
from dqueue.client.task import Task
from dqueue.queue.task import FINISHED

MAX_POLL_S = 20.0  # one long poll's wait: api.max_wait's default


class _Requester(Protocol):
    def _request(self, method: str, path: str, body: Any = None, *,
                 wait_s: float = 0.0) -> tuple[int, Any]: ...


class WaitPolls:
    """The long polls of one wait, for ``Client.wait`` and ``AsyncClient.wait`` alike: ``next``
    names the request to send, ``outcome`` judges its answer.

    Args:
        task_id: The task waited for.
        timeout: Seconds to wait at most (0: look once).
    """

    def __init__(self, task_id: str, timeout: float) -> None:
        self.task_id = task_id
        self.timeout = timeout
        self.deadline = time.monotonic() + max(0.0, timeout)
        self._path = f"/tasks/{quote(task_id, safe='')}"

    def next(self) -> tuple[str, float]:
        """The path of the next poll and its wait in seconds (at most ``MAX_POLL_S``)."""
        wait_s = min(MAX_POLL_S, max(0.0, self.deadline - time.monotonic()))
        return self._path + (f"?wait={wait_s:.3f}" if wait_s > 0 else ""), wait_s

    def outcome(self, obj: Any) -> Task | None:
        """The task if a poll's answer shows it finished; None to poll again.

        Raises:
            WaitTimeout: it is not finished and the deadline has passed.
        """
        task = Task.from_wire(obj)
        if task.status in FINISHED:
            return task
        if self.deadline - time.monotonic() <= 0:
            raise WaitTimeout(self.task_id, self.timeout, task)
        return None


class TaskWait:
    """``wait``, mixed into ``Client``."""

    def wait(self: _Requester, task_id: str, timeout: float = 30.0) -> Task:
        """Wait until the task is finished (completed, dead or cancelled) and return it; its
        ``result`` is the handler's return value, ``last_error`` and ``last_traceback`` say why
        it died.

        Args:
            task_id: The task's id (``enqueue(...).id``).
            timeout: Seconds to wait at most (0: look once).

        Raises:
            WaitTimeout: the task was not finished within ``timeout``; its ``task`` attribute
                is the task as last seen.
            TaskNotFound: no such task (or it was removed after its retention period).
        """
        polls = WaitPolls(task_id, timeout)
        while True:
            path, wait_s = polls.next()
            task = polls.outcome(self._request("GET", path, wait_s=wait_s)[1])
            if task is not None:
                return task
