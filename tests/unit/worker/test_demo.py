"""The built-in demo handlers."""

from __future__ import annotations

import pytest

from dqueue.client.task import Task
from dqueue.worker import demo
from dqueue.worker.app import TaskContext, Verdict, run_handler


def run(type: str, payload):
    task = Task(id="t1", type=type, payload=payload, attempts=1)
    ctx = TaskContext(task, "w1", lambda t, s: None, lambda _id: False)
    return run_handler(demo.build(), ctx)


def test_types():
    assert demo.build().types == ["email", "fail", "noop", "sleep"]


@pytest.mark.parametrize("type, payload, verdict", [
    ("email", {"to": "user@example.com"}, Verdict.ACK),
    ("email", "plain", Verdict.ACK),
    ("noop", None, Verdict.ACK),
    ("sleep", {"seconds": 0.01}, Verdict.ACK),
    ("sleep", 0, Verdict.ACK),
    ("sleep", "soon", Verdict.DEAD_LETTER),
    ("fail", None, Verdict.NACK),
    ("fail", {"dead_letter": True, "message": "no"}, Verdict.DEAD_LETTER),
])
def test_verdicts(type, payload, verdict):
    assert run(type, payload).verdict is verdict
