"""The history file format: written by HistoryWriter, read back by parse_lines."""

from __future__ import annotations

import io
import itertools
import json
import threading

import pytest

from dqueue.chaos.history import Event, EventType, HistoryWriter, Op, load, parse_lines


def test_writer_round_trips_through_the_parser():
    out = io.StringIO()
    times = iter([1.0, 2.5])
    writer = HistoryWriter(out, clock_ms=lambda: next(times))
    writer.record("p1", EventType.INVOKE, Op.ENQUEUE, {"key": "k1"})
    writer.record("p1", EventType.INFO, Op.ENQUEUE, {"key": "k1"}, error="timeout")
    events = list(parse_lines(out.getvalue().splitlines()))
    assert events == [
        Event(0, 1.0, "p1", EventType.INVOKE, Op.ENQUEUE, {"key": "k1"}, None),
        Event(1, 2.5, "p1", EventType.INFO, Op.ENQUEUE, {"key": "k1"}, "timeout"),
    ]


def test_writer_orders_index_and_time_under_concurrency():
    out = io.StringIO()
    writer = HistoryWriter(out)

    def spam(name: str) -> None:
        for _ in range(200):
            writer.record(name, EventType.INFO, Op.OBSERVE, {})

    threads = [threading.Thread(target=spam, args=(f"t{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    events = list(parse_lines(out.getvalue().splitlines()))
    assert [e.index for e in events] == list(range(800))
    assert all(a.time_ms <= b.time_ms for a, b in itertools.pairwise(events))


def test_load_reads_a_file(tmp_path):
    path = tmp_path / "history.jsonl"
    with path.open("w") as handle:
        HistoryWriter(handle).record("n", EventType.INFO, Op.NEMESIS, {"fault": "pause"})
    assert load(str(path))[0].value == {"fault": "pause"}


@pytest.mark.parametrize(("line", "field"), [
    ('[1, 2]', "event"),
    ('{"index": 0, "time_ms": 1, "process": "p", "type": "maybe", "f": "ack"}', "type"),
    ('{"index": 0, "time_ms": 1, "process": "p", "type": "ok", "f": "fly"}', "f:"),
    ('{"index": "0", "time_ms": 1, "process": "p", "type": "ok", "f": "ack"}', "index"),
    ('{"index": 0, "time_ms": "1", "process": "p", "type": "ok", "f": "ack"}', "time_ms"),
    ('{"index": 0, "time_ms": 1, "process": 3, "type": "ok", "f": "ack"}', "process"),
    ('{"index": 0, "time_ms": 1, "process": "p", "type": "ok", "f": "ack", "value": 2}',
     "value"),
    ('{"index": 0, "time_ms": 1, "process": "p", "type": "ok", "f": "ack", "error": 2}',
     "error"),
    ('not json', "line 2"),
])
def test_bad_lines_are_rejected_naming_the_field(line, field):
    with pytest.raises(ValueError, match=field):
        list(parse_lines(["", line]))


def test_blank_lines_are_skipped():
    line = json.dumps({"index": 0, "time_ms": 1, "process": "p", "type": "ok", "f": "final"})
    assert len(list(parse_lines(["", line, "  "]))) == 1
