"""Snapshot bytes of the queue state: compact JSON, so equal histories give equal bytes.

Format 4 (written) is columnar, one list per task field, which encodes and parses faster than a
list per task (bench/bench_queue.py)::

    {"format": 4, "clock_ms", "last_index", "next_seq", "types": [type, ...],
     "tasks": {field: [value, ...], ...}, "dedup": [[key, task_id, expires_at_ms], ...],
     "settings": {name: value, ...},
     "queues": [[name, settings, created_at_ms, updated_at_ms], ...],
     "sessions": [[client_id, first_unanswered, last_active_ms, [[seq, outcome], ...]], ...]}

``queues`` lists the named queues in creation order (``queue_admin.QueueRecord.to_snapshot``);
the ``queue`` column holds indexes into it. Format 2 is format 3 without ``queues`` and without
the ``queue``, ``source_queue`` and ``group`` columns: every task is in the default queue.
Format 3 is format 4 without the ``result`` (a completed task's result, any JSON, else null) and
``last_traceback`` columns: its tasks restore with neither.

``tasks`` holds the columns of ``COLUMNS`` in that order, each with one value per task in seq
(log) order; the ``type`` column holds indexes into ``types`` (types in order of first use) and
the ``status`` column indexes into ``STATUS_CODES``. Dedup entries are sorted by key; there is
no whitespace. Payload objects keep their key order: it comes from the log bytes, so it is the
same on every member, and a restored task reads exactly as before. Format 1 (a list per task,
``Task.to_row``) is still read, so a node restarts from a snapshot an older version wrote.
``settings`` (the replicated ``QueueConfig`` in force) is absent from snapshots written before
settings were replicated; the restoring node then keeps its own. ``sessions`` (the client
session table, ``sessions.py``, in its activity order) is absent from snapshots written before
client sessions and from a state that never applied a command in a session: it then restores
empty, and a state with no session writes none, so those snapshots keep their bytes.
``schedules`` (``schedule_admin.ScheduleBook.to_snapshot``, in creation order) is likewise
absent when there is no schedule, in any format. ``rate_limits``
(``rate_limits.RateLimitBook.to_snapshot``: the type limits and every bucket) is absent when
there is neither, and so is ``workers`` (``workers.WorkerBook.to_snapshot``, in arrival
order) when no worker is listed.
Index structures (heaps) are not stored: ``QueueState.restore`` rebuilds them from the tasks.
"""

from __future__ import annotations

import heapq
import json
import sys
from dataclasses import dataclass
from operator import attrgetter
from typing import TYPE_CHECKING, Any

from dqueue.queue.config import QueueConfig, settings_from_plain, settings_to_plain
from dqueue.queue.fields import DEFAULT_QUEUE, QUEUE_NAME
from dqueue.queue.queue_admin import QueueRecord
from dqueue.queue.queues import QueueSettings, settings_from_snapshot
from dqueue.queue.task import Task, TaskStatus, task_from_fields

if TYPE_CHECKING:
    from dqueue.queue.state import QueueState

FORMAT = 4
#: The task fields of a format-2 snapshot, in the order they are written.
COLUMNS_2 = ("id", "type", "payload", "priority", "max_retries", "attempts", "status",
             "idempotency_key", "created_at_ms", "updated_at_ms", "visible_at_ms",
             "lease_worker", "lease_token", "lease_expires_at_ms", "last_error", "seq",
             "done_worker", "done_token")
#: The task fields of a format-3 snapshot.
COLUMNS_3 = (*COLUMNS_2, "queue", "source_queue", "group")
#: The task fields of a format-4 snapshot (``task_from_fields`` order).
COLUMNS = (*COLUMNS_3, "result", "last_traceback")
_COLUMNS_OF_FORMAT = {2: COLUMNS_2, 3: COLUMNS_3, FORMAT: COLUMNS}
#: Status codes of the format-2 ``status`` column (never reorder: snapshots on disk use them).
STATUS_CODES = (TaskStatus.PENDING, TaskStatus.LEASED, TaskStatus.COMPLETED, TaskStatus.DEAD,
                TaskStatus.CANCELLED)
_CODE_BY_STATUS = {status: code for code, status in enumerate(STATUS_CODES)}
_INT_COLUMNS = ("priority", "max_retries", "attempts", "created_at_ms", "updated_at_ms",
                "visible_at_ms", "seq")
_OPTIONAL_STR_COLUMNS = ("idempotency_key", "lease_worker", "lease_token", "last_error",
                         "done_worker", "done_token", "source_queue", "group", "last_traceback")
