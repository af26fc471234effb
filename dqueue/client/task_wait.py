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
        deadline = time.monotonic() + max(0.0, timeout)
        path = f"/tasks/{quote(task_id, safe='')}"
        while True:
            left = deadline - time.monotonic()
            wait_s = min(MAX_POLL_S, max(0.0, left))
            query = f"?wait={wait_s:.3f}" if wait_s > 0 else ""
            _, obj = self._request("GET", path + query, wait_s=wait_s)
            task = Task.from_wire(obj)
            if task.status in FINISHED:
                return task
            if deadline - time.monotonic() <= 0:
                raise WaitTimeout(task_id, timeout, task)
