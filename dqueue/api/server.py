"""Serving the Falcon app with waitress, and stopping gracefully.

``HttpServer`` binds at construction (so the caller learns the port, or the bind error, at once),
serves on the thread that calls ``serve_forever``, and ``drain`` stops taking connections, lets
the requests in flight finish and their answers leave, then stops the worker threads.

Waitress answers some requests itself, without calling the app: a body over its own limit (four
times ``max_body_bytes``, refused before it is read), and requests it cannot parse. Those answers
are rendered in the API's JSON error shape too (docs/http-api.md).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import waitress
from waitress.channel import HTTPChannel
from waitress.task import ErrorTask

from dqueue.api.errors import ApiError, error_json
from dqueue.api.validation import too_large
from dqueue.config import NodeConfig, split_addr
from dqueue.logs import log_event
from dqueue.protocol.errors import ErrorCode

logger = logging.getLogger(__name__)

# How often a drain checks for requests still in flight.
DRAIN_POLL_S = 0.02
# Bodies beyond this multiple of max_body_bytes are refused by waitress itself (plain 413)
# before they are buffered; below it the app answers a JSON 413.
WAITRESS_BODY_FACTOR = 4
# Open connections served at once (idle and slowly-sending ones included: waitress reads them
# on its one select thread with poll(), so no FD_SETSIZE bound), within the file limit.
MAX_CONNECTIONS = 10_000
# File descriptors kept for everything else (LMDB is in the Raft process; ZeroMQ sockets here).
FD_RESERVE = 256
# A connection idle this long (no byte received, no request running) is closed; long polls
# are requests running, so they are not cut.
CHANNEL_TIMEOUT_S = 60
# Connections accepted per readable event of the listening socket. waitress accepts one per
# turn of its loop, and a turn polls every open connection: 1,000 connections opened at once
# took a second to accept, and a /health behind them waited as long.
ACCEPT_BURST = 64


def listen_host(addr: str) -> tuple[str, int]:
    """``host:port`` to bind; an empty host (``:8080``) means every interface, as in Go."""
    host, port = split_addr(addr, "http_addr")
    return host or "0.0.0.0", port


# Codes of waitress's own error answers; any other status is "http_error".
_WAITRESS_CODES = {400: ErrorCode.BAD_REQUEST, 413: ErrorCode.BODY_TOO_LARGE,
                   431: ErrorCode.HEADERS_TOO_LARGE, 500: ErrorCode.INTERNAL,
                   501: ErrorCode.NOT_IMPLEMENTED}


def json_error_channel(max_body_bytes: int) -> type[HTTPChannel]:
    """A waitress channel class whose own error answers are the API's JSON errors.

    A 413 from waitress (a body over its limit) reads exactly like the app's: ``body_too_large``
    naming ``max_body_bytes``, so a client cannot tell which of the two refused it.
    """

    class JsonErrorTask(ErrorTask):
        def execute(self) -> None:
            error = self.request.error
            if error.code == 413:
                api_error = too_large(max_body_bytes)
            else:
                api_error = ApiError(
                    f"{error.code} {error.reason}",
                    _WAITRESS_CODES.get(error.code, ErrorCode.HTTP_ERROR),
                    f"{error.reason}: {error.body}",
                )
            body = error_json(api_error)
            self.status = api_error.status
            self.response_headers.append(("Content-Type", "application/json"))
            self.set_close_on_finish()
            self.content_length = len(body)
            self.write(body)

    class JsonErrorChannel(HTTPChannel):
        error_task_class = JsonErrorTask

    return JsonErrorChannel


def connection_limit(fd_limit: int) -> int:
    """Connections waitress accepts at once: ``MAX_CONNECTIONS`` within the file limit (once
    it is reached waitress stops accepting, and ``/health`` waits with everyone else)."""
    return max(100, min(MAX_CONNECTIONS, fd_limit - FD_RESERVE))


def _accept_burst(server: Any) -> Any:
    """A ``handle_accept`` for ``server`` that accepts up to ``ACCEPT_BURST`` waiting
    connections at once, within the connection limit."""
    accept_one = server.handle_accept

    def handle_accept() -> None:
        for _ in range(ACCEPT_BURST):
            if len(server._map) >= server.adj.connection_limit:
                return
            before = len(server._map)
            accept_one()
            if len(server._map) == before:
                return  # nothing was waiting (or accept failed: waitress logged it)

    return handle_accept


class HttpServer:
    """A waitress server for one app.

    Args:
        app: the WSGI app.
        config: ``http_addr``, ``http_threads`` and ``max_body_bytes`` are used.
        draining: set when ``drain`` starts.
        fd_limit: the process's limit of open files (bounds the connections accepted).
    """

    def __init__(self, app: Any, config: NodeConfig, draining: threading.Event,
                 fd_limit: int = 1024) -> None:
        host, port = listen_host(config.http_addr)
        self._draining = draining
        self._server = waitress.create_server(
            app,
            host=host,
            port=port,
            threads=config.http_threads,
            ident="dqueue",
            asyncore_use_poll=True,
            max_request_body_size=config.max_body_bytes * WAITRESS_BODY_FACTOR,
            channel_timeout=CHANNEL_TIMEOUT_S,
            connection_limit=connection_limit(fd_limit),
            expose_tracebacks=False,
        )
        self._server.channel_class = json_error_channel(config.max_body_bytes)
        self._server.handle_accept = _accept_burst(self._server)  # type: ignore[method-assign]
        self.host = host
        self.port = int(self._server.effective_port)

    def serve_forever(self) -> None:
        """Serve until the process exits (run it on its own thread)."""
        self._server.run()

    def _busy(self) -> bool:
        dispatcher = self._server.task_dispatcher
        if dispatcher.queue or dispatcher.active_count > 0:
            return True
        channels = list(self._server._map.values())
        return any(isinstance(c, HTTPChannel) and c.total_outbufs_len > 0 for c in channels)

    def _close_idle_connections(self) -> None:
        # Keep-alive connections with no request running close once their output is out, so
        # clients move to another node. (A WSGI app may not send ``Connection: close`` itself:
        # waitress refuses hop-by-hop headers with a 500.) A channel with a request running is
        # left alone: marking it would close it before its answer is written.
        for channel in list(self._server._map.values()):
            if isinstance(channel, HTTPChannel) and not channel.requests:
                channel.close_when_flushed = True
        self._server.pull_trigger()

    def drain(self, timeout_ms: int) -> bool:
        """Stop accepting, wait for requests in flight (at most ``timeout_ms``), stop threads.

        Returns:
            True when every request in flight finished in time.
        """
        self._draining.set()
        self._server.accepting = False
        self._server.pull_trigger()
        deadline = time.monotonic() + timeout_ms / 1000
        self._close_idle_connections()
        while self._busy() and time.monotonic() < deadline:
            time.sleep(DRAIN_POLL_S)
            self._close_idle_connections()
        finished = not self._busy()
        log_event(logger, logging.INFO, "http_drained", finished=finished)
        self._server.task_dispatcher.shutdown(cancel_pending=True, timeout=1)
        return finished
