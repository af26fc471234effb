"""Commands of the queue state machine: one frozen dataclass per operation, and their plain form.

The API sends plain commands (docs/internals.md section 4); the Raft process of the leader stamps
``now_ms`` and proposes; ``command_from_plain`` validates every field again, with the field rules
of ``fields.py`` (the only place that says what a field may hold), before anything is proposed
or applied, so bad input never reaches the log and never reaches ``QueueState.apply``.
``log_commands.command_from_log`` reads the commands of committed entries back; ``stamped`` is
what the leader's stamp makes of a parsed command.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from dqueue.queue import fields
from dqueue.queue.config import QueueConfig, settings_from_plain, settings_to_plain
from dqueue.queue.dead_letters import PARSERS as DEAD_LETTER_PARSERS
from dqueue.queue.dead_letters import Purge, Redrive
from dqueue.queue.fields import DEFAULT_QUEUE, InvalidCommand
from dqueue.queue.fields import check_keys as _check_keys
from dqueue.queue.fields import int_of as _integer
from dqueue.queue.fields import text_of as _text
from dqueue.queue.queues import (
    PARSERS as QUEUE_PARSERS,
)
from dqueue.queue.queues import (
    CreateQueue,
    DeleteQueue,
    MoveTasks,
    PurgeQueue,
    UpdateQueue,
)
from dqueue.queue.rate_limits import PARSERS as RATE_LIMIT_PARSERS
from dqueue.queue.rate_limits import DeleteRateLimit, PutRateLimit
from dqueue.queue.release import PARSERS as RELEASE_PARSERS
from dqueue.queue.release import Release
from dqueue.queue.results import checked_result
from dqueue.queue.schedules import PARSERS as SCHEDULE_PARSERS
from dqueue.queue.schedules import DeleteSchedule, PauseSchedule, PutSchedule
from dqueue.queue.workers import PARSERS as WORKER_PARSERS
from dqueue.queue.workers import Heartbeat


@dataclass(frozen=True, slots=True, kw_only=True)
class NewTask:
    """One task of an enqueue command. ``None`` fields take the default of its queue."""

    id: str
    type: str
    payload: Any = None
    priority: int = 0
    max_retries: int | None = None
    idempotency_key: str | None = None
    delay_ms: int | None = None
    queue: str = DEFAULT_QUEUE
    group: str | None = None

    def to_plain(self) -> dict[str, Any]:
        """Return the plain form of this task description (``queue`` only when not the
        default and ``group`` only when set, so that older entries keep their bytes)."""
        plain = {"id": self.id, "type": self.type, "payload": self.payload,
                 "priority": self.priority, "max_retries": self.max_retries,
                 "idempotency_key": self.idempotency_key, "delay_ms": self.delay_ms}
        if self.queue != DEFAULT_QUEUE:
            plain["queue"] = self.queue
        if self.group is not None:
            plain["group"] = self.group
        return plain


@dataclass(frozen=True, slots=True, kw_only=True)
class Enqueue:
    """Add 1 to ``fields.MAX_BATCH`` tasks, in order; repeats of a live idempotency key are
    duplicates."""

    tasks: tuple[NewTask, ...]
    now_ms: int = 0

    def to_plain(self) -> dict[str, Any]:
        """Return ``{"op": "enqueue", ...}``."""
        return {"op": "enqueue", "now_ms": self.now_ms,
                "tasks": [task.to_plain() for task in self.tasks]}


@dataclass(frozen=True, slots=True, kw_only=True)
class Lease:
    """Lease up to ``max_tasks`` visible tasks of ``types`` (None: any type) in ``queues``
    (None: the default queue) to ``worker_id``.

    ``nonce`` is stamped by the leader when it proposes the command (``fields.LEASE_NONCE_CHARS``
    lowercase hex digits, never chosen by a client): the tokens of the leased tasks are
    ``<nonce>.<position>``. A lease without one (an entry written before nonces) gives the old
    tokens ``<index>.<position>``.
    """

    worker_id: str
    types: tuple[str, ...] | None = None
    max_tasks: int = 1
    lease_ms: int | None = None
    nonce: str | None = None
    queues: tuple[str, ...] | None = None
    now_ms: int = 0

    def to_plain(self) -> dict[str, Any]:
        """Return ``{"op": "lease", ...}`` (``queues`` only when given)."""
        plain = {"op": "lease", "now_ms": self.now_ms, "worker_id": self.worker_id,
                 "types": None if self.types is None else list(self.types),
                 "max_tasks": self.max_tasks, "lease_ms": self.lease_ms, "nonce": self.nonce}
        if self.queues is not None:
            plain["queues"] = list(self.queues)
        return plain


@dataclass(frozen=True, slots=True, kw_only=True)
class Ack:
    """Complete a task; the caller must hold its lease: its worker id and its token (a token may
    be left out only for a lease of an old entry, without nonce: ``QueueState``)."""

    id: str
    worker_id: str
    token: str | None = None
    result: Any = None  # the handler's return value, kept on the completed task (results.py)
    now_ms: int = 0

    def to_plain(self) -> dict[str, Any]:
        """Return ``{"op": "ack", ...}`` (``result`` only when there is one)."""
        plain = {"op": "ack", "now_ms": self.now_ms, "id": self.id,
                 "worker_id": self.worker_id, "token": self.token}
        if self.result is not None:
            plain["result"] = self.result
        return plain


@dataclass(frozen=True, slots=True, kw_only=True)
class AckBatch:
    """1 to ``fields.MAX_BATCH`` acks in one command, each applied in order as a lone ``Ack``.

    The items carry the batch's ``now_ms``; their plain form is only ``id``, ``worker_id``,
    ``token`` and (when there is one) ``result``.
    """

    items: tuple[Ack, ...]
    now_ms: int = 0

    def to_plain(self) -> dict[str, Any]:
        """Return ``{"op": "ack_batch", ...}``."""
        items = [{"id": item.id, "worker_id": item.worker_id, "token": item.token}
                 for item in self.items]
        for plain, item in zip(items, self.items, strict=True):
            if item.result is not None:
                plain["result"] = item.result
        return {"op": "ack_batch", "now_ms": self.now_ms, "items": items}


@dataclass(frozen=True, slots=True, kw_only=True)
class Nack:
    """Fail the held attempt: retry after backoff, or dead-letter (always if ``dead_letter``)."""

    id: str
    worker_id: str
    token: str | None = None
    reason: str | None = None
    dead_letter: bool = False
    traceback: str | None = None  # the failure's last traceback lines: ``last_traceback``
    retry_delay_ms: int | None = None  # the retry's delay instead of the queue's backoff
    now_ms: int = 0

    def to_plain(self) -> dict[str, Any]:
        """Return ``{"op": "nack", ...}`` (``traceback``, ``retry_delay_ms`` only when set)."""
        plain = {"op": "nack", "now_ms": self.now_ms, "id": self.id, "worker_id": self.worker_id,
                 "token": self.token, "reason": self.reason, "dead_letter": self.dead_letter}
        extra = {"traceback": self.traceback, "retry_delay_ms": self.retry_delay_ms}
        return plain | {name: value for name, value in extra.items() if value is not None}


@dataclass(frozen=True, slots=True, kw_only=True)
class Extend:
    """Heartbeat: the lease holder's lease now ends ``lease_ms`` after the command's time."""

    id: str
    worker_id: str
    token: str | None = None
    lease_ms: int | None = None
    now_ms: int = 0

    def to_plain(self) -> dict[str, Any]:
        """Return ``{"op": "extend", ...}``."""
        return {"op": "extend", "now_ms": self.now_ms, "id": self.id,
                "worker_id": self.worker_id, "token": self.token, "lease_ms": self.lease_ms}


@dataclass(frozen=True, slots=True, kw_only=True)
class Cancel:
    """Cancel a pending task (delayed or visible)."""

    id: str
    now_ms: int = 0

    def to_plain(self) -> dict[str, Any]:
        """Return ``{"op": "cancel", ...}``."""
        return {"op": "cancel", "now_ms": self.now_ms, "id": self.id}


@dataclass(frozen=True, slots=True, kw_only=True)
class Tick:
    """Advance the clock only, so that lease expiry and pruning happen without other traffic."""

    now_ms: int = 0

    def to_plain(self) -> dict[str, Any]:
        """Return ``{"op": "tick", ...}``."""
        return {"op": "tick", "now_ms": self.now_ms}


@dataclass(frozen=True, slots=True, kw_only=True)
class Configure:
    """Replace the queue settings; each new leader proposes its own before other commands."""

    settings: QueueConfig
    now_ms: int = 0

    def to_plain(self) -> dict[str, Any]:
        """Return ``{"op": "configure", ...}``."""
        return {"op": "configure", "now_ms": self.now_ms,
                "settings": settings_to_plain(self.settings)}


Command = (Enqueue | Lease | Ack | AckBatch | Nack | Extend | Cancel | Redrive | Purge | Tick
           | Configure | CreateQueue | UpdateQueue | DeleteQueue | PurgeQueue | MoveTasks
           | PutSchedule | DeleteSchedule | PauseSchedule | Release | PutRateLimit
           | DeleteRateLimit | Heartbeat)


# ---------------------------------------------------------------- cheap construction

# A frozen dataclass __init__ (3.11) takes its keywords as a dict and sets each field with
# object.__setattr__: about 15,000 machine instructions for a NewTask, more than applying it.
# The setters of the slots (member descriptors, which bypass the frozen __setattr__) build
# the same object in less than half of that. Only for fields known to be valid.
_new_object = object.__new__
_NEW_TASK_FIELDS = ("id", "type", "payload", "priority", "max_retries", "idempotency_key",
                    "delay_ms", "queue", "group")
_ACK_FIELDS = ("id", "worker_id", "token", "result", "now_ms")
(_set_task_id, _set_task_type, _set_payload, _set_priority, _set_max_retries, _set_key,
 _set_delay_ms, _set_queue, _set_group) = (NewTask.__dict__[name].__set__
                                           for name in _NEW_TASK_FIELDS)
_set_ack_id, _set_ack_worker, _set_ack_token, _set_ack_result, _set_ack_now_ms = (
    Ack.__dict__[name].__set__ for name in _ACK_FIELDS)


def new_task_unchecked(task_id: str, task_type: str, payload: Any, priority: int,
                       max_retries: int | None, idempotency_key: str | None,
                       delay_ms: int | None, queue: str = DEFAULT_QUEUE,
                       group: str | None = None) -> NewTask:
    """``NewTask(id=task_id, ...)``, equal in every way, built without the keyword call.

    For values that are already valid (``command_from_plain`` checked them, or they come
    from a committed log entry that it checked); nothing is checked here.
    """
    task = _new_object(NewTask)
    _set_task_id(task, task_id)
    _set_task_type(task, task_type)
    _set_payload(task, payload)
    _set_priority(task, priority)
    _set_max_retries(task, max_retries)
    _set_key(task, idempotency_key)
    _set_delay_ms(task, delay_ms)
    _set_queue(task, queue)
    _set_group(task, group)
    return task


def ack_unchecked(task_id: str, worker_id: str, token: str | None, now_ms: int,
                  result: Any = None) -> Ack:
    """``Ack(id=task_id, ...)``, equal in every way, built as ``new_task_unchecked`` is."""
    ack = _new_object(Ack)
    _set_ack_id(ack, task_id)
    _set_ack_worker(ack, worker_id)
    _set_ack_token(ack, token)
    _set_ack_now_ms(ack, now_ms)
    _set_ack_result(ack, result)
    return ack


# ---------------------------------------------------------------- validation of plain forms
# Every field is checked by its rule in fields.py. The fast paths (``_new_task_fast``,
# ``_ack_fast``) take exact types only and ask the rules' cheap ``accepts``; whatever they do
# not take goes to the full checks, which name the field. For any input both give the same
# command or the same error (tests/unit/queue/test_commands.py).


_NEW_TASK_KEYS = frozenset({"id", "type", "payload", "priority", "max_retries",
                            "idempotency_key", "delay_ms", "queue", "group"})
_accepts_id = fields.TASK_ID.accepts
_accepts_type = fields.TASK_TYPE.accepts
_accepts_key = fields.IDEMPOTENCY_KEY.accepts
_accepts_priority = fields.PRIORITY.accepts
_accepts_retries = fields.MAX_RETRIES.accepts
_accepts_delay_ms = fields.DELAY_MS.accepts
_accepts_worker_id = fields.WORKER_ID.accepts
_accepts_token = fields.LEASE_TOKEN.accepts
_accepts_queue = fields.QUEUE_NAME.accepts


def _new_task_fast(obj: Any) -> NewTask | None:
    """The task of a plain task of the common shape, or None: then ``_new_task`` decides.

    For every ``obj`` it accepts, the result equals ``_new_task(obj, prefix)``; it accepts
    only exact types (no subclasses, no floats in the payload), so whatever it refuses is
    checked, and named, by the full validation.
    """
    if type(obj) is not dict or not _NEW_TASK_KEYS.issuperset(obj):
        return None
    get = obj.get
    task_id, task_type, payload = get("id"), get("type"), get("payload")
    priority, max_retries = get("priority"), get("max_retries")
    key, delay_ms, queue = get("idempotency_key"), get("delay_ms"), get("queue")
    if get("group") is not None:
        return None  # FIFO tasks are rare: the full checks build them
    if (_accepts_id(task_id) and _accepts_type(task_type) and fields.is_flat_payload(payload)
            and (priority is None or _accepts_priority(priority))
            and (max_retries is None or _accepts_retries(max_retries))
            and (key is None or _accepts_key(key))
            and (delay_ms is None or _accepts_delay_ms(delay_ms))
            and (queue is None or _accepts_queue(queue))):
        return new_task_unchecked(task_id, task_type, payload,
                                  0 if priority is None else priority, max_retries, key,
                                  delay_ms, DEFAULT_QUEUE if queue is None else queue)
    return None


def _new_task(obj: Any, prefix: str) -> NewTask:
    if not isinstance(obj, Mapping):
        raise InvalidCommand(prefix.rstrip("."), "each task must be an object")
    _check_keys(obj, _NEW_TASK_KEYS, prefix)
    payload = obj.get("payload")
    fields.check_payload(payload, prefix + "payload")
    return NewTask(id=_text(obj, "id", fields.TASK_ID, prefix),
                   type=_text(obj, "type", fields.TASK_TYPE, prefix),
                   payload=payload,
                   priority=_integer(obj, "priority", fields.PRIORITY, 0, prefix),
                   max_retries=_integer(obj, "max_retries", fields.MAX_RETRIES, None, prefix),
                   idempotency_key=_text(obj, "idempotency_key", fields.IDEMPOTENCY_KEY, prefix,
                                         required=False),
                   delay_ms=_integer(obj, "delay_ms", fields.DELAY_MS, None, prefix),
                   queue=_text(obj, "queue", fields.QUEUE_NAME, prefix, required=False)
                   or DEFAULT_QUEUE,
                   group=_text(obj, "group", fields.GROUP, prefix, required=False))


def _enqueue(obj: Mapping[str, Any], now_ms: int) -> Enqueue:
    tasks = obj.get("tasks")
    if not isinstance(tasks, list) or not 1 <= len(tasks) <= fields.MAX_BATCH:
        raise InvalidCommand("tasks", f"tasks must be a list of 1 to {fields.MAX_BATCH} tasks")
    parsed = []
    for position, task in enumerate(tasks):
        new = _new_task_fast(task)
        parsed.append(new if new is not None else _new_task(task, f"tasks[{position}]."))
    return Enqueue(tasks=tuple(parsed), now_ms=now_ms)


def _names(obj: Mapping[str, Any], key: str, rule: fields.TextRule, most: int,
           what: str) -> tuple[str, ...] | None:
    """The list ``obj[key]`` of 1 to ``most`` names, each checked by ``rule``; None if absent."""
    names = obj.get(key)
    if names is None:
        return None
    if not isinstance(names, list) or not 1 <= len(names) <= most:
        raise InvalidCommand(key, f"{key} must be a list of 1 to {most} {what}")
    for position, item in enumerate(names):
        rule.check(item, f"{key}[{position}]")
    return tuple(names)


def _types(obj: Mapping[str, Any]) -> tuple[str, ...] | None:
    return _names(obj, "types", fields.TASK_TYPE, fields.MAX_TYPES, "task types")


def _queues(obj: Mapping[str, Any]) -> tuple[str, ...] | None:
    return _names(obj, "queues", fields.QUEUE_NAME, fields.MAX_QUEUES, "queue names")


def _lease(obj: Mapping[str, Any], now_ms: int) -> Lease:
    nonce = _text(obj, "nonce", fields.LEASE_NONCE, required=False)
    return Lease(worker_id=_text(obj, "worker_id", fields.WORKER_ID), types=_types(obj),
                 max_tasks=_integer(obj, "max_tasks", fields.LEASE_MAX_TASKS, 1),
                 lease_ms=_integer(obj, "lease_ms", fields.LEASE_MS, None), nonce=nonce,
                 queues=_queues(obj), now_ms=now_ms)


def _ack_fast(obj: Mapping[str, Any], now_ms: int) -> Ack | None:
    """The ack of the common shape (plain ids), built without the field helpers; None when
    anything differs, for the full check to name the problem."""
    task_id, worker_id, token = obj.get("id"), obj.get("worker_id"), obj.get("token")
    if (_accepts_id(task_id) and _accepts_worker_id(worker_id)
            and (token is None or _accepts_token(token))):
        return ack_unchecked(task_id, worker_id, token, now_ms)
    return None


def _ack_checked(obj: Mapping[str, Any], now_ms: int, prefix: str = "") -> Ack:
    return Ack(id=_text(obj, "id", fields.TASK_ID, prefix),
               worker_id=_text(obj, "worker_id", fields.WORKER_ID, prefix),
               token=_text(obj, "token", fields.LEASE_TOKEN, prefix, required=False),
               result=checked_result(obj, prefix), now_ms=now_ms)


def _ack(obj: Mapping[str, Any], now_ms: int) -> Ack:
    if obj.get("result") is not None:
        return _ack_checked(obj, now_ms)
    ack = _ack_fast(obj, now_ms)
    return ack if ack is not None else _ack_checked(obj, now_ms)


_ACK_ITEM_KEYS = frozenset({"id", "worker_id", "token"})


def _ack_item(obj: Any, position: int, now_ms: int) -> Ack:
    if type(obj) is dict and _ACK_ITEM_KEYS.issuperset(obj):
        ack = _ack_fast(obj, now_ms)
        if ack is not None:
            return ack
    prefix = f"items[{position}]."
    if not isinstance(obj, Mapping):
        raise InvalidCommand(prefix.rstrip("."), "each item must be an object")
    _check_keys(obj, _ACK_ITEM_KEYS | {"result"}, prefix)
    return _ack_checked(obj, now_ms, prefix)


def _ack_batch(obj: Mapping[str, Any], now_ms: int) -> AckBatch:
    items = obj.get("items")
    if not isinstance(items, list) or not 1 <= len(items) <= fields.MAX_BATCH:
        raise InvalidCommand("items", f"items must be a list of 1 to {fields.MAX_BATCH} acks")
    return AckBatch(items=tuple([_ack_item(item, position, now_ms)
                                 for position, item in enumerate(items)]), now_ms=now_ms)


def _nack(obj: Mapping[str, Any], now_ms: int) -> Nack:
    dead_letter = obj.get("dead_letter")
    if dead_letter is not None and not isinstance(dead_letter, bool):
        raise InvalidCommand("dead_letter", "dead_letter must be a boolean")
    return Nack(id=_text(obj, "id", fields.TASK_ID),
                worker_id=_text(obj, "worker_id", fields.WORKER_ID),
                token=_text(obj, "token", fields.LEASE_TOKEN, required=False),
                reason=_text(obj, "reason", fields.REASON, required=False),
                traceback=_text(obj, "traceback", fields.TRACEBACK, required=False),
                retry_delay_ms=_integer(obj, "retry_delay_ms", fields.DELAY_MS, None),
                dead_letter=bool(dead_letter), now_ms=now_ms)


def _extend(obj: Mapping[str, Any], now_ms: int) -> Extend:
    return Extend(id=_text(obj, "id", fields.TASK_ID),
                  worker_id=_text(obj, "worker_id", fields.WORKER_ID),
                  token=_text(obj, "token", fields.LEASE_TOKEN, required=False),
                  lease_ms=_integer(obj, "lease_ms", fields.LEASE_MS, None), now_ms=now_ms)


def _cancel(obj: Mapping[str, Any], now_ms: int) -> Cancel:
    return Cancel(id=_text(obj, "id", fields.TASK_ID), now_ms=now_ms)


def _tick(obj: Mapping[str, Any], now_ms: int) -> Tick:
    return Tick(now_ms=now_ms)


def _configure(obj: Mapping[str, Any], now_ms: int) -> Configure:
    try:
        settings = settings_from_plain(obj.get("settings"))
    except (ValueError, TypeError) as exc:
        raise InvalidCommand("settings", str(exc)) from None
    return Configure(settings=settings, now_ms=now_ms)


_PARSERS = {
    "enqueue": (_enqueue, {"tasks"}),
    "lease": (_lease, {"worker_id", "types", "max_tasks", "lease_ms", "nonce", "queues"}),
    "ack": (_ack, {"id", "worker_id", "token", "result"}),
    "ack_batch": (_ack_batch, {"items"}),
    "nack": (_nack, {"id", "worker_id", "token", "reason", "dead_letter", "traceback",
                      "retry_delay_ms"}),
    "extend": (_extend, {"id", "worker_id", "token", "lease_ms"}),
    "cancel": (_cancel, {"id"}),
    "tick": (_tick, set()),
    "configure": (_configure, {"settings"}),
    **QUEUE_PARSERS,
    **SCHEDULE_PARSERS,
    **RELEASE_PARSERS,
    **DEAD_LETTER_PARSERS,
    **RATE_LIMIT_PARSERS,
    **WORKER_PARSERS,
}
_ALLOWED = {op: frozenset(keys | {"op", "now_ms"}) for op, (_, keys) in _PARSERS.items()}


def command_from_plain(obj: Any) -> Command:
    """Build a command from its plain form, validating every field.

    ``now_ms`` may be absent before the leader stamps it (it is then 0, which never moves the
    clock). Optional fields may be omitted or None, meaning the configured default.

    Raises:
        InvalidCommand: naming the first bad field; nothing else, whatever the input.
    """
    if type(obj) is not dict and not isinstance(obj, Mapping):
        raise InvalidCommand("op", "a command must be an object")
    op = obj.get("op")
    if not isinstance(op, str) or op not in _PARSERS:
        raise InvalidCommand("op", f"op must be one of {', '.join(sorted(_PARSERS))}")
    allowed = _ALLOWED[op]
    if not allowed.issuperset(obj):
        _check_keys(obj, allowed)  # names the first unknown field
    now_ms = _integer(obj, "now_ms", fields.NOW_MS, 0)
    parser, _ = _PARSERS[op]
    return parser(obj, now_ms)


def stamped(command: Command, now_ms: int, nonce: str | None = None) -> Command:
    """``command`` as the leader proposes it, stamped with ``now_ms`` (a lease also with
    ``nonce``): equal to ``command_from_plain`` of its plain form stamped so, which the log
    entry carries (the acks of an ``AckBatch`` carry the batch's time too).
    """
    if type(command) is AckBatch:
        return AckBatch(items=tuple([ack_unchecked(item.id, item.worker_id, item.token, now_ms,
                                                   item.result)
                                     for item in command.items]), now_ms=now_ms)
    if type(command) is Lease:
        return dataclasses.replace(command, now_ms=now_ms, nonce=nonce)
    return dataclasses.replace(command, now_ms=now_ms)
