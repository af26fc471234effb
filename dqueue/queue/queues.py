"""Named queues: their settings, and the commands that create, change, delete and empty them.

A queue is replicated state like a task: it is made by a committed ``create_queue`` command,
changed by ``update_queue``, and lives in snapshots. Every setting left as None follows the
cluster's ``QueueConfig`` in force (so a ``configure`` by a new leader still reaches the queues
that did not choose their own value); ``effective_config`` merges the two. The queue
``DEFAULT_QUEUE`` always exists and cannot be deleted: a task enqueued without a queue goes
there (docs/queues.md).

Pure: no clock, no I/O. The handlers that apply these commands are in ``queue_admin.py``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from dqueue.queue import fields
from dqueue.queue.config import QueueConfig
from dqueue.queue.fields import InvalidCommand
from dqueue.queue.rate_limits import check_rate_limit


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueSettings:
    """The settings a queue chooses. None (or 0 where said) takes the cluster's value.

    Attributes:
        lease_ms: Lease (SQS visibility timeout) when a lease gives none.
        max_retries: Retries after the first attempt before a task is dead, when its enqueue
            gives none (``0``: the first failure is final).
        backoff_base_ms: Delay before the first retry.
        backoff_cap_ms: Upper bound of a retry delay.
        retention_ms: How long finished tasks are kept.
        delay_ms: Delay of a task whose enqueue gives none (SQS DelaySeconds of the queue).
        max_depth: Most tasks pending or leased in this queue; 0: no bound of its own.
        max_message_bytes: Largest payload the edges take for this queue; 0: their default.
        wait_ms: Long-poll wait of a lease that gives none (SQS ReceiveMessageWaitTimeSeconds).
        dead_letter_queue: Where a task that dies here moves, as a new pending task; None:
            dead tasks stay here with status ``dead``.
        tags: Free key/value labels (SQS queue tags), sorted by key.
        content_dedup: A FIFO queue deduplicates messages sent without a deduplication id
            by their content (SQS ContentBasedDeduplication; applied by the SQS API).
        rate_limit: Most leases of this queue's tasks per second, minute or hour, over the
            whole cluster (``"100/s"``, canonical text of ``rate_limits.check_rate_limit``);
            None: no limit of its own.
    """

    lease_ms: int | None = None
    max_retries: int | None = None
    backoff_base_ms: int | None = None
    backoff_cap_ms: int | None = None
    retention_ms: int | None = None
    delay_ms: int = 0
    max_depth: int = 0
    max_message_bytes: int = 0
    wait_ms: int = 0
    dead_letter_queue: str | None = None
    tags: tuple[tuple[str, str], ...] = ()
    content_dedup: bool = False
    rate_limit: str | None = None

    def to_plain(self) -> dict[str, Any]:
        """Return the settings as a plain dict (tags as an object)."""
        plain = {field.name: getattr(self, field.name) for field in dataclasses.fields(self)}
        plain["tags"] = dict(self.tags)
        return plain


#: The settings fields and the rule of each (the optional ones may also be None).
_INT_RULES: dict[str, fields.IntRule] = {
    "lease_ms": fields.LEASE_MS, "max_retries": fields.MAX_RETRIES,
    "backoff_base_ms": fields.BACKOFF_MS, "backoff_cap_ms": fields.BACKOFF_MS,
    "retention_ms": fields.RETENTION_MS, "delay_ms": fields.DELAY_MS,
    "max_depth": fields.MAX_DEPTH, "max_message_bytes": fields.MAX_MESSAGE_BYTES,
    "wait_ms": fields.WAIT_MS,
}
_OPTIONAL = frozenset({"lease_ms", "max_retries", "backoff_base_ms", "backoff_cap_ms",
                       "retention_ms", "dead_letter_queue", "rate_limit"})
SETTING_NAMES = frozenset(field.name for field in dataclasses.fields(QueueSettings))


def check_settings(obj: Any, prefix: str = "settings.", *,
                   base: QueueSettings | None = None) -> QueueSettings:
    """Build settings from a plain dict, checking each field; fields absent keep ``base``'s
    value (the defaults when None). A field given as None clears an optional setting, and
    sets the others back to their default.

    Raises:
        InvalidCommand: naming the first bad field.
    """
    if not isinstance(obj, Mapping):
        raise InvalidCommand(prefix.rstrip("."), "settings must be an object")
    changes: dict[str, Any] = {}
    for name, value in obj.items():
        field = f"{prefix}{name}"
        if name not in SETTING_NAMES:
            known = ", ".join(sorted(SETTING_NAMES))
            raise InvalidCommand(field, f"unknown setting; known: {known}")
        if value is None:
            changes[name] = None if name in _OPTIONAL else _DEFAULTS[name]
        elif name in _INT_RULES:
            rule = _INT_RULES[name]
            if name == "max_message_bytes" and value == 0:
                changes[name] = 0
            else:
                changes[name] = rule.check(value, field)
        elif name == "rate_limit":
            changes[name] = check_rate_limit(value, field).text
        elif name == "dead_letter_queue":
            changes[name] = fields.QUEUE_NAME.check(value, field)
        elif name == "content_dedup":
            if not isinstance(value, bool):
                raise InvalidCommand(field, f"{field} must be true or false")
            changes[name] = value
        else:  # tags
            changes[name] = _check_tags(value, field)
    settings = dataclasses.replace(base if base is not None else QueueSettings(), **changes)
    if (settings.backoff_base_ms is not None and settings.backoff_cap_ms is not None
            and settings.backoff_base_ms > settings.backoff_cap_ms):
        raise InvalidCommand(f"{prefix}backoff_base_ms",
                             "backoff_base_ms must not exceed backoff_cap_ms")
    return settings


_DEFAULTS = QueueSettings().to_plain()
_DEFAULTS["tags"] = ()


def _check_tags(value: Any, field: str) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, Mapping):
        raise InvalidCommand(field, f"{field} must be an object of strings")
    if len(value) > fields.MAX_TAGS:
        raise InvalidCommand(field, f"{field}: at most {fields.MAX_TAGS} tags")
    return tuple(sorted((fields.TAG_KEY.check(key, f"{field}.{key}"),
                         fields.TAG_VALUE.check(item, f"{field}.{key}"))
                        for key, item in value.items()))


def effective_config(cluster: QueueConfig, settings: QueueSettings) -> QueueConfig:
    """The ``QueueConfig`` a queue's tasks follow: the cluster's, with the queue's choices.

    The queue's ``max_depth`` is not merged: it bounds the queue, the cluster's bounds the
    sum over all queues, and both hold. A choice the cluster's bounds would refuse (a lease
    longer than ``max_lease_ms``) is clipped to them, so the result is always a valid config.
    """
    changes: dict[str, Any] = {}
    if settings.lease_ms is not None:
        changes["lease_ms"] = min(settings.lease_ms, cluster.max_lease_ms)
    if settings.max_retries is not None:
        changes["max_retries"] = settings.max_retries
    if settings.backoff_cap_ms is not None:
        changes["backoff_cap_ms"] = settings.backoff_cap_ms
    if settings.backoff_base_ms is not None:
        changes["backoff_base_ms"] = settings.backoff_base_ms
    if settings.retention_ms is not None:
        changes["retention_ms"] = settings.retention_ms
    return dataclasses.replace(cluster, **changes)


# ---------------------------------------------------------------- commands


@dataclass(frozen=True, slots=True, kw_only=True)
class CreateQueue:
    """Create queue ``name``; creating it again with equal settings changes nothing (as
    SQS's CreateQueue), with other settings is refused (``queue_exists``)."""

    name: str
    settings: QueueSettings = QueueSettings()
    now_ms: int = 0

    def to_plain(self) -> dict[str, Any]:
        """Return ``{"op": "create_queue", ...}``."""
        return {"op": "create_queue", "now_ms": self.now_ms, "name": self.name,
                "settings": self.settings.to_plain()}


@dataclass(frozen=True, slots=True, kw_only=True)
class UpdateQueue:
    """Change some settings of queue ``name``: the fields of ``changes`` (a plain dict checked
    by ``check_settings``), the others kept."""

    name: str
    changes: tuple[tuple[str, Any], ...]
    now_ms: int = 0

    def to_plain(self) -> dict[str, Any]:
        """Return ``{"op": "update_queue", ...}``."""
        return {"op": "update_queue", "now_ms": self.now_ms, "name": self.name,
                "changes": changes_to_plain(self.changes)}


@dataclass(frozen=True, slots=True, kw_only=True)
class DeleteQueue:
    """Delete queue ``name`` and every task in it (``default`` cannot be deleted)."""

    name: str
    now_ms: int = 0

    def to_plain(self) -> dict[str, Any]:
        """Return ``{"op": "delete_queue", ...}``."""
        return {"op": "delete_queue", "now_ms": self.now_ms, "name": self.name}


@dataclass(frozen=True, slots=True, kw_only=True)
class PurgeQueue:
    """Delete every task of queue ``name`` that is pending, leased or dead (SQS PurgeQueue);
    completed and cancelled tasks stay until their retention ends."""

    name: str
    now_ms: int = 0

    def to_plain(self) -> dict[str, Any]:
        """Return ``{"op": "purge_queue", ...}``."""
        return {"op": "purge_queue", "now_ms": self.now_ms, "name": self.name}


@dataclass(frozen=True, slots=True, kw_only=True)
class MoveTasks:
    """Move up to ``max_tasks`` pending or dead tasks of ``source`` (in log order) to
    ``destination``, or each back to the queue it was dead-lettered from when None (SQS
    StartMessageMoveTask); moved tasks are pending, visible now, attempts reset."""

    source: str
    destination: str | None = None
    max_tasks: int = fields.MOVE_MAX_TASKS.high
    now_ms: int = 0

    def to_plain(self) -> dict[str, Any]:
        """Return ``{"op": "move_tasks", ...}``."""
        return {"op": "move_tasks", "now_ms": self.now_ms, "source": self.source,
                "destination": self.destination, "max_tasks": self.max_tasks}


QueueCommand = CreateQueue | UpdateQueue | DeleteQueue | PurgeQueue | MoveTasks


def _name(obj: Mapping[str, Any], key: str = "name", *, required: bool = True) -> str | None:
    value = obj.get(key)
    if value is None:
        if required:
            raise InvalidCommand(key, f"{key} is required")
        return None
    return fields.QUEUE_NAME.check(value, key)


def _create_queue(obj: Mapping[str, Any], now_ms: int) -> CreateQueue:
    name = _name(obj)
    settings = obj.get("settings")
    checked = QueueSettings() if settings is None else check_settings(settings)
    return CreateQueue(name=name, settings=checked, now_ms=now_ms)


def _update_queue(obj: Mapping[str, Any], now_ms: int) -> UpdateQueue:
    name = _name(obj)
    changes = obj.get("changes")
    if not isinstance(changes, Mapping) or not changes:
        raise InvalidCommand("changes", "changes must be an object naming settings")
    check_settings(changes, "changes.")
    frozen = tuple(sorted((key, (tuple(sorted(value.items())) if key == "tags"
                                 and value is not None else value))
                          for key, value in changes.items()))
    return UpdateQueue(name=name, changes=frozen, now_ms=now_ms)


def _delete_queue(obj: Mapping[str, Any], now_ms: int) -> DeleteQueue:
    return DeleteQueue(name=_name(obj), now_ms=now_ms)


def _purge_queue(obj: Mapping[str, Any], now_ms: int) -> PurgeQueue:
    return PurgeQueue(name=_name(obj), now_ms=now_ms)


def _move_tasks(obj: Mapping[str, Any], now_ms: int) -> MoveTasks:
    max_tasks = obj.get("max_tasks")
    return MoveTasks(source=_name(obj, "source"),
                     destination=_name(obj, "destination", required=False),
                     max_tasks=(fields.MOVE_MAX_TASKS.high if max_tasks is None
                                else fields.MOVE_MAX_TASKS.check(max_tasks, "max_tasks")),
                     now_ms=now_ms)


#: op -> (parser, its fields); ``commands.command_from_plain`` dispatches on these too.
PARSERS = {
    "create_queue": (_create_queue, {"name", "settings"}),
    "update_queue": (_update_queue, {"name", "changes"}),
    "delete_queue": (_delete_queue, {"name"}),
    "purge_queue": (_purge_queue, {"name"}),
    "move_tasks": (_move_tasks, {"source", "destination", "max_tasks"}),
}


def changes_to_plain(changes: tuple[tuple[str, Any], ...]) -> dict[str, Any]:
    """The plain dict of an ``UpdateQueue``'s changes, as ``check_settings`` reads it."""
    return {key: (dict(value) if key == "tags" and value is not None else value)
            for key, value in changes}


def settings_from_snapshot(obj: Any) -> QueueSettings:
    """Settings of a queue as a snapshot holds them (``QueueSettings.to_plain``).

    Raises:
        ValueError: on any bad field.
    """
    try:
        return check_settings(obj, "queue.")
    except InvalidCommand as exc:
        raise ValueError(str(exc)) from None

