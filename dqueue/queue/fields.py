"""What every field of a queue command may hold: each rule and bound, defined once.

Every way into the queue checks its fields with these rules: the HTTP API
(``dqueue/api/tasks.py``, ``dlq.py``), the worker gateway (``dqueue/api/worker_requests.py``),
and the parser of the state machine (``commands.command_from_plain``), which checks every
command again before it is proposed and when it is read back from the log. A channel may only
be stricter, and says so by name (``dqueue/api/validation.py``). The limits are documented once,
in docs/http-api.md ("Limits").

The bounds are the tightest that every earlier version enforced at its edges (HTTP and the
worker gateway), so every log entry a node ever wrote still parses: an entry that did not
would stop every member when it is applied (``dqueue/node/apply_failed.py``).

Each rule has ``accepts`` (a cheap yes/no on exact types, for the fast paths) and ``check``
(the full check, raising ``InvalidCommand`` naming the field); for any value, ``accepts``
says yes only if ``check`` returns the value unchanged (tests/unit/queue/test_fields.py).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

INT64_MIN = -(1 << 63)
INT64_MAX = (1 << 63) - 1
UINT64_MAX = (1 << 64) - 1


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


_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")


def has_control_chars(value: str) -> bool:
    """Whether ``value`` holds a C0 control character or DEL (a newline, a NUL, an escape)."""
    if value.isascii():
        # For ASCII text, isprintable() is False exactly for 0x00-0x1f and 0x7f (in C).
        return not value.isprintable()
    return _CONTROL_CHARS.search(value) is not None


@dataclass(frozen=True, slots=True)
class TextRule:
    """A string of ``min_chars`` to ``max_chars`` characters.

    Attributes:
        min_chars: Fewest characters (1 for names, 0 where empty text means something).
        max_chars: Most characters.
        control_chars: Whether control characters are allowed (a traceback has newlines; an id
            that is logged, rendered and used as a key has none).
        pattern: When set, the whole value must match it (``max_chars`` still applies).
        accepts: ``accepts(value)``: whether ``value`` is an exact ``str`` that ``check``
            returns as it is (a function made for the rule: it runs for every id of every
            command).
    """

    min_chars: int
    max_chars: int
    control_chars: bool = False
    pattern: re.Pattern[str] | None = None
    accepts: Callable[[Any], bool] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        low, high = self.min_chars, self.max_chars
        if self.pattern is not None:
            fullmatch = self.pattern.fullmatch

            def accepts(value: Any) -> bool:
                return (type(value) is str and low <= len(value) <= high
                        and fullmatch(value) is not None)
        elif self.control_chars:
            def accepts(value: Any) -> bool:
                return type(value) is str and low <= len(value) <= high
        else:
            search = _CONTROL_CHARS.search

            def accepts(value: Any) -> bool:
                # not has_control_chars(value), inlined
                return (type(value) is str and low <= len(value) <= high
                        and (value.isprintable() if value.isascii() else search(value) is None))
        object.__setattr__(self, "accepts", accepts)  # frozen: set once, here

    def check(self, value: Any, field: str) -> str:
        """Return ``value`` if it obeys the rule.

        Raises:
            InvalidCommand: naming ``field`` and what is wrong.
        """
        if not isinstance(value, str):
            raise InvalidCommand(field, f"{field} must be a string")
        if not self.min_chars <= len(value) <= self.max_chars:
            raise InvalidCommand(field, f"{field} must have {self.min_chars} to "
                                        f"{self.max_chars} characters")
        if self.pattern is not None:
            if self.pattern.fullmatch(value) is None:
                raise InvalidCommand(field, f"{field} must match {self.pattern.pattern}")
        elif not self.control_chars and has_control_chars(value):
            raise InvalidCommand(field, f"{field} must not contain control characters")
        return value


@dataclass(frozen=True, slots=True)
class IntRule:
    """An integer from ``low`` to ``high`` inclusive (a boolean is not an integer here).

    Attributes:
        low: Least value.
        high: Greatest value.
        accepts: ``accepts(value)``: whether ``value`` is an exact ``int`` within the bounds.
    """

    low: int
    high: int
    accepts: Callable[[Any], bool] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        low, high = self.low, self.high

        def accepts(value: Any) -> bool:
            return type(value) is int and low <= value <= high
        object.__setattr__(self, "accepts", accepts)  # frozen: set once, here

    def check(self, value: Any, field: str) -> int:
        """Return ``value`` if it obeys the rule.

        Raises:
            InvalidCommand: naming ``field`` and what is wrong.
        """
        return check_int(value, self.low, self.high, field)


def check_int(value: Any, low: int, high: int, field: str) -> int:
    """Return ``value`` if it is an integer (not a boolean) from ``low`` to ``high``.

    Raises:
        InvalidCommand: naming ``field`` and what is wrong.
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidCommand(field, f"{field} must be an integer")
    if not low <= value <= high:
        raise InvalidCommand(field, f"{field} must be between {low} and {high}")
    return value