_LEASE_COLUMNS = ("lease_worker", "lease_token", "lease_expires_at_ms")
_STR, _INT, _NONE = frozenset({str}), frozenset({int}), type(None)
_IN_GROUP = (TaskStatus.PENDING, TaskStatus.LEASED)

@dataclass(frozen=True, slots=True)
class Decoded:
    """A decoded snapshot, ready for ``QueueState`` to index."""

    clock_ms: int
    last_index: int
    next_seq: int
    tasks: list[Task]
    dedup: list[tuple[str, str, int]]
    settings: QueueConfig | None = None
    sessions: list[Any] | None = None  # Sessions.to_plain output; None when absent
    # (name, settings, created_at_ms, updated_at_ms) in creation order; None: default only.
    queues: list[tuple[str, QueueSettings, int, int]] | None = None
    schedules: list[Any] | None = None  # ScheduleBook.to_snapshot output; None when absent
    rate_limits: Any = None  # RateLimitBook.to_snapshot output; None when absent
    workers: list[Any] | None = None  # WorkerBook.to_snapshot output; None when absent


def encode(clock_ms: int, last_index: int, next_seq: int, tasks: list[Task],
           dedup: list[tuple[str, str, int]], settings: dict[str, Any] | None = None,
           sessions: list[Any] | None = None, queues: list[list[Any]] | None = None,
           schedules: list[Any] | None = None,
           rate_limits: dict[str, Any] | None = None,
           workers: list[Any] | None = None) -> bytes:
    """Return the format-4 bytes of a state given as its tasks (seq order), dedup (sorted),
    settings (``settings_to_plain``; omitted when None), client sessions
    (``Sessions.to_plain``; omitted when None or empty) and queues (``to_snapshot`` of each,
    in creation order; None: the default queue only) and schedules
    (``ScheduleBook.to_snapshot``; omitted when None), rate limits
    (``RateLimitBook.to_snapshot``; omitted when None) and workers (likewise)."""
    if queues is None:
        queues = [[DEFAULT_QUEUE, QueueSettings().to_plain(), 0, 0]]
    columns: dict[str, list[Any]] = {
        name: list(map(attrgetter(name), tasks)) for name in COLUMNS}
    # Types in order of first use: a function of the task list, so equal on every member.
    types = list(dict.fromkeys(columns["type"]))
    type_codes = {task_type: code for code, task_type in enumerate(types)}
    columns["type"] = [type_codes[task_type] for task_type in columns["type"]]
    columns["status"] = [_CODE_BY_STATUS[status] for status in columns["status"]]
    queue_codes = {entry[0]: code for code, entry in enumerate(queues)}
    columns["queue"] = [queue_codes[name] for name in columns["queue"]]
    document = {"format": FORMAT, "clock_ms": clock_ms, "last_index": last_index,
                "next_seq": next_seq, "types": types, "tasks": columns, "dedup": dedup}
    if settings is not None:
        document["settings"] = settings
    document["queues"] = queues
    if sessions:
        document["sessions"] = sessions
    if schedules:
        document["schedules"] = schedules
    if rate_limits:
        document["rate_limits"] = rate_limits
    if workers:
        document["workers"] = workers
    return json.dumps(document, separators=(",", ":"), allow_nan=False).encode("ascii")


