"""Commands of the queue state machine: one frozen dataclass per operation, and their plain form.

The API sends plain commands (docs/internals.md section 4); the Raft process of the leader stamps
``now_ms`` and proposes; ``command_from_plain`` validates every field again before anything is
proposed or applied, so bad input never reaches the log and never reaches ``QueueState.apply``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from dqueue.queue.config import QueueConfig, settings_from_plain, settings_to_plain

MAX_BATCH = 1_000
MAX_LEASE_TASKS = 100
MAX_ID_CHARS = 256
MAX_REASON_CHARS = 65_536
MAX_TYPES = 100
MAX_PAYLOAD_DEPTH = 64
MAX_DELAY_MS = 366 * 24 * 3_600_000
MAX_LEASE_MS = 12 * 3_600_000
MAX_RETRIES = 10_000
INT64_MIN = -(1 << 63)
INT64_MAX = (1 << 63) - 1
# Lease fencing (docs/security.md, "Lease fencing"): the leader draws a nonce of this many random
# bytes for every lease command it proposes; it travels in the log entry as lowercase hex, so
# every member derives the same tokens ``<nonce>.<position>`` from it.
LEASE_NONCE_BYTES = 16
LEASE_NONCE_CHARS = 2 * LEASE_NONCE_BYTES
# The longest lease token a client may send (HTTP ``lease_token``, the gateway's ``token``). The
# log itself accepts up to MAX_ID_CHARS, what entries written before this bound could carry.
MAX_LEASE_TOKEN_CHARS = 64
_HEX_DIGITS = frozenset("0123456789abcdef")


class InvalidCommand(ValueError):
    """A plain command that is malformed; ``field`` names the offending field.

    Attributes:
        field: Path of the bad field, for example ``tasks[3].priority``.
        message: Human-readable reason that names the field.
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True, slots=True, kw_only=True)
class NewTask:
    """One task of an enqueue command. ``None`` fields take the configured default."""

    id: str
    type: str
    payload: Any = None
    priority: int = 0
    max_retries: int | None = None
    idempotency_key: str | None = None
    delay_ms: int = 0

    def to_plain(self) -> dict[str, Any]:
        """Return the plain form of this task description."""
        return {"id": self.id, "type": self.type, "payload": self.payload,
                "priority": self.priority, "max_retries": self.max_retries,
                "idempotency_key": self.idempotency_key, "delay_ms": self.delay_ms}


@dataclass(frozen=True, slots=True, kw_only=True)
class Enqueue:
    """Add 1 to ``MAX_BATCH`` tasks, in order; repeats of a live idempotency key are duplicates."""

    tasks: tuple[NewTask, ...]
    now_ms: int = 0

    def to_plain(self) -> dict[str, Any]:
        """Return ``{"op": "enqueue", ...}``."""
        return {"op": "enqueue", "now_ms": self.now_ms,
                "tasks": [task.to_plain() for task in self.tasks]}


@dataclass(frozen=True, slots=True, kw_only=True)
class Lease:
    """Lease up to ``max_tasks`` visible tasks of ``types`` (None: any type) to ``worker_id``.

    ``nonce`` is stamped by the leader when it proposes the command (``LEASE_NONCE_CHARS``
    lowercase hex digits, never chosen by a client): the tokens of the leased tasks are
    ``<nonce>.<position>``. A lease without one (an entry written before nonces) gives the old
    tokens ``<index>.<position>``.
    """

    worker_id: str
    types: tuple[str, ...] | None = None
    max_tasks: int = 1
    lease_ms: int | None = None
    nonce: str | None = None
    now_ms: int = 0

    def to_plain(self) -> dict[str, Any]:
        """Return ``{"op": "lease", ...}``."""
        return {"op": "lease", "now_ms": self.now_ms, "worker_id": self.worker_id,
                "types": None if self.types is None else list(self.types),
                "max_tasks": self.max_tasks, "lease_ms": self.lease_ms, "nonce": self.nonce}


