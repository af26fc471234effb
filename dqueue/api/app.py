"""The Falcon app of the HTTP API: ``create_app`` wires resources to their dependencies.

``create_app`` takes everything from its arguments (no globals), so unit tests build it with a
fake Raft client and a private Prometheus registry; ``dqueue.api.server`` serves it with waitress.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from typing import Any

import falcon
from prometheus_client import CollectorRegistry

from dqueue.api import (
    cluster_admin,
    dlq,
    queues,
    sqs_messages,
    sqs_queues,
    status,
    tasks,
    ui_routes,
)
from dqueue.api import rate_limits as rate_limit_routes
from dqueue.api import schedules as schedule_routes
from dqueue.api import workers as worker_routes
from dqueue.api.auth import AuthMiddleware, load_token_file
from dqueue.api.coalesce import EnqueueCoalescer
from dqueue.api.deps import ApiDeps, new_task_id
from dqueue.api.errors import ApiError, handle_api_error, handle_http_error, handle_unexpected
from dqueue.api.metrics import ApiMetrics, MetricsMiddleware, RaftCollector
from dqueue.api.openapi import openapi_document
from dqueue.api.raft_link import RaftClientLike, RaftLink
from dqueue.api.sqs_keys import load_keys, receipt_key
from dqueue.api.sqs_service import SqsContext, SqsService, log_sqs_mode
from dqueue.config import NodeConfig
from dqueue.tokens import TokenFile

# How long a metrics scrape waits for the local Raft process.
SCRAPE_TIMEOUT_MS = 1_000


def create_app(
    raft_client_factory: Callable[[], RaftClientLike],
    config: NodeConfig,
    registry: CollectorRegistry,
    new_id: Callable[[], str] = new_task_id,
    draining: threading.Event | None = None,
    coalesce: bool = True,
    token_file: TokenFile | None = None,
) -> falcon.App:
    """Build the WSGI app.

    Args:
        raft_client_factory: makes one Raft client; called once per serving thread.
        config: the node's configuration.
        registry: the Prometheus registry the app registers its metrics in and serves.
        new_id: source of task ids.
        draining: set by the server when the process stops taking requests.
        coalesce: merge concurrent enqueue requests into shared commands
            (``dqueue.api.coalesce``).
        token_file: the bearer tokens (``dqueue.api.auth``); by default the tokens file of
            ``config.secure_dir``, if any.

    Returns:
        The Falcon app.

    Raises:
        TokenFileError: the tokens file exists and is malformed.
    """
    if token_file is None:
        token_file = load_token_file(config)
    metrics = ApiMetrics(registry)
    link = RaftLink(raft_client_factory)
    deps = ApiDeps(
        config=config, link=link, metrics=metrics, new_id=new_id,
        draining=draining or threading.Event(),
        coalescer=EnqueueCoalescer(
            link.client, config.request_timeout_ms, config.max_body_bytes,
            observe=metrics.enqueue_command_tasks.observe,
        ) if coalesce else None,
    )
    registry.register(RaftCollector(_scrape_reader(link), SCRAPE_TIMEOUT_MS))

    auth = AuthMiddleware(config, token_file)
    app = falcon.App(middleware=[MetricsMiddleware(metrics), auth])
    app.req_options.auto_parse_form_urlencoded = False
    app.add_error_handler(Exception, handle_unexpected)
    app.add_error_handler(falcon.HTTPError, handle_http_error)
    app.add_error_handler(ApiError, handle_api_error)

    app.add_route("/tasks", tasks.TaskCollection(deps))
    app.add_route("/tasks/batch", tasks.TaskBatch(deps))
    app.add_route("/tasks/lease", tasks.TaskLease(deps))
    app.add_route("/tasks/{id}", tasks.TaskItem(deps))
    app.add_route("/tasks/{id}/ack", tasks.TaskAck(deps))
    app.add_route("/tasks/{id}/nack", tasks.TaskNack(deps))
    app.add_route("/tasks/{id}/release", tasks.TaskRelease(deps))
    app.add_route("/tasks/{id}/extend", tasks.TaskExtend(deps))
    app.add_route("/tasks/{id}/cancel", tasks.TaskCancel(deps))
    app.add_route("/dlq/redrive", dlq.DlqRedrive(deps))
    app.add_route("/dlq", dlq.Dlq(deps))
    app.add_route("/queues", queues.QueueCollection(deps))
    app.add_route("/queues/{name}", queues.QueueItem(deps))
    app.add_route("/queues/{name}/purge", queues.QueuePurge(deps))
    app.add_route("/queues/{name}/move", queues.QueueMove(deps))
    schedule_routes.register(app, deps)
    rate_limit_routes.register(app, deps)
    worker_routes.register(app, deps)
    app.add_route("/health", status.Health(deps))
    app.add_route("/ready", status.Ready(deps))
    app.add_route("/stats", status.Stats(deps))
    app.add_route("/cluster", status.Cluster(deps))
    cluster_admin.register(app, deps)
    app.add_route("/metrics", status.Metrics(registry))
    app.add_route("/openapi.json", status.OpenApi(openapi_document()))
    ui_routes.register(app, _scrape_reader(link))  # the dashboard at /ui (docs/ui.md)
    _add_sqs(app, deps, config, auth)
    return app


def _add_sqs(app: falcon.App, deps: ApiDeps, config: NodeConfig,
             auth: AuthMiddleware) -> None:
    """The SQS-compatible API (docs/sqs.md) at ``/`` and at queue URLs.

    Raises:
        SqsKeysError: the access keys file exists and is malformed.
    """
    keys = load_keys(config)
    ctx = SqsContext(deps, config.sqs_account_id, config.sqs_region, receipt_key(config, keys))
    sqs = SqsService(ctx, {**sqs_queues.HANDLERS, **sqs_messages.HANDLERS}, keys,
                     auth.current_mode)
    # A sink, not routes: the SQS protocols are not REST resources (no OpenAPI operations, no
    # bearer roles); it is reached only when no route matches, at "/" and the queue URLs.
    app.add_sink(sqs, re.compile(rf"^/(?:{config.sqs_account_id}/[^/]+)?$"))
    log_sqs_mode(keys)


def _scrape_reader(link: RaftLink) -> Callable[[dict[str, Any], int, bool], Any]:
    def read(query: dict[str, Any], timeout_ms: int, stale: bool) -> Any:
        return link.client().read(query, timeout_ms=timeout_ms, stale=stale)

    return read
