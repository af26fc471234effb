"""``dqueue-cli workers`` and ``dqueue-cli tasks list``: who runs what.

    dqueue-cli workers                       # one row per worker seen by its heartbeats
    dqueue-cli --json workers
    dqueue-cli tasks list --status leased --queue emails   # who holds which task, until when
    dqueue-cli tasks list --status pending --type email --limit 20
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence
from typing import Any, TextIO

from dqueue.client.http_client import Client, collect_pages
from dqueue.client.task import Task, format_time_ms, parse_time_ms
from dqueue.queue.task import TaskStatus

Output = Callable[[argparse.Namespace, TextIO, Any, str], int]
Table = Callable[..., str]
#: Most tasks ``tasks list`` shows (it follows cursors up to ``--limit``).
MAX_LIST = 10_000


def _age(text: Any, now_ms: int) -> str | None:
    """``3s ago`` for an RFC 3339 time (None when it is not one)."""
    if not isinstance(text, str):
        return None
    try:
        seconds = max(0, now_ms - parse_time_ms(text)) // 1000
    except ValueError:
        return None
    return f"{seconds}s ago" if seconds < 120 else f"{seconds // 60}m ago"


def _names(values: Any) -> str:
    return ",".join(str(value) for value in values) if values else "-"


def workers_view(items: Sequence[dict[str, Any]], table: Table, now_ms: int) -> str:
    """One row per worker: where it runs, what it leases, how busy it is, when last heard."""
    if not items:
        return "(no workers: none sent a heartbeat within 3 of its intervals)"
    rows = [(item.get("worker_id"), item.get("host"), item.get("pid"), item.get("transport"),
             _names(item.get("queues")), _names(item.get("types")), item.get("concurrency"),
             item.get("in_flight"), item.get("started_at"),
             _age(item.get("last_heartbeat_at"), now_ms))
            for item in items]
    return table(rows, ["WORKER", "HOST", "PID", "TRANSPORT", "QUEUES", "TYPES", "CONCURRENCY",
                        "IN FLIGHT", "STARTED", "LAST HEARTBEAT"])


def leased_view(tasks: Sequence[Task], table: Table, now_ms: int) -> str:
    """Leased tasks with their holder and the lease's end (the holder shows as ``-`` to a
    token without the ``consume`` role: the API hides it, docs/security.md)."""
    if not tasks:
        return "(none)"
    rows = []
    for task in tasks:
        lease = task.lease
        expires = None if lease is None else lease.expires_at_ms
        rows.append((task.id, task.type, task.queue, task.attempts,
                     (lease.worker_id or None) if lease else None,
                     None if expires is None else format_time_ms(expires),
                     None if expires is None else f"{(expires - now_ms) / 1000:.1f}s"))
    return table(rows, ["ID", "TYPE", "QUEUE", "ATTEMPTS", "WORKER", "LEASE EXPIRES",
                        "LEFT"])


def tasks_list_view(tasks: Sequence[Task], table: Table) -> str:
    """Tasks of any other status, one row each."""
    if not tasks:
        return "(none)"
    return table([(t.id, t.type, t.queue, t.status.value, t.attempts, t.priority,
                   format_time_ms(t.updated_at_ms), (t.last_error or "")[:60]) for t in tasks],
                 ["ID", "TYPE", "QUEUE", "STATUS", "ATTEMPTS", "PRIORITY", "UPDATED",
                  "LAST ERROR"])


def run_workers(client: Client, args: argparse.Namespace, out: TextIO, emit: Output,
                table: Table, now_ms: int | None = None) -> int:
    """``dqueue-cli workers``: the workers table (``GET /workers``)."""
    items = client.workers()
    now = int(time.time() * 1000) if now_ms is None else now_ms
    return emit(args, out, items, workers_view(items, table, now))


def run_tasks(client: Client, args: argparse.Namespace, out: TextIO, emit: Output,
              table: Table, now_ms: int | None = None) -> int:
    """``dqueue-cli tasks list``: tasks of one status (of a queue, of a type).

    Raises:
        ValueError: a ``--limit`` out of range (printed as a usage error).
    """
    if not 1 <= args.limit <= MAX_LIST:
        raise ValueError(f"--limit must be from 1 to {MAX_LIST}")
    tasks = collect_pages(lambda page_limit, cursor: client.list_tasks(
        args.status, type=args.type, queue=args.queue, limit=page_limit, cursor=cursor),
        args.limit)
    now = int(time.time() * 1000) if now_ms is None else now_ms
    text = (leased_view(tasks, table, now) if args.status == TaskStatus.LEASED.value
            else tasks_list_view(tasks, table))
    return emit(args, out, [task.to_json() for task in tasks], text)


def add_parsers(sub: Any, common: argparse.ArgumentParser,
                workers_fn: Callable[..., int], tasks_fn: Callable[..., int]) -> None:
    """Add ``workers`` and ``tasks list`` to the CLI's subcommands."""
    help_text = "list the workers seen by their heartbeats (GET /workers)"
    sp = sub.add_parser("workers", parents=[common], help=help_text, description=help_text)
    sp.set_defaults(fn=workers_fn)
    help_text = "list tasks by status, queue and type"
    tasks = sub.add_parser("tasks", parents=[common], help=help_text, description=help_text)
    tasks.set_defaults(fn=tasks_fn)
    tsub = tasks.add_subparsers(dest="tasks_command", required=True, metavar="ACTION")
    sp = tsub.add_parser("list", parents=[common], help="list tasks of one status; "
                         "--status leased shows each lease's holder and end")
    sp.add_argument("--status", required=True, choices=[s.value for s in TaskStatus],
                    help="the status to list")
    sp.add_argument("--queue", help="only this queue (default: every queue)")
    sp.add_argument("--type", help="only this task type")
    sp.add_argument("--limit", type=int, default=100,
                    help=f"most tasks shown, oldest first (default 100, at most {MAX_LIST})")