@dataclass(frozen=True, slots=True, kw_only=True)
class Ack:
    """Complete a task; the caller must hold its lease: its worker id and its token (a token may
    be left out only for a lease of an old entry, without nonce: ``QueueState``)."""

    id: str
    worker_id: str
    token: str | None = None
    now_ms: int = 0

    def to_plain(self) -> dict[str, Any]:
        """Return ``{"op": "ack", ...}``."""
        return {"op": "ack", "now_ms": self.now_ms, "id": self.id, "worker_id": self.worker_id,
                "token": self.token}


@dataclass(frozen=True, slots=True, kw_only=True)
class AckBatch:
    """1 to ``MAX_BATCH`` acks in one command, each applied in order exactly as a lone ``Ack``.

    The items carry the batch's ``now_ms``; their plain form is only ``id``, ``worker_id`` and
    ``token``.
    """

    items: tuple[Ack, ...]
    now_ms: int = 0

    def to_plain(self) -> dict[str, Any]:
        """Return ``{"op": "ack_batch", ...}``."""
        return {"op": "ack_batch", "now_ms": self.now_ms,
                "items": [{"id": item.id, "worker_id": item.worker_id, "token": item.token}
                          for item in self.items]}


@dataclass(frozen=True, slots=True, kw_only=True)
class Nack:
    """Fail the held attempt: retry after backoff, or dead-letter (always if ``dead_letter``)."""

    id: str
    worker_id: str
    token: str | None = None
    reason: str | None = None
    dead_letter: bool = False
    now_ms: int = 0

    def to_plain(self) -> dict[str, Any]:
        """Return ``{"op": "nack", ...}``."""
        return {"op": "nack", "now_ms": self.now_ms, "id": self.id, "worker_id": self.worker_id,
                "token": self.token, "reason": self.reason, "dead_letter": self.dead_letter}


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
class Redrive:
    """Send dead tasks back to pending with attempts reset: one by id, all of a type, or all."""

    id: str | None = None
    type: str | None = None
    now_ms: int = 0

    def to_plain(self) -> dict[str, Any]:
        """Return ``{"op": "redrive", ...}``."""
        return {"op": "redrive", "now_ms": self.now_ms, "id": self.id, "type": self.type}


@dataclass(frozen=True, slots=True, kw_only=True)
class Purge:
    """Delete dead tasks now: those of ``type``, or all when it is None."""

    type: str | None = None
    now_ms: int = 0

    def to_plain(self) -> dict[str, Any]:
        """Return ``{"op": "purge", ...}``."""
        return {"op": "purge", "now_ms": self.now_ms, "type": self.type}


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
           | Configure)


# ---------------------------------------------------------------- cheap construction

# A frozen dataclass __init__ (3.11) takes its keywords as a dict and sets each field with
# object.__setattr__: about 15,000 machine instructions for a NewTask, more than applying it.
# The setters of the slots (member descriptors, which bypass the frozen __setattr__) build
# the same object in less than half of that. Only for fields known to be valid.
_new_object = object.__new__
_NEW_TASK_FIELDS = ("id", "type", "payload", "priority", "max_retries", "idempotency_key",
                    "delay_ms")
_ACK_FIELDS = ("id", "worker_id", "token", "now_ms")
(_set_task_id, _set_task_type, _set_payload, _set_priority, _set_max_retries, _set_key,
 _set_delay_ms) = (NewTask.__dict__[name].__set__ for name in _NEW_TASK_FIELDS)
_set_ack_id, _set_ack_worker, _set_ack_token, _set_ack_now_ms = (
    Ack.__dict__[name].__set__ for name in _ACK_FIELDS)


def new_task_unchecked(task_id: str, task_type: str, payload: Any, priority: int,
                       max_retries: int | None, idempotency_key: str | None,
                       delay_ms: int) -> NewTask:
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
    return task


