"""The worker's start-up step for ``@worker.task(..., rate_limit="100/m")``.

Rate limits are enforced by the cluster, at lease time, over every worker (docs/queues.md,
"Rate limits"): a limit held by one worker process would let N workers take N times as much.
So a worker whose handlers declare limits sets each one through the HTTP API before it leases
(``PUT /rate-limits/{type}``, which needs a token with the admin role when the API checks
tokens). Setting an equal limit again changes nothing, so every worker of a deployment may do it;
the last one started wins when they disagree.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from dqueue.client.errors import DQueueError, Forbidden, Unauthorized
from dqueue.client.http_client import Client
from dqueue.logs import log_event
from dqueue.worker.app import Worker

log = logging.getLogger("dqueue.worker")


def apply_rate_limits(worker: Worker, servers: Sequence[str] | None, token: str | None,
                      ca_file: str | None = None) -> None:
    """Set the limits ``worker``'s handlers declare, over HTTP; log each one.

    Raises:
        ValueError: a limit could not be set, with what to do about it.
    """
    if not worker.rate_limits:
        return
    client = Client(servers, token=token, ca_file=ca_file)
    for task_type, limit in sorted(worker.rate_limits.items()):
        try:
            client.set_rate_limit(task_type, limit)
        except (Unauthorized, Forbidden) as exc:
            raise ValueError(
                f"rate_limit={limit!r} of task type {task_type!r}: setting it needs a token "
                f"with the admin role ({exc}); pass one with --token or $DQUEUE_TOKEN, or set "
                f"the limit once with `dqueue-cli rate-limit set {task_type} {limit}` and "
                "drop rate_limit= from the handler") from None
        except DQueueError as exc:
            raise ValueError(f"rate_limit={limit!r} of task type {task_type!r} could not be "
                             f"set: {exc}") from None
        log_event(log, logging.INFO, "rate_limit_set", type=task_type, rate_limit=limit,
                  scope="the whole cluster")


def warn_unset(worker: Worker) -> None:
    """Over ZeroMQ there is no HTTP API to set limits through: say how to set them."""
    for task_type, limit in sorted(worker.rate_limits.items()):
        log_event(log, logging.WARNING, "rate_limit_not_set", type=task_type,
                  rate_limit=limit, hint=f"a --zmq worker cannot set it: run `dqueue-cli "
                  f"rate-limit set {task_type} {limit}` (the cluster enforces it)")
