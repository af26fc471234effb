"""Structured logging: JSON lines with node id, process, level, event and fields."""

from __future__ import annotations

import io
import json
import logging

import pytest

from dqueue.logs import configure_logging, format_time, log_event


@pytest.fixture
def restore_root():
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_json_line_has_every_part(restore_root):
    out = io.StringIO()
    configure_logging("n2", "raft", "info", "json", stream=out)
    log_event(logging.getLogger("dqueue.test"), logging.INFO, "leader_changed",
              term=7, leader_id="n2")
    log_event(logging.getLogger("dqueue.test"), logging.DEBUG, "hidden")
    lines = out.getvalue().splitlines()
    assert len(lines) == 1
    record = json.loads(lines[0])
    assert record["node_id"] == "n2"
    assert record["process"] == "raft"
    assert record["level"] == "info"
    assert record["event"] == "leader_changed"
    assert record["term"] == 7
    assert record["leader_id"] == "n2"
    assert record["ts"].endswith("Z")


def test_text_format_and_exceptions(restore_root):
    out = io.StringIO()
    configure_logging("n1", "api", "debug", "text", stream=out)
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("x").exception("failed")
    log_event(logging.getLogger("x"), logging.DEBUG, "seen", n=1)
    text = out.getvalue()
    assert "n1/api failed" in text
    assert "ValueError: boom" in text
    assert "seen n=1" in text


def test_format_time():
    assert format_time(1764272880.123) == "2025-11-27T19:48:00.123Z"