def ack_unchecked(task_id: str, worker_id: str, token: str | None, now_ms: int) -> Ack:
    """``Ack(id=task_id, ...)``, equal in every way, built as ``new_task_unchecked`` is."""
    ack = _new_object(Ack)
    _set_ack_id(ack, task_id)
    _set_ack_worker(ack, worker_id)
    _set_ack_token(ack, token)
    _set_ack_now_ms(ack, now_ms)
    return ack


# ---------------------------------------------------------------- validation of plain forms


def _check_keys(obj: Mapping[str, Any], allowed: frozenset[str], prefix: str = "") -> None:
    for key in obj:
        if key not in allowed:
            raise InvalidCommand(f"{prefix}{key}", "unknown field")


def _string(obj: Mapping[str, Any], name: str, prefix: str = "", *, required: bool = True,
            max_chars: int = MAX_ID_CHARS) -> str | None:
    value = obj.get(name)
    if value is None:
        if required:
            raise InvalidCommand(prefix + name, f"{name} is required")
        return None
    if not isinstance(value, str):
        raise InvalidCommand(prefix + name, f"{name} must be a string")
    if not value or len(value) > max_chars:
        raise InvalidCommand(prefix + name, f"{name} must have 1 to {max_chars} characters")
    return value


def _integer(obj: Mapping[str, Any], name: str, low: int, high: int, default: int | None,
             prefix: str = "") -> int | None:
    value = obj.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidCommand(prefix + name, f"{name} must be an integer")
    if not low <= value <= high:
        raise InvalidCommand(prefix + name, f"{name} must be between {low} and {high}")
    return value


def _check_json(value: Any, field: str, depth: int = 0) -> None:
    """Raise InvalidCommand unless ``value`` is a JSON value (str keys, finite numbers)."""
    if value is None or isinstance(value, (str, bool, int)):
        return
    if depth >= MAX_PAYLOAD_DEPTH:
        raise InvalidCommand(field, f"payload nests deeper than {MAX_PAYLOAD_DEPTH} levels")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidCommand(field, "payload numbers must be finite")
    elif isinstance(value, list):
        for item in value:
            _check_json(item, field, depth + 1)
    elif isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidCommand(field, "payload object keys must be strings")
            _check_json(item, field, depth + 1)
    else:
        raise InvalidCommand(field, f"payload must be JSON, not {type(value).__name__}")


_NEW_TASK_KEYS = frozenset({"id", "type", "payload", "priority", "max_retries",
                            "idempotency_key", "delay_ms"})


# Exact types of the values a flat payload may hold without a closer look (floats need one).
_FLAT_TYPES = frozenset({str, int, bool, type(None)})
_STR_TYPE = frozenset({str})


def _is_flat_json(value: Any) -> bool:
    """Whether ``value`` is a scalar, or a list or str-keyed dict of scalars (no floats).

    Such a value passes ``_check_json``; the check runs in C (``map(type, ...)``), which is
    what makes the common payload of an enqueue cheap to validate.
    """
    kind = type(value)
    if kind in _FLAT_TYPES:
        return True
    if kind is dict:
        return (_STR_TYPE.issuperset(map(type, value))
                and _FLAT_TYPES.issuperset(map(type, value.values())))
    return kind is list and _FLAT_TYPES.issuperset(map(type, value))


def _is_id(value: Any) -> bool:
    return type(value) is str and 0 < len(value) <= MAX_ID_CHARS


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
    key, delay_ms = get("idempotency_key"), get("delay_ms")
    if (_is_id(task_id) and _is_id(task_type) and _is_flat_json(payload)
            and (priority is None or (type(priority) is int
                                      and INT64_MIN <= priority <= INT64_MAX))
            and (max_retries is None or (type(max_retries) is int
                                         and 0 <= max_retries <= MAX_RETRIES))
            and (key is None or _is_id(key))
            and (delay_ms is None or (type(delay_ms) is int and 0 <= delay_ms <= MAX_DELAY_MS))):
        return new_task_unchecked(task_id, task_type, payload,
                                  0 if priority is None else priority, max_retries, key,
                                  0 if delay_ms is None else delay_ms)
    return None


