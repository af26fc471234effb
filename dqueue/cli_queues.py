"""``dqueue-cli queue``: create, list, show, set, delete, purge and move named queues.

    dqueue-cli queue create emails --lease 60s --max-retries 5 --dead-letter-queue emails-dlq
    dqueue-cli queue list
    dqueue-cli --json queue show emails
    dqueue-cli queue move emails-dlq          # back to the queues the tasks died in

Durations take a unit (``30s``, ``5m``); ``--clear NAME`` sets a setting back to its default.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any, TextIO

from dqueue.client.http_client import Client
from dqueue.durations import parse_duration_ms

Output = Callable[[argparse.Namespace, TextIO, Any, str], int]

# Flag -> (the API's setting name, whether it is a duration given with a unit).
_SETTING_FLAGS: dict[str, tuple[str, bool]] = {
    "lease": ("lease_seconds", True),
    "max_retries": ("max_retries", False),
    "backoff_base": ("backoff_base_seconds", True),
    "backoff_cap": ("backoff_cap_seconds", True),
    "retention": ("retention_seconds", True),
    "delay": ("delay_seconds", True),
    "max_depth": ("max_depth", False),
    "max_message_bytes": ("max_message_bytes", False),
    "wait": ("wait_seconds", True),
    "dead_letter_queue": ("dead_letter_queue", False),
    "rate_limit": ("rate_limit", False),
}
_HELP = {
    "lease": "lease (visibility timeout) when a lease gives none, e.g. 30s",
    "max_retries": "retries after the first attempt before a task is dead",
    "backoff_base": "delay before the first retry, e.g. 1s",
    "backoff_cap": "longest retry delay, e.g. 5m",
    "retention": "how long finished tasks are kept, e.g. 24h",
    "delay": "delay of a task whose enqueue gives none, e.g. 10s",
    "max_depth": "most tasks pending or leased (0: no bound)",
    "max_message_bytes": "largest payload this queue takes",
    "wait": "long-poll wait of a lease that gives none, e.g. 20s",
    "dead_letter_queue": "queue that receives the tasks that die here",
    "rate_limit": "most leases of its tasks over the cluster, N/s, N/m or N/h, e.g. 20/s",
}
_TEXT_FLAGS = ("dead_letter_queue", "rate_limit")
_CLEARABLE = [*sorted(setting for setting, _ in _SETTING_FLAGS.values()), "tags"]


def settings_of(args: argparse.Namespace) -> dict[str, Any]:
    """The settings the flags give, in the API's names and units.

    Raises:
        ValueError: a duration without a unit, or a tag that is not ``KEY=VALUE``.
    """
    settings: dict[str, Any] = {}
    for flag, (name, duration) in _SETTING_FLAGS.items():
        value = getattr(args, flag, None)
        if value is None:
            continue
        settings[name] = parse_duration_ms(value) / 1000 if duration else value
    if getattr(args, "tag", None):
        tags = {}
        for item in args.tag:
            key, eq, value = item.partition("=")
            if not eq or not key:
                raise ValueError(f"--tag {item!r}: write KEY=VALUE")
            tags[key] = value
        settings["tags"] = tags
    for name in getattr(args, "clear", None) or []:
        settings[name] = None
    return settings


def queues_view(queues: list[dict[str, Any]], table: Callable[..., str]) -> str:
    """One row per queue: depth by status and the main settings."""
    if not queues:
        return "(no queues)"
    rows = []
    for queue in queues:
        counts, settings = queue.get("counts") or {}, queue.get("settings") or {}
        rows.append((queue.get("name"), counts.get("pending", 0), counts.get("leased", 0),
                     counts.get("dead", 0), counts.get("completed", 0),
                     _or_default(settings.get("lease_seconds"), "s"),
                     _or_default(settings.get("max_retries"), ""),
                     settings.get("dead_letter_queue") or "-"))
    return table(rows, ["QUEUE", "PENDING", "LEASED", "DEAD", "COMPLETED", "LEASE",
                        "RETRIES", "DEAD LETTERS TO"])


def _or_default(value: Any, unit: str) -> str:
    return "default" if value is None else f"{value:g}{unit}" if unit else str(value)


def queue_view(queue: dict[str, Any], table: Callable[..., str]) -> str:
    """One queue: its counts, then every setting."""
    counts = queue.get("counts") or {}
    parts = [table([(k, v) for k, v in counts.items()], ["STATUS", "TASKS"]),
             table([(k, "default" if v is None else v)
                    for k, v in (queue.get("settings") or {}).items()], ["SETTING", "VALUE"])]
    sources = queue.get("dead_letter_sources")
    if sources:
        parts.append("dead letters of: " + ", ".join(sources))
    return f"queue {queue.get('name')}\n\n" + "\n\n".join(parts)


def run(client: Client, args: argparse.Namespace, out: TextIO, emit: Output,
        table: Callable[..., str]) -> int:
    """Run one ``queue`` action; ``emit`` prints JSON or the text view."""
    action = args.queue_command
    if action == "list":
        queues = client.list_queues(args.prefix)
        return emit(args, out, queues, queues_view(queues, table))
    if action == "show":
        queue = client.get_queue(args.name)
        return emit(args, out, queue, queue_view(queue, table))
    if action in ("create", "set"):
        settings = settings_of(args)
        if action == "set" and not settings:
            raise ValueError("name at least one setting to change (see queue set --help)")
        queue = (client.create_queue(args.name, **settings) if action == "create"
                 else client.update_queue(args.name, **settings))
        return emit(args, out, queue, queue_view(queue, table))
    if action == "delete":
        if not args.yes:
            raise ValueError(f"deleting queue {args.name} deletes its tasks too; "
                             "add --yes to confirm")
        n = client.delete_queue(args.name)
        return emit(args, out, {"deleted": args.name, "tasks_deleted": n},
                    f"deleted queue {args.name} and {n} tasks")
    if action == "purge":
        n = client.purge_queue(args.name)
        return emit(args, out, {"purged": n}, f"purged: {n}")
    n = client.move_tasks(args.name, args.to, max_tasks=args.max_tasks)
    return emit(args, out, {"moved": n}, f"moved: {n}")


def add_parser(sub: Any, common: argparse.ArgumentParser,
               fn: Callable[..., int]) -> None:
    """Add ``queue`` and its actions to the subcommands ``sub`` of dqueue-cli."""
    text = "named queues: create, list, show, set, delete, purge, move"
    queue = sub.add_parser("queue", parents=[common], help=text, description=text)
    queue.set_defaults(fn=fn)
    actions = queue.add_subparsers(dest="queue_command", required=True, metavar="ACTION")
    sp = actions.add_parser("list", parents=[common], help="every queue with its depth")
    sp.add_argument("--prefix", help="only queues whose name starts with this")
    actions.add_parser("show", parents=[common], help="one queue's counts and settings"
                       ).add_argument("name", help="the queue's name")
    for name, text in (("create", "create a queue (again with equal settings: no change)"),
                       ("set", "change settings of a queue; the others stay")):
        sp = actions.add_parser(name, parents=[common], help=text, description=text)
        sp.add_argument("name", help="the queue's name")
        for flag, (_, duration) in _SETTING_FLAGS.items():
            sp.add_argument("--" + flag.replace("_", "-"), dest=flag,
                            type=None if duration or flag in _TEXT_FLAGS else int,
                            help=_HELP[flag])
        sp.add_argument("--tag", action="append", help="KEY=VALUE (repeatable); replaces all")
        if name == "set":
            sp.add_argument("--clear", action="append", choices=_CLEARABLE,
                            help="set this setting back to its default (repeatable)")
    sp = actions.add_parser("delete", parents=[common], help="delete a queue and its tasks")
    sp.add_argument("name", help="the queue's name")
    sp.add_argument("--yes", action="store_true", help="confirm: its tasks are deleted too")
    actions.add_parser("purge", parents=[common],
                       help="delete a queue's pending, leased and dead tasks"
                       ).add_argument("name", help="the queue's name")
    sp = actions.add_parser("move", parents=[common],
                            help="move a queue's pending and dead tasks (a redrive out of a "
                                 "dead-letter queue)")
    sp.add_argument("name", help="the queue to move tasks out of")
    sp.add_argument("--to", help="destination queue (default: where each task died)")
    sp.add_argument("--max-tasks", type=int, help="move at most this many (default 10000)")