def encode_state(state: QueueState) -> bytes:
    """Return the format-4 bytes of a whole ``QueueState``; equal histories give equal bytes."""
    dedup = sorted((key, task_id, expires_at_ms)
                   for key, (task_id, expires_at_ms) in state._dedup.items())
    return encode(state.clock_ms, state.last_index, state._next_seq, list(state._tasks.values()),
                  dedup, settings_to_plain(state.config), state.sessions.to_plain(),
                  [record.to_snapshot() for record in state._queues.values()],
                  state.schedules.to_snapshot(), state.rate_limits.to_snapshot(),
                  state.workers.to_snapshot())


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def decode(data: bytes) -> Decoded:
    """Parse and check snapshot bytes (format 3, or formats 1 and 2 of older versions).

    Raises:
        ValueError: if ``data`` is not a snapshot of a known format, whatever its content.
    """
    try:
        document = json.loads(data)
    except (ValueError, TypeError, RecursionError) as exc:
        raise ValueError(f"snapshot: not JSON ({exc.__class__.__name__})") from None
    if not isinstance(document, dict) or document.get("format") not in (1, 2, 3, FORMAT):
        raise ValueError("snapshot: unknown format")
    header = [document.get(name) for name in ("clock_ms", "last_index", "next_seq")]
    if not all(_is_int(value) and value >= 0 for value in header):
        raise ValueError("snapshot: bad header")
    rows, dedup_rows = document.get("tasks"), document.get("dedup")
    if not isinstance(dedup_rows, list):
        raise ValueError("snapshot: dedup must be a list")
    if document["format"] == 1:
        if not isinstance(rows, list):
            raise ValueError("snapshot: tasks must be a list")
        try:
            tasks = [Task.from_row(row) for row in rows]
        except ValueError as exc:
            raise ValueError(f"snapshot: bad task ({exc})") from None
        for task in tasks:
            task.type = sys.intern(task.type)
    queues = _queues(document.get("queues")) if document["format"] >= 3 else None
    if document["format"] != 1:
        names = [DEFAULT_QUEUE] if queues is None else [entry[0] for entry in queues]
        tasks = _tasks_from_columns(document.get("types"), rows,
                                    _COLUMNS_OF_FORMAT[document["format"]], names)
    dedup: list[tuple[str, str, int]] = []
    for entry in dedup_rows:
        if (not isinstance(entry, list) or len(entry) != 3 or not isinstance(entry[0], str)
                or not isinstance(entry[1], str) or not _is_int(entry[2])):
            raise ValueError("snapshot: malformed dedup entry")
        dedup.append((entry[0], entry[1], entry[2]))
    settings = document.get("settings")
    try:
        config = None if settings is None else settings_from_plain(settings)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"snapshot: bad settings ({exc})") from None
    sessions = document.get("sessions")
    if sessions is not None and not isinstance(sessions, list):
        raise ValueError("snapshot: sessions must be a list")
    schedules = document.get("schedules")
    if schedules is not None and type(schedules) is not list:
        raise ValueError("snapshot: schedules must be a list")
    workers = document.get("workers")
    if workers is not None and type(workers) is not list:
        raise ValueError("snapshot: workers must be a list")
    return Decoded(header[0], header[1], header[2], tasks, dedup, config, sessions, queues,
                   schedules, document.get("rate_limits"), workers)


def _queues(entries: Any) -> list[tuple[str, QueueSettings, int, int]]:
    """Check the ``queues`` list of a format-3 snapshot.

    Raises:
        ValueError: on a malformed entry, a repeated name, or no default queue.
    """
    if type(entries) is not list:
        raise ValueError("snapshot: queues must be a list")
    queues: list[tuple[str, QueueSettings, int, int]] = []
    for entry in entries:
        if (type(entry) is not list or len(entry) != 4 or not QUEUE_NAME.accepts(entry[0])
                or not _is_int(entry[2]) or not _is_int(entry[3])):
            raise ValueError("snapshot: malformed queue entry")
        queues.append((entry[0], settings_from_snapshot(entry[1]), entry[2], entry[3]))
    names = [entry[0] for entry in queues]
    if len(set(names)) != len(names) or DEFAULT_QUEUE not in names:
        raise ValueError("snapshot: queue names repeat, or the default queue is missing")
    return queues