def _new_task(obj: Any, prefix: str) -> NewTask:
    if not isinstance(obj, Mapping):
        raise InvalidCommand(prefix.rstrip("."), "each task must be an object")
    _check_keys(obj, _NEW_TASK_KEYS, prefix)
    payload = obj.get("payload")
    _check_json(payload, prefix + "payload")
    return NewTask(id=_string(obj, "id", prefix), type=_string(obj, "type", prefix),
                   payload=payload,
                   priority=_integer(obj, "priority", INT64_MIN, INT64_MAX, 0, prefix),
                   max_retries=_integer(obj, "max_retries", 0, MAX_RETRIES, None, prefix),
                   idempotency_key=_string(obj, "idempotency_key", prefix, required=False),
                   delay_ms=_integer(obj, "delay_ms", 0, MAX_DELAY_MS, 0, prefix))


def _enqueue(obj: Mapping[str, Any], now_ms: int) -> Enqueue:
    tasks = obj.get("tasks")
    if not isinstance(tasks, list) or not 1 <= len(tasks) <= MAX_BATCH:
        raise InvalidCommand("tasks", f"tasks must be a list of 1 to {MAX_BATCH} tasks")
    parsed = []
    for position, task in enumerate(tasks):
        new = _new_task_fast(task)
        parsed.append(new if new is not None else _new_task(task, f"tasks[{position}]."))
    return Enqueue(tasks=tuple(parsed), now_ms=now_ms)


def _types(obj: Mapping[str, Any]) -> tuple[str, ...] | None:
    types = obj.get("types")
    if types is None:
        return None
    if not isinstance(types, list) or not 1 <= len(types) <= MAX_TYPES:
        raise InvalidCommand("types", f"types must be a list of 1 to {MAX_TYPES} strings")
    for item in types:
        if not isinstance(item, str) or not 1 <= len(item) <= MAX_ID_CHARS:
            raise InvalidCommand("types", "each type must be a non-empty string")
    return tuple(types)


def is_lease_nonce(value: Any) -> bool:
    """Whether ``value`` is a lease nonce as the leader stamps it (lowercase hex digits)."""
    return (type(value) is str and len(value) == LEASE_NONCE_CHARS
            and _HEX_DIGITS.issuperset(value))


def _lease(obj: Mapping[str, Any], now_ms: int) -> Lease:
    nonce = obj.get("nonce")
    if nonce is not None and not is_lease_nonce(nonce):
        raise InvalidCommand("nonce", f"nonce must be {LEASE_NONCE_CHARS} lowercase hex digits")
    return Lease(worker_id=_string(obj, "worker_id"), types=_types(obj),
                 max_tasks=_integer(obj, "max_tasks", 1, MAX_LEASE_TASKS, 1),
                 lease_ms=_integer(obj, "lease_ms", 1, MAX_LEASE_MS, None), nonce=nonce,
                 now_ms=now_ms)


def _ack_fast(obj: Mapping[str, Any], now_ms: int) -> Ack | None:
    """The ack of the common shape (plain ids), built without the field helpers; None when
    anything differs, for the full check to name the problem."""
    task_id, worker_id, token = obj.get("id"), obj.get("worker_id"), obj.get("token")
    if _is_id(task_id) and _is_id(worker_id) and (token is None or _is_id(token)):
        return ack_unchecked(task_id, worker_id, token, now_ms)
    return None


def _ack(obj: Mapping[str, Any], now_ms: int) -> Ack:
    ack = _ack_fast(obj, now_ms)
    if ack is not None:
        return ack
    return Ack(id=_string(obj, "id"), worker_id=_string(obj, "worker_id"),
               token=_string(obj, "token", required=False), now_ms=now_ms)


