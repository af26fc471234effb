"""``@worker.task(..., rate_limit=...)`` and the worker's start-up step that sets the limits
through the HTTP API (dqueue/worker/rate_limits.py), against the real API app."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from dqueue.client.errors import Forbidden
from dqueue.client.http_client import Client
from dqueue.logs import FIELDS_ATTR
from dqueue.worker.app import Worker
from dqueue.worker.rate_limits import apply_rate_limits, warn_unset
from tests.unit.test_cli_queues import server  # noqa: F401  (the fixture)


def _worker() -> Worker:
    worker = Worker()

    @worker.task("email", rate_limit="100/m")
    def send(payload: Any, ctx: Any) -> None:
        return None

    @worker.task("noop")
    def noop(payload: Any, ctx: Any) -> None:
        return None
    return worker


def test_the_decorator_keeps_the_limit_and_refuses_a_bad_one() -> None:
    worker = _worker()
    assert worker.rate_limits == {"email": "100/m"}
    assert worker.types == ["email", "noop"]
    with pytest.raises(ValueError, match="rate_limit"):
        worker.task("sms", rate_limit="100 per minute")
    assert "sms" not in worker.handlers


def test_start_sets_each_limit_on_the_cluster(server: Any,  # noqa: F811
                                              caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="dqueue.worker"):
        apply_rate_limits(_worker(), None, None)
    assert server.queue.state.rate_limits.list_plain() == [
        {"type": "email", "rate_limit": "100/m"}]
    [record] = [r for r in caplog.records if r.getMessage() == "rate_limit_set"]
    assert getattr(record, FIELDS_ATTR)["type"] == "email"
    assert getattr(record, FIELDS_ATTR)["rate_limit"] == "100/m"
    apply_rate_limits(_worker(), None, None)  # a second worker: the same limit, no change
    assert [c["op"] for c in server.commands].count("put_rate_limit") == 2


def test_a_token_without_admin_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(self: Client, task_type: str, limit: str) -> None:
        raise Forbidden("the token lacks the admin role")
    monkeypatch.setattr(Client, "set_rate_limit", refuse)
    with pytest.raises(ValueError) as caught:
        apply_rate_limits(_worker(), ["http://127.0.0.1:1"], "t")
    message = str(caught.value)
    assert "admin role" in message and "dqueue-cli rate-limit set email 100/m" in message


def test_without_limits_nothing_is_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(self: Client, task_type: str, limit: str) -> None:
        raise AssertionError("no request expected")
    monkeypatch.setattr(Client, "set_rate_limit", fail)
    plain = Worker()
    plain.register("noop", lambda payload, ctx: None)
    apply_rate_limits(plain, ["http://127.0.0.1:1"], None)


def test_a_zmq_worker_says_how_to_set_them(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="dqueue.worker"):
        warn_unset(_worker())
    [record] = [r for r in caplog.records if r.getMessage() == "rate_limit_not_set"]
    assert "dqueue-cli rate-limit set email 100/m" in getattr(record, FIELDS_ATTR)["hint"]