# ---------------------------------------------------------------- the rules

# Ids a client gives or is given: task ids, worker ids, idempotency keys, and the lease token a
# command carries (the log holds tokens of up to 256 characters that older gateways let in).
ID = TextRule(1, 256)
TASK_ID = ID
WORKER_ID = ID
IDEMPOTENCY_KEY = ID
LEASE_TOKEN = ID
# Lease fencing (docs/security.md, "Lease fencing"): the leader draws a nonce of this many random
# bytes for every lease command it proposes; it travels in the log entry as lowercase hex, so
# every member derives the same tokens ``<nonce>.<position>`` from it.
LEASE_NONCE_BYTES = 16
LEASE_NONCE_CHARS = 2 * LEASE_NONCE_BYTES
LEASE_NONCE = TextRule(LEASE_NONCE_CHARS, LEASE_NONCE_CHARS,
                       pattern=re.compile(f"[0-9a-f]{{{LEASE_NONCE_CHARS}}}"))
# The stricter rule of the edges (HTTP ``lease_token``, the gateway's ``token``): a token the
# server gave out has at most 32 + 1 + 19 characters (or ``<index>.<position>``, older).
PRESENTED_LEASE_TOKEN = TextRule(1, 64)


def is_legacy_token(token: str | None) -> bool:
    """Whether ``token`` comes from a lease applied without nonce (``<index>.<position>``, an
    entry written before nonces; the index has at most 19 digits, a nonce 32).

    Invariant kept: a lease with a nonce is held only by its token; a legacy lease may still be
    held by worker id alone, so that old logs and snapshots apply exactly as they did.
    """
    return token is not None and token.find(".") != LEASE_NONCE_CHARS

# A task type also names metric labels and query parameters: a tame alphabet, 128 at most.
TYPE_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:/-]{0,127}")
TASK_TYPE = TextRule(1, 128, pattern=TYPE_PATTERN)
# Why an attempt failed, kept on the task: room for a short traceback (newlines allowed).
REASON = TextRule(0, 4_096, control_chars=True)
# A nack's ``traceback``, kept as the task's ``last_traceback``: the last lines of the failure's
# traceback (``results.traceback_tail``), not all of it; newlines allowed.
MAX_TRACEBACK_CHARS = 2_048
TRACEBACK = TextRule(0, MAX_TRACEBACK_CHARS, control_chars=True)

# Higher first; 32 bits, so that every JSON client (a JavaScript number too) holds it exactly.
PRIORITY = IntRule(-(1 << 31), (1 << 31) - 1)
# Retries after the first attempt (SQS's maxReceiveCount goes to 1,000 as well).
MAX_RETRIES = IntRule(0, 1_000)
DELAY_MS = IntRule(0, 7 * 24 * 3_600_000)
# A lease (SQS's visibility timeout) lasts at most 12 hours.
LEASE_MS = IntRule(1, 12 * 3_600_000)
LEASE_MAX_TASKS = IntRule(1, 100)
# The leader's clock, stamped on every command.
NOW_MS = IntRule(0, INT64_MAX)

# Queue names follow SQS: 1 to 80 of letters, digits, ``-`` and ``_``; a FIFO queue's name ends
# in ``.fifo`` (counted in the 80).
QUEUE_NAME_PATTERN = re.compile(r"(?=.{1,80}\Z)[A-Za-z0-9_-]+(\.fifo)?")
QUEUE_NAME = TextRule(1, 80, pattern=QUEUE_NAME_PATTERN)
DEFAULT_QUEUE = "default"
FIFO_SUFFIX = ".fifo"
# A FIFO queue's message group (SQS MessageGroupId): up to 128 characters, no control ones.
GROUP = TextRule(1, 128)
# How long a FIFO queue deduplicates (SQS: 5 minutes, fixed).
FIFO_DEDUP_WINDOW_MS = 5 * 60_000
MAX_QUEUES = 64  # queues one lease may name
# Per-queue settings (queues.py); SQS's ranges where SQS has the setting.
RETENTION_MS = IntRule(60_000, 14 * 24 * 3_600_000)
BACKOFF_MS = IntRule(0, 24 * 3_600_000)
MAX_DEPTH = IntRule(0, 1 << 40)
MAX_MESSAGE_BYTES = IntRule(1_024, 1 << 20)
WAIT_MS = IntRule(0, 20_000)
TAG_KEY = TextRule(1, 128)
TAG_VALUE = TextRule(0, 256)
MAX_TAGS = 50
# Tasks one move command (a redrive out of a dead-letter queue) takes at most.
MOVE_MAX_TASKS = IntRule(1, 10_000)

