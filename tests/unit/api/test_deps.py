"""ApiDeps (dqueue/api/deps.py): task ids, and Raft outcomes and failures mapped to ApiError.

The Raft client here is ``LocalQueue``: the real queue state machine behind the IPC client's
interface, so a command's outcome is the one a node would give."""

from __future__ import annotations

import json
import re
from typing import Any

import falcon
import pytest
from prometheus_client import CollectorRegistry

from dqueue.api.deps import ApiDeps, new_task_id, new_task_ids, send_json
from dqueue.api.errors import ApiError
from dqueue.api.metrics import ApiMetrics
from dqueue.api.raft_link import RaftLink
from dqueue.config import NodeConfig
from dqueue.protocol.ipc_client import NoLeader, RaftUnavailable, RequestTimeout
from dqueue.testing import LocalQueue, ManualClock

HEX32 = re.compile(r"[0-9a-f]{32}")


def deps_over(client: Any, **changes: Any) -> ApiDeps:
    config = NodeConfig(id="n1", request_timeout_ms=1_234)
    return ApiDeps(config, RaftLink(lambda: client), ApiMetrics(CollectorRegistry()),
                   **changes)


class Failing:
    """A Raft client whose every call raises ``error``; it records the deadlines it got."""

    def __init__(self, error: Exception) -> None:
        self.error = error
        self.timeouts: list[int] = []

    def command(self, cmd: dict[str, Any], timeout_ms: int = 5_000, wait_ms: int = 0) -> Any:
        self.timeouts.append(timeout_ms)
        raise self.error

    def read(self, query: dict[str, Any], timeout_ms: int = 5_000, stale: bool = False) -> Any:
        self.timeouts.append(timeout_ms)
        raise self.error

    def close(self) -> None:
        pass


def test_task_ids_are_32_hex_digits_and_distinct():
    ids = [new_task_id() for _ in range(50)] + new_task_ids(50)
    assert all(HEX32.fullmatch(i) for i in ids)
    assert len(set(ids)) == 100


def test_new_ids_uses_the_given_source_in_order():
    counter = iter(range(1, 100))
    deps = deps_over(LocalQueue(), new_id=lambda: f"id-{next(counter)}")
    assert deps.new_ids(3) == ["id-1", "id-2", "id-3"]
    assert len(deps_over(LocalQueue()).new_ids(5)) == 5


def test_command_returns_the_value_of_the_outcome():
    queue = LocalQueue(clock=ManualClock())
    deps = deps_over(queue)
    value = deps.command({"op": "enqueue", "tasks": [{"id": "a", "type": "t"}]})
    assert [t["id"] for t in value["tasks"]] == ["a"]
    assert deps.read({"op": "get", "id": "a"})["status"] == "pending"


def test_a_refused_command_is_the_api_error_of_its_code():
    deps = deps_over(LocalQueue(clock=ManualClock()))
    with pytest.raises(ApiError) as caught:
        deps.command({"op": "ack", "id": "missing", "worker_id": "w"})
    assert (caught.value.status, caught.value.code) == (falcon.HTTP_404, "not_found")


@pytest.mark.parametrize(("error", "status", "code"), [
    (NoLeader("n2", "127.0.0.1:8082"), falcon.HTTP_503, "no_leader"),
    (RequestTimeout(), falcon.HTTP_503, "timeout"),
    (RaftUnavailable("down"), falcon.HTTP_503, "unavailable"),
])
def test_raft_client_failures_are_mapped_with_the_configured_deadline(error, status, code):
    client = Failing(error)
    deps = deps_over(client)
    for call in (lambda: deps.command({"op": "tick"}), lambda: deps.read({"op": "stats"})):
        with pytest.raises(ApiError) as caught:
            call()
        assert (caught.value.status, caught.value.code) == (status, code)
    assert client.timeouts == [1_234, 1_234]


def test_a_bad_read_is_a_400_naming_the_field():
    deps = deps_over(LocalQueue())
    with pytest.raises(ApiError) as caught:
        deps.read({"op": "list", "status": "nonsense"})
    assert caught.value.status == falcon.HTTP_400
    assert caught.value.field == "status"


def test_send_json_writes_compact_json_with_its_status():
    resp = falcon.Response()
    send_json(resp, falcon.HTTP_201, {"a": [1, 2], "b": None})
    assert resp.status == falcon.HTTP_201
    assert resp.content_type == falcon.MEDIA_JSON
    assert resp.data == b'{"a":[1,2],"b":null}'
    assert json.loads(resp.data) == {"a": [1, 2], "b": None}
