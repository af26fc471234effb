"""Snapshot bytes of the queue state: compact JSON, so equal histories give equal bytes.

The document is ``{"format": 1, "clock_ms", "last_index", "next_seq", "tasks": [row, ...],
"dedup": [[key, task_id, expires_at_ms], ...]}`` with tasks in seq (log) order, dedup entries
sorted by key and no whitespace. Payload objects keep their key order: it comes from the log
bytes, so it is the same on every member, and a restored task reads exactly as before. Index
structures (heaps) are not stored: ``QueueState.restore`` rebuilds them from the tasks.
"""

from __future__ import annotations

import gc
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from dqueue.queue.task import Task

FORMAT = 1

@dataclass(frozen=True, slots=True)
class Decoded:
    """A decoded snapshot, ready for ``QueueState`` to index."""

    clock_ms: int
    last_index: int
    next_seq: int
    tasks: list[Task]
    dedup: list[tuple[str, str, int]]


@contextmanager
def paused_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector while a snapshot is built or loaded.

    Both create millions of long-lived containers at once; each full collection triggered on
    the way would walk the whole state again (measured: half the restore time at 200,000
    tasks). Nothing they allocate forms a cycle, so pausing loses nothing. Deterministic: the
    collector never changes what the state machine computes.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def encode(clock_ms: int, last_index: int, next_seq: int, rows: list[list[Any]],
           dedup: list[tuple[str, str, int]]) -> bytes:
    """Return the bytes of a state given as task rows (seq order) and dedup entries (sorted)."""
    document = {"format": FORMAT, "clock_ms": clock_ms, "last_index": last_index,
                "next_seq": next_seq, "tasks": rows, "dedup": dedup}
    return json.dumps(document, separators=(",", ":"), allow_nan=False).encode("ascii")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def decode(data: bytes) -> Decoded:
    """Parse and check snapshot bytes.

    Raises:
        ValueError: if ``data`` is not a snapshot of this format, whatever its content.
    """
    try:
        document = json.loads(data)
    except (ValueError, TypeError, RecursionError) as exc:
        raise ValueError(f"snapshot: not JSON ({exc.__class__.__name__})") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise ValueError("snapshot: unknown format")
    header = [document.get(name) for name in ("clock_ms", "last_index", "next_seq")]
    if not all(_is_int(value) and value >= 0 for value in header):
        raise ValueError("snapshot: bad header")
    rows, dedup_rows = document.get("tasks"), document.get("dedup")
    if not isinstance(rows, list) or not isinstance(dedup_rows, list):
        raise ValueError("snapshot: tasks and dedup must be lists")
    try:
        tasks = [Task.from_row(row) for row in rows]
    except ValueError as exc:
        raise ValueError(f"snapshot: bad task ({exc})") from None
    dedup: list[tuple[str, str, int]] = []
    for entry in dedup_rows:
        if (not isinstance(entry, list) or len(entry) != 3 or not isinstance(entry[0], str)
                or not isinstance(entry[1], str) or not _is_int(entry[2])):
            raise ValueError("snapshot: malformed dedup entry")
        dedup.append((entry[0], entry[1], entry[2]))
    return Decoded(header[0], header[1], header[2], tasks, dedup)
