"""The worker's log events: task fields on every line, and the unreachable-server schedule."""

from __future__ import annotations

import io
import json
import logging
import sys

from dqueue.client.task import Task
from dqueue.logs import JsonFormatter, TextFormatter
from dqueue.worker.app import Completion, Verdict
from dqueue.worker.events import Reachability, log_completion


def test_run_ends_carry_the_task_fields_and_a_one_line_traceback():
    task = Task(id="t1", type="email", queue="mail", attempts=2, max_retries=1)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter("w1", "worker"))
    logger = logging.getLogger("dqueue.worker")
    logger.addHandler(handler)
    old_level = logger.level
    logger.setLevel(logging.INFO)
    try:
        log_completion(Completion(task, Verdict.ACK), 12.345)
        log_completion(Completion(Task(id="t2", type="email", attempts=1, max_retries=3),
                                  Verdict.NACK, "OSError: down", traceback="a\nb"), 1)
        log_completion(Completion(task, Verdict.NACK, "ValueError: x", traceback="l1\nl2"), 3)
        log_completion(Completion(task, Verdict.DROP), 4)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
    lines = stream.getvalue().splitlines()
    records = [json.loads(line) for line in lines]
    assert [r["event"] for r in records] == ["task_done", "task_retry", "task_dead_letter"]
    assert records[0] | {"ts": None} == {
        "ts": None, "level": "info", "node_id": "w1", "process": "worker",
        "logger": "dqueue.worker", "event": "task_done", "task_id": "t1", "type": "email",
        "queue": "mail", "attempt": 2, "duration_ms": 12.3}
    assert records[2]["traceback"] == "l1\nl2" and records[2]["level"] == "error"


def test_text_format_keeps_an_exception_on_the_records_line():
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        record = logging.LogRecord("dqueue.worker", logging.ERROR, __file__, 1, "failed", (),
                                   exc_info=sys.exc_info())
    line = TextFormatter("w1", "worker").format(record)
    assert "\n" not in line and "RuntimeError: boom" in line and "error=" in line


def test_unreachable_warns_at_once_then_every_10_s_then_once_when_reached(caplog):
    caplog.set_level(logging.INFO, logger="dqueue.worker")
    seen = Reachability(["http://127.0.0.1:1"], "http")
    for now in (100.0, 101.0, 105.0, 109.9, 110.0, 111.0, 119.5, 120.2):
        seen.failed(now, "refused")
    seen.reached(121.0)
    seen.reached(122.0)  # reachable already: nothing more
    seen.failed(130.0, "refused again")
    events = [(r.getMessage(), r.dq_fields.get("for_s", r.dq_fields.get("after_s")))
              for r in caplog.records]
    assert events == [("server_unreachable", 0.0), ("server_unreachable", 10.0),
                      ("server_unreachable", 20.2), ("server_reachable", 21.0),
                      ("server_unreachable", 0.0)]
