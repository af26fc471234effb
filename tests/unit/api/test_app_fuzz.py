"""The HTTP app answers any JSON body (or bytes) with a status other than 500: wrong types,
huge numbers, lone surrogates in strings and keys, deep nesting, garbage.

The Raft client here encodes every command as the real one does (msgpack), so a value that
passed validation but cannot be carried would surface as an error too.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import falcon.testing
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from dqueue.api.app import create_app
from dqueue.config import NodeConfig
from dqueue.protocol import wire
from dqueue.protocol.ipc_client import Unencodable
from tests.depth import examples
from tests.unit.api.conftest import FakeRaft

TEXT = st.text(max_size=8) | st.sampled_from(["\ud800", "a\udfffb", "x" * 300, "\x00"])
JSON_SCALARS = (st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
                | TEXT)
JSON_VALUES = st.recursive(JSON_SCALARS, lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(TEXT, inner, max_size=3), max_leaves=12)
FIELDS = ["type", "payload", "priority", "max_retries", "idempotency_key", "delay_seconds",
          "worker_id", "types", "lease_seconds", "wait_seconds", "max_tasks", "lease_token",
          "reason", "dead_letter", "tasks", "type"]
BODIES = (st.dictionaries(st.sampled_from(FIELDS) | TEXT, JSON_VALUES, max_size=6)
          | st.builds(lambda items: {"tasks": items},
                      st.lists(st.dictionaries(st.sampled_from(FIELDS), JSON_VALUES,
                                               max_size=5), min_size=1, max_size=3))
          | JSON_VALUES)
ROUTES = st.sampled_from(["/tasks", "/tasks/batch", "/tasks/lease", "/tasks/t1/ack",
                          "/tasks/t1/nack", "/tasks/t1/extend", "/tasks/t1/cancel",
                          "/dlq/redrive"])


class EncodingRaft(FakeRaft):
    """The conftest fake behind the real client's encoding step."""

    def command(self, cmd: dict[str, Any], timeout_ms: int = 5_000, wait_ms: int = 0) -> Any:
        try:
            wire.encode(b"cmd", {"cmd": cmd, "timeout_ms": timeout_ms, "wait_ms": wait_ms})
        except Exception as exc:
            raise Unencodable(f"body: {exc}") from None
        return super().command(cmd, timeout_ms, wait_ms)


_FAKE = EncodingRaft()
_APP = create_app(lambda: _FAKE, NodeConfig(id="n1", max_body_bytes=65_536),
                  CollectorRegistry(), coalesce=False)
_CLIENT = falcon.testing.TestClient(_APP)


@settings(max_examples=examples(600), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(route=ROUTES, body=BODIES, raw=st.none() | st.binary(max_size=40))
def test_no_body_makes_the_app_answer_500(route, body, raw):
    data = raw if raw is not None else json.dumps(body).encode()
    result = _CLIENT.simulate_post(route, body=data,
                                   headers={"Content-Type": "application/json"})
    assert result.status_code != 500, (route, body, result.text)


@settings(max_examples=examples(200), deadline=None)
@given(status=TEXT, cursor=TEXT, limit=TEXT, task_id=TEXT.filter(lambda t: "/" not in t))
def test_no_query_makes_the_app_answer_500(status, cursor, limit, task_id):
    def q(text: str) -> str:
        return quote(text.encode("utf-8", "surrogatepass"), safe="")

    query = f"status={q(status)}&cursor={q(cursor)}&limit={q(limit)}"
    result = _CLIENT.simulate_get("/tasks", query_string=query)
    assert result.status_code != 500, result.text
    if task_id:  # percent-encoded as a client sends it; a lone surrogate as its UTF-8 bytes
        path = "/tasks/" + q(task_id)
        assert _CLIENT.simulate_get(path).status_code != 500