def load_into(state: QueueState, decoded: Decoded) -> None:
    """Index the tasks, keys and sessions of a decoded snapshot into a fresh ``state``.

    Raises:
        ValueError: duplicate task ids, or a malformed session table.
    """
    state.clock_ms = clock_ms = decoded.clock_ms
    state.last_index = decoded.last_index
    state._next_seq = decoded.next_seq
    if decoded.queues is not None:
        state._queues = {name: QueueRecord(name, settings, state.config, created_at_ms)
                         for name, settings, created_at_ms, _ in decoded.queues}
        for name, _, _, updated_at_ms in decoded.queues:
            state._queues[name].updated_at_ms = updated_at_ms
    records = state._queues
    state._tasks = tasks = {task.id: task for task in decoded.tasks}
    if len(tasks) != len(decoded.tasks):
        raise ValueError("snapshot: duplicate task ids")
    by_status = state._by_status
    visible: dict[str, list[Task]] = {name: [] for name in records}
    delayed, leases, finished = state._delayed, state._leases, state._finished
    for task in decoded.tasks:
        status = task.status
        members = by_status[status].get(task.type)  # types interned by the decoder
        if members is None:
            members = by_status[status][task.type] = {}
        members[task.id] = task
        record = records[task.queue]  # the decoder checked that the queue exists
        record.counts[status.value] += 1
        # FIFO (fifo.py): each group holds its pending and leased tasks in seq order, and is
        # blocked by its leased one; its leasable head is indexed after the loop.
        groups = record.groups if status in _IN_GROUP else None
        if groups is not None:
            groups.join(task)
        if status is TaskStatus.PENDING:
            if task.visible_at_ms > clock_ms:
                delayed.append((task.visible_at_ms, task.seq, 0, task))
            elif groups is None:
                visible[task.queue].append(task)
        elif status is TaskStatus.LEASED:
            if groups is not None:
                groups.note_lease(task)
            leases.append((task.lease_expires_at_ms, task.seq, 0, task))
        else:
            finished.append((task.updated_at_ms + record.config.retention_ms, task.seq, task))
    for name, record in records.items():
        if record.groups is not None:
            visible[name].extend(record.groups.leasable_heads(clock_ms))
        record.ready.load(visible[name])
    for heap in (delayed, leases, finished):
        heapq.heapify(heap)
    for key, task_id, expires_at_ms in decoded.dedup:
        state._dedup[key] = (task_id, expires_at_ms)
        state._dedup_heap.append((expires_at_ms, key))
    heapq.heapify(state._dedup_heap)
    if decoded.sessions is not None:
        state.sessions.load_plain(decoded.sessions)
    if decoded.schedules is not None:
        state.schedules.load_snapshot(decoded.schedules)
    if decoded.rate_limits is not None:
        state.rate_limits.load_snapshot(decoded.rate_limits)
    if decoded.workers is not None:
        state.workers.load_snapshot(decoded.workers)


def _check_codes(column: list[Any], count: int, name: str) -> None:
    """Raise unless every value of ``column`` is an int code in ``range(count)``."""
    if column and (set(map(type, column)) != _INT or min(column) < 0 or max(column) >= count):
        raise ValueError(f"snapshot: bad {name} column")


def _tasks_from_columns(types: Any, columns: Any, names: tuple[str, ...],
                        queues: list[str]) -> list[Task]:
    """Check the columns ``names`` of a snapshot, one column at a time, and build the tasks;
    ``queues`` are the names the ``queue`` column's codes stand for.

    Raises:
        ValueError: on a missing or ragged column or a value of the wrong type.
    """
    if (type(types) is not list or set(map(type, types)) - _STR or type(columns) is not dict
            or list(columns) != list(names)
            or any(type(column) is not list for column in columns.values())):
        raise ValueError("snapshot: tasks must be the columns " + ", ".join(names))
    count = len(columns["id"])
    if any(len(column) != count for column in columns.values()):
        raise ValueError("snapshot: columns of different lengths")
    # `type(x) is int` also refuses bool, which JSON never yields for these fields.
    if set(map(type, columns["id"])) - _STR:
        raise ValueError("snapshot: bad id column")
    for name in _INT_COLUMNS:
        if set(map(type, columns[name])) - _INT:
            raise ValueError(f"snapshot: bad {name} column")
    for name in _OPTIONAL_STR_COLUMNS:
        if name in columns and set(map(type, columns[name])) - {str, _NONE}:
            raise ValueError(f"snapshot: bad {name} column")
    if set(map(type, columns["lease_expires_at_ms"])) - {int, _NONE}:
        raise ValueError("snapshot: bad lease_expires_at_ms column")
    _check_codes(columns["type"], len(types), "type")
    _check_codes(columns["status"], len(STATUS_CODES), "status")
    if "queue" in columns:
        _check_codes(columns["queue"], len(queues), "queue")
        columns["queue"] = [queues[code] for code in columns["queue"]]
        if not all(name is None or QUEUE_NAME.accepts(name) for name in columns["source_queue"]):
            raise ValueError("snapshot: bad source_queue column")
    # Task invariant: the lease fields are set if and only if the task is leased.
    leased_code = _CODE_BY_STATUS[TaskStatus.LEASED]
    leased = [i for i, code in enumerate(columns["status"]) if code == leased_code]
    for name in _LEASE_COLUMNS:
        column = columns[name]
        # As many values as leased tasks, all at leased positions: set exactly where leased.
        if (count - column.count(None) != len(leased)
                or any(column[i] is None for i in leased)):
            raise ValueError(f"snapshot: {name} set on a task that is not leased, or missing")
    interned = [sys.intern(task_type) for task_type in types]
    columns["type"] = [interned[code] for code in columns["type"]]
    columns["status"] = [STATUS_CODES[code] for code in columns["status"]]
    # Columns in task_from_fields order, all of one length (checked above).
    return list(map(task_from_fields, *columns.values()))