# Workers' heartbeats (workers.py): what a worker says of itself, shown by GET /workers. The
# table holds at most MAX_WORKERS workers; one is dropped after MISSED_HEARTBEATS intervals
# without a heartbeat.
WORKER_HOST = TextRule(1, 253)  # a DNS name has at most 253 characters
WORKER_PID = IntRule(1, (1 << 31) - 1)
WORKER_CONCURRENCY = IntRule(1, 10_000)
WORKER_IN_FLIGHT = IntRule(0, 1_000_000)
HEARTBEAT_MS = IntRule(100, 300_000)
WORKER_TRANSPORTS = ("http", "zmq")
MAX_WORKERS = 1_000
MISSED_HEARTBEATS = 3

MAX_BATCH = 1_000  # tasks of one enqueue command, acks of one ack_batch command
MAX_TYPES = 64  # task types one lease may name

# A payload is JSON as msgpack carries it: str keys, finite floats, integers of 64 bits at most,
# nested at most this deep, so that encoding and decoding never recurse deeply.
MAX_PAYLOAD_DEPTH = 32
PAYLOAD_INT_MIN = INT64_MIN
PAYLOAD_INT_MAX = UINT64_MAX

_NONE_TYPE = type(None)
_NO_CHECK_TYPES = frozenset({str, bool, _NONE_TYPE})  # leaves that need no closer look
_STR_TYPE = frozenset({str})


def is_flat_payload(value: Any) -> bool:
    """Whether ``value`` is a scalar, or a list or str-keyed dict of scalars (no floats), that
    ``check_payload`` accepts.

    The type tests run in C (``map(type, ...)``) and only integers are looked at one by one:
    this is what makes the common payload of an enqueue cheap to check.
    """
    kind = type(value)
    if kind is dict:
        if not _STR_TYPE.issuperset(map(type, value)):
            return False
        items = value.values()
    elif kind is list:
        items = value
    elif kind is int:
        return PAYLOAD_INT_MIN <= value <= PAYLOAD_INT_MAX
    else:
        return kind in _NO_CHECK_TYPES
    if _NO_CHECK_TYPES.issuperset(map(type, items)):
        return True
    for item in items:
        kind = type(item)
        if kind is int:
            if not PAYLOAD_INT_MIN <= item <= PAYLOAD_INT_MAX:
                return False
        elif kind not in _NO_CHECK_TYPES:
            return False
    return True


def check_payload(value: Any, field: str = "payload") -> None:
    """Check that ``value`` is a payload: JSON with str keys, finite numbers, integers within
    64 bits, nested at most ``MAX_PAYLOAD_DEPTH`` deep. Iterative: any depth is refused
    without recursing.

    Raises:
        InvalidCommand: naming ``field``.
    """
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        kind = type(item)
        if kind is str or kind is bool or item is None:
            continue
        if kind is dict or kind is list:
            if depth >= MAX_PAYLOAD_DEPTH:
                raise InvalidCommand(field, f"{field} nests deeper than "
                                            f"{MAX_PAYLOAD_DEPTH} levels")
            if kind is dict:
                if not _STR_TYPE.issuperset(map(type, item)):
                    raise InvalidCommand(field, f"{field} object keys must be strings")
                children = item.values()
            else:
                children = item
            for child in children:
                child_kind = type(child)
                if child_kind is str or child is None or child_kind is bool:
                    continue  # the common leaves, checked without a trip through the stack
                stack.append((child, depth + 1))
        elif kind is int:
            if not PAYLOAD_INT_MIN <= item <= PAYLOAD_INT_MAX:
                raise InvalidCommand(field, f"{field} holds an integer outside 64 bits")
        elif kind is float:
            if not math.isfinite(item):
                raise InvalidCommand(field, f"{field} numbers must be finite")
        else:
            raise InvalidCommand(field, f"{field} must be JSON, not {kind.__name__}")


# ---------------------------------------------------------------- reading a plain command


def check_keys(obj: Mapping[str, Any], allowed: frozenset[str], prefix: str = "") -> None:
    """Refuse a key of ``obj`` outside ``allowed``.

    Raises:
        InvalidCommand: naming the first unknown field.
    """
    for key in obj:
        if key not in allowed:
            raise InvalidCommand(f"{prefix}{key}", "unknown field")


def text_of(obj: Mapping[str, Any], name: str, rule: TextRule, prefix: str = "", *,
            required: bool = True) -> str | None:
    """``obj[name]`` checked by ``rule``; None when absent and not ``required``.

    Raises:
        InvalidCommand: naming ``prefix + name``.
    """
    value = obj.get(name)
    if value is None:
        if required:
            raise InvalidCommand(prefix + name, f"{prefix + name} is required")
        return None
    return rule.check(value, prefix + name)


def int_of(obj: Mapping[str, Any], name: str, rule: IntRule, default: int | None,
           prefix: str = "") -> int | None:
    """``obj[name]`` checked by ``rule``; ``default`` when absent.

    Raises:
        InvalidCommand: naming ``prefix + name``.
    """
    value = obj.get(name)
    if value is None:
        return default
    return rule.check(value, prefix + name)
