"""What a node started with ``--join URL`` says about the cluster it waits to join.

The node itself needs nothing from the URL: it starts with no configuration, and the leader
reaches it once ``dqueue-cli cluster add`` put its address in the configuration (it learns
the other members' addresses from their hellos, ``hello.py``). The supervisor asks the URL's
``GET /cluster`` (or, without a token, ``GET /health``) once at start, in a thread, and logs
what the operator needs: the members, whether this id is already one, and the command that
adds it. An unreachable URL is a
warning, retried a few times; it never stops the node.

Everything in the answer is untrusted: only the fields used are read, each checked.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

from dqueue.config import NodeConfig
from dqueue.logs import log_event
from dqueue.protocol.member_context import is_member_id

logger = logging.getLogger(__name__)

#: Seconds for one request, attempts before giving up, and seconds between them.
REQUEST_TIMEOUT_S = 2.0
ATTEMPTS = 5
RETRY_INTERVAL_S = 3.0
#: The most of the answer read: a cluster of 64 members fits many times over.
MAX_ANSWER_BYTES = 1 << 20


def add_command(config: NodeConfig) -> str:
    """The ``dqueue-cli`` command that adds this node, for its log line and the docs."""
    return (f"dqueue-cli --server {config.join} cluster add {config.id} "
            f"--raft-addr {config.members().get(config.id, config.raft_addr)} "
            f"--http-addr {config.http_addr}")


def describe_cluster(config: NodeConfig, answer: Any) -> dict[str, Any] | None:
    """The fields of a ``GET /cluster`` answer worth logging, or None when it is not one."""
    if type(answer) is not dict or type(answer.get("members")) is not list:
        return None
    ids: dict[str, str] = {}
    for member in answer["members"][:64]:
        member_id = member.get("id") if type(member) is dict else None
        role = member.get("role") if type(member) is dict else None
        if is_member_id(member_id):
            ids[member_id] = role if type(role) is str and len(role) <= 32 else "?"
    leader = answer.get("leader_id")
    return {"members": ids, "leader": leader if is_member_id(leader) else None,
            "already_member": config.id in ids}


def _get(url: str, opener: Callable[..., Any]) -> Any:
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    token = os.environ.get("DQUEUE_TOKEN")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    with opener(request, timeout=REQUEST_TIMEOUT_S) as response:
        return json.loads(response.read(MAX_ANSWER_BYTES))


def describe_health(config: NodeConfig, answer: Any) -> dict[str, Any] | None:
    """The fields of a ``GET /health`` answer worth logging (it needs no token), or None."""
    if type(answer) is not dict or not is_member_id(answer.get("node_id")):
        return None
    leader = answer.get("leader_id")
    return {"members": {answer["node_id"]: "?"}, "leader": leader if is_member_id(leader)
            else None, "already_member": answer["node_id"] == config.id}


def probe(config: NodeConfig, opener: Callable[..., Any] = urllib.request.urlopen,
          wait: Callable[[float], bool] | None = None) -> dict[str, Any] | None:
    """Ask ``config.join`` for its cluster and log it; the description, or None.

    ``GET /cluster`` needs a token with the ``read`` role (``DQUEUE_TOKEN``); without one the
    node asks ``GET /health``, which tells the member and its leader only.

    Args:
        config: this node's configuration (``join`` set).
        opener: ``urllib.request.urlopen`` (replaced in tests).
        wait: sleeps between attempts and returns True to stop early (an Event's ``wait``).
    """
    base = config.join.rstrip("/")
    wait = wait or threading.Event().wait
    for attempt in range(1, ATTEMPTS + 1):
        url = base + "/cluster"
        try:
            try:
                described = describe_cluster(config, _get(url, opener))
            except urllib.error.HTTPError as exc:
                if exc.code not in (401, 403):
                    raise
                url = base + "/health"
                described = describe_health(config, _get(url, opener))
        except urllib.error.HTTPError as exc:
            log_event(logger, logging.WARNING, "join_target_refused", url=url,
                      status=exc.code, hint="check the URL: it must be a member's HTTP API")
            return None
        except (OSError, ValueError) as exc:
            log_event(logger, logging.WARNING, "join_target_unreachable", url=url,
                      attempt=attempt, error=str(exc) or type(exc).__name__,
                      hint="the node waits to be added either way")
            if attempt < ATTEMPTS and wait(RETRY_INTERVAL_S):
                return None
            continue
        if described is None:
            log_event(logger, logging.WARNING, "join_target_refused", url=url,
                      hint="the answer is not a dqueue member's: check the URL")
            return None
        hint = ("already a member: it catches up from the leader" if described["already_member"]
                else f"add it: {add_command(config)}")
        log_event(logger, logging.INFO, "join_waiting", url=url, hint=hint, **described)
        return described
    return None


def start_probe(config: NodeConfig, stop: threading.Event) -> threading.Thread | None:
    """Run ``probe`` in a daemon thread when ``--join`` is set; the thread, or None."""
    if not config.join:
        return None
    thread = threading.Thread(target=probe, args=(config,), kwargs={"wait": stop.wait},
                              name="join-probe", daemon=True)
    thread.start()
    return thread