_ACK_ITEM_KEYS = frozenset({"id", "worker_id", "token"})


def _ack_item(obj: Any, position: int, now_ms: int) -> Ack:
    if type(obj) is dict and _ACK_ITEM_KEYS.issuperset(obj):
        ack = _ack_fast(obj, now_ms)
        if ack is not None:
            return ack
    prefix = f"items[{position}]."
    if not isinstance(obj, Mapping):
        raise InvalidCommand(prefix.rstrip("."), "each item must be an object")
    _check_keys(obj, _ACK_ITEM_KEYS, prefix)
    return Ack(id=_string(obj, "id", prefix), worker_id=_string(obj, "worker_id", prefix),
               token=_string(obj, "token", prefix, required=False), now_ms=now_ms)


def _ack_batch(obj: Mapping[str, Any], now_ms: int) -> AckBatch:
    items = obj.get("items")
    if not isinstance(items, list) or not 1 <= len(items) <= MAX_BATCH:
        raise InvalidCommand("items", f"items must be a list of 1 to {MAX_BATCH} acks")
    return AckBatch(items=tuple([_ack_item(item, position, now_ms)
                                 for position, item in enumerate(items)]), now_ms=now_ms)


def _nack(obj: Mapping[str, Any], now_ms: int) -> Nack:
    dead_letter = obj.get("dead_letter")
    if dead_letter is not None and not isinstance(dead_letter, bool):
        raise InvalidCommand("dead_letter", "dead_letter must be a boolean")
    reason = obj.get("reason")
    if reason is not None and (not isinstance(reason, str) or len(reason) > MAX_REASON_CHARS):
        raise InvalidCommand("reason", f"reason must be a string of at most "
                                       f"{MAX_REASON_CHARS} characters")
    return Nack(id=_string(obj, "id"), worker_id=_string(obj, "worker_id"),
                token=_string(obj, "token", required=False), reason=reason,
                dead_letter=bool(dead_letter), now_ms=now_ms)


def _extend(obj: Mapping[str, Any], now_ms: int) -> Extend:
    return Extend(id=_string(obj, "id"), worker_id=_string(obj, "worker_id"),
                  token=_string(obj, "token", required=False),
                  lease_ms=_integer(obj, "lease_ms", 1, MAX_LEASE_MS, None), now_ms=now_ms)


def _cancel(obj: Mapping[str, Any], now_ms: int) -> Cancel:
    return Cancel(id=_string(obj, "id"), now_ms=now_ms)


def _redrive(obj: Mapping[str, Any], now_ms: int) -> Redrive:
    task_id = _string(obj, "id", required=False)
    task_type = _string(obj, "type", required=False)
    if task_id is not None and task_type is not None:
        raise InvalidCommand("type", "give id or type, not both")
    return Redrive(id=task_id, type=task_type, now_ms=now_ms)


def _purge(obj: Mapping[str, Any], now_ms: int) -> Purge:
    return Purge(type=_string(obj, "type", required=False), now_ms=now_ms)


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
    "lease": (_lease, {"worker_id", "types", "max_tasks", "lease_ms", "nonce"}),
    "ack": (_ack, {"id", "worker_id", "token"}),
    "ack_batch": (_ack_batch, {"items"}),
    "nack": (_nack, {"id", "worker_id", "token", "reason", "dead_letter"}),
    "extend": (_extend, {"id", "worker_id", "token", "lease_ms"}),
    "cancel": (_cancel, {"id"}),
    "redrive": (_redrive, {"id", "type"}),
    "purge": (_purge, {"type"}),
    "tick": (_tick, set()),
    "configure": (_configure, {"settings"}),
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
    now_ms = _integer(obj, "now_ms", 0, INT64_MAX, 0)
    parser, _ = _PARSERS[op]
    return parser(obj, now_ms)
