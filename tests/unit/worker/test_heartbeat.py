"""A worker's heartbeats: what they say, and when the next one is due."""

from __future__ import annotations

import os

from dqueue.queue import fields
from dqueue.queue.workers import check_info
from dqueue.worker.heartbeat import Heartbeats, host_name


def test_the_body_is_a_valid_heartbeat_and_the_next_is_an_interval_away() -> None:
    beats = Heartbeats("w1", 3, (), ("email", "sms"), heartbeat_ms=2_000)
    assert beats.enabled and beats.is_due(0.0)
    body = beats.body(in_flight=5, now=100.0)
    info = check_info(body)  # the rules the node applies
    assert info.worker_id == "w1" and info.pid == os.getpid() and info.host == host_name()
    assert info.queues == ("default",) and info.types == ("email", "sms")
    assert info.concurrency == 3 and info.in_flight == 5 and info.heartbeat_ms == 2_000
    assert not beats.is_due(101.9) and beats.is_due(102.0)
    assert beats.sent == 1
    again = beats.body(in_flight=10**9, now=102.0)
    assert again["in_flight"] == fields.WORKER_IN_FLIGHT.high
    assert again["started_at_ms"] == body["started_at_ms"]


def test_an_interval_of_0_sends_none() -> None:
    beats = Heartbeats("w1", 1, ("q",), (), heartbeat_ms=0)
    assert not beats.enabled and not beats.is_due(1e9)
