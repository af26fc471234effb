"""``dqueue-cli``: enqueue, inspect and operate a dqueue cluster from the shell.

    dqueue-cli enqueue -type email -payload '{"to":"user@example.com"}'
    dqueue-cli status TASK_ID
    dqueue-cli --json stats
    dqueue-cli queue create emails --lease 60s --max-retries 5
    dqueue-cli workers
    dqueue-cli tasks list --status leased --queue emails
    dqueue-cli keys init keys --members n1,n2,n3 --workers w1

Long options take one dash or two (``-type`` and ``--type``). The node is ``--server`` (repeatable
or comma-separated), else ``$DQUEUE_SERVER``, else http://localhost:8080. Output is a table for
people, or JSON with ``--json``. Exit status: 0 success, 1 error, 2 usage, 3 cluster unavailable,
4 not found, 5 conflict (lease or state); errors print the server's message on stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, TextIO

from dqueue import (
    __version__,
    cli_cluster,
    cli_queues,
    cli_rate_limits,
    cli_schedules,
    cli_workers,
)
from dqueue.client.env import DEFAULT_SERVER, SERVER_ENV, TOKEN_ENV, resolve_servers
from dqueue.client.errors import (
    DQueueError,
    InvalidState,
    LeaseConflict,
    NoLeader,
    QueueExists,
    QueueNotFound,
    TaskNotFound,
    Unavailable,
)
from dqueue.client.http_client import Client, RetryPolicy
from dqueue.client.task import Lease, Task, format_time_ms
from dqueue.durations import parse_duration_ms
from dqueue.keys import PeerKeyError, create_cluster_keys
from dqueue.tokens import TokenFileError, add_token, list_tokens, parse_roles, remove_token

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_UNAVAILABLE, EXIT_NOT_FOUND, EXIT_CONFLICT = range(6)
def _long_options(parser: argparse.ArgumentParser) -> set[str]:
    names: set[str] = set()
    for action in parser._actions:
        names.update(o for o in action.option_strings if o.startswith("--"))
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                names |= _long_options(sub)
    return names


def normalize_argv(argv: Sequence[str], parser: argparse.ArgumentParser) -> list[str]:
    """Rewrite single-dash long options the parser knows (``-type``) to ``--type``.

    Anything else (values, negative numbers, ``-h``) is left as it is.
    """
    known = _long_options(parser)
    out: list[str] = []
    for token in argv:
        if token.startswith("-") and not token.startswith("--") and len(token) > 2:
            name, eq, value = token[1:].partition("=")
            if "--" + name in known:
                token = f"--{name}{eq}{value}"
        out.append(token)
    return out


# -- output ----------------------------------------------------------------------------


def table(rows: Sequence[Sequence[Any]], header: Sequence[str] | None = None) -> str:
    """Rows as aligned text columns (None shows as ``-``)."""
    cells = [[("-" if c is None else str(c)) for c in row] for row in rows]
    if header:
        cells.insert(0, list(header))
    if not cells:
        return ""
    widths = [max(len(r[i]) for r in cells if i < len(r)) for i in range(max(map(len, cells)))]
    lines = ["  ".join(c.ljust(widths[i]) for i, c in enumerate(r)).rstrip() for r in cells]
    if header:
        lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def task_view(task: Task) -> str:
    """One task as a two-column table."""
    rows: list[tuple[str, Any]] = [
        ("id", task.id), ("type", task.type), ("status", task.status.value),
        ("priority", task.priority), ("attempts", f"{task.attempts} (max retries "
                                                   f"{task.max_retries})"),
        ("payload", json.dumps(task.payload)), ("idempotency_key", task.idempotency_key),
        ("created_at", format_time_ms(task.created_at_ms)),
        ("updated_at", format_time_ms(task.updated_at_ms)),
        ("visible_at", format_time_ms(task.visible_at_ms)),
    ]
    if task.lease:
        rows += [("lease.worker_id", task.lease.worker_id), ("lease.token", task.lease.token),
                 ("lease.expires_at", format_time_ms(task.lease.expires_at_ms))]
    if task.result is not None:
        rows.append(("result", json.dumps(task.result)))
    if task.last_error:
        rows.append(("last_error", task.last_error))
    if task.duplicate:
        rows.append(("duplicate", "yes (idempotency key seen before)"))
    text = table(rows)
    if task.last_traceback:  # several lines: below the table, indented
        lines = task.last_traceback.rstrip("\n").split("\n")
        text += "\nlast_traceback:\n" + "\n".join("  " + line for line in lines)
    return text


def tasks_view(tasks: Sequence[Task]) -> str:
    """Tasks as one row each."""
    if not tasks:
        return "(none)"
    return table([(t.id, t.type, t.status.value, t.attempts, t.priority,
                   format_time_ms(t.updated_at_ms), (t.last_error or "")[:60]) for t in tasks],
                 ["ID", "TYPE", "STATUS", "ATTEMPTS", "PRIORITY", "UPDATED", "LAST ERROR"])


def stats_view(stats: dict[str, Any]) -> str:
    """Counts by status, by type, and the Raft figures."""
    parts = []
    counts = stats.get("tasks") or {}
    parts.append(table([(k, v) for k, v in counts.items()], ["STATUS", "TASKS"]))
    by_type = stats.get("by_type") or {}
    if by_type:
        statuses = sorted({s for per in by_type.values() for s in per})
        parts.append(table([(t, *(per.get(s, 0) for s in statuses))
                            for t, per in sorted(by_type.items())],
                           ["TYPE", *(s.upper() for s in statuses)]))
    raft = stats.get("raft") or {}
    if raft:
        parts.append(table([(k, _plain(v)) for k, v in raft.items()], ["RAFT", "VALUE"]))
    return "\n\n".join(parts)


def _plain(value: Any) -> str:
    return json.dumps(value) if isinstance(value, dict | list) else str(value)


def kv_view(obj: dict[str, Any]) -> str:
    """A flat object as a two-column table."""
    return table([(k, _plain(v)) for k, v in obj.items()])


# -- commands --------------------------------------------------------------------------


def _json_or(args: argparse.Namespace, out: TextIO, obj: Any, text: str) -> int:
    out.write((json.dumps(obj, indent=2, sort_keys=True) if args.json else text) + "\n")
    return EXIT_OK


def _task_json(task: Task) -> dict[str, Any]:
    return task.to_json()


def cmd_enqueue(client: Client, args: argparse.Namespace, out: TextIO) -> int:
    try:
        payload = json.loads(args.payload) if args.payload is not None else None
    except ValueError as exc:
        raise DQueueError(f"-payload is not valid JSON: {exc}", code="invalid_json",
                          field="payload") from None
    delay = parse_duration_ms(args.delay) / 1000 if args.delay else None
    task = client.enqueue(args.type, payload, priority=args.priority,
                          max_retries=args.max_retries, idempotency_key=args.idempotency_key,
                          delay=delay, queue=args.queue)
    return _json_or(args, out, _task_json(task), task_view(task))


def cmd_status(client: Client, args: argparse.Namespace, out: TextIO) -> int:
    task = client.get(args.id)
    return _json_or(args, out, _task_json(task), task_view(task))


def cmd_stats(client: Client, args: argparse.Namespace, out: TextIO) -> int:
    stats = client.stats()
    return _json_or(args, out, stats, stats_view(stats))


def cmd_health(client: Client, args: argparse.Namespace, out: TextIO) -> int:
    health = client.health()
    return _json_or(args, out, health, kv_view(health))


def cmd_lease(client: Client, args: argparse.Namespace, out: TextIO) -> int:
    types = [t for t in (args.types or "").split(",") if t] or None
    lease_s = parse_duration_ms(args.lease) / 1000 if args.lease else None
    wait_s = parse_duration_ms(args.wait) / 1000 if args.wait else None
    queues = [q for q in (args.queues or "").split(",") if q] or None
    tasks = client.lease_many(args.max_tasks, args.worker_id, types=types,
                              lease_seconds=lease_s, wait_seconds=wait_s, queues=queues)
    if args.json:
        return _json_or(args, out, [_task_json(t) for t in tasks], "")
    if not tasks:
        out.write("no task available\n")
        return EXIT_OK
    out.write("\n\n".join(task_view(t) for t in tasks) + "\n")
    return EXIT_OK


def _lease_target(client: Client, args: argparse.Namespace) -> Task:
    """The task to ack/nack/extend, carrying its lease token (a lease is held only by it)."""
    return Task(id=args.id, type="", lease=Lease(args.worker_id or client.worker_id,
                                                  args.lease_token, 0))


def cmd_ack(client: Client, args: argparse.Namespace, out: TextIO) -> int:
    task = client.ack(_lease_target(client, args), args.worker_id)
    return _json_or(args, out, _task_json(task), task_view(task))


def cmd_nack(client: Client, args: argparse.Namespace, out: TextIO) -> int:
    task = client.nack(_lease_target(client, args), args.reason or "",
                       dead_letter=args.dead_letter, worker_id=args.worker_id)
    return _json_or(args, out, _task_json(task), task_view(task))


def cmd_extend(client: Client, args: argparse.Namespace, out: TextIO) -> int:
    lease_s = parse_duration_ms(args.lease) / 1000 if args.lease else None
    task = client.extend(_lease_target(client, args), lease_s, worker_id=args.worker_id)
    return _json_or(args, out, _task_json(task), task_view(task))


def cmd_cancel(client: Client, args: argparse.Namespace, out: TextIO) -> int:
    task = client.cancel(args.id)
    return _json_or(args, out, _task_json(task), task_view(task))


def cmd_dlq(client: Client, args: argparse.Namespace, out: TextIO) -> int:
    if args.dlq_command == "list":
        tasks = client.dead_letters(type=args.type, limit=args.limit)
        return _json_or(args, out, [_task_json(t) for t in tasks], tasks_view(tasks))
    if args.dlq_command == "redrive":
        n = client.redrive(args.id, type=args.type)
        return _json_or(args, out, {"redriven": n}, f"redriven: {n}")
    n = client.purge(type=args.type)
    return _json_or(args, out, {"purged": n}, f"purged: {n}")


def cmd_queue(client: Client, args: argparse.Namespace, out: TextIO) -> int:
    return cli_queues.run(client, args, out, _json_or, table)


def cmd_schedule(client: Client, args: argparse.Namespace, out: TextIO) -> int:
    return cli_schedules.run(client, args, out, _json_or, table)


def cmd_rate_limit(client: Client, args: argparse.Namespace, out: TextIO) -> int:
    return cli_rate_limits.run(client, args, out, _json_or, table)


def cmd_workers(client: Client, args: argparse.Namespace, out: TextIO) -> int:
    return cli_workers.run_workers(client, args, out, _json_or, table)


def cmd_tasks(client: Client, args: argparse.Namespace, out: TextIO) -> int:
    return cli_workers.run_tasks(client, args, out, _json_or, table)


def cmd_cluster(client: Client, args: argparse.Namespace, out: TextIO) -> int:
    return cli_cluster.run(client, args, out, _json_or, table)


def cmd_watch(client: Client, args: argparse.Namespace, out: TextIO) -> int:
    interval_s = parse_duration_ms(args.interval) / 1000
    clear = out.isatty() and not args.json
    shown = 0
    try:
        while args.count is None or shown < args.count:
            stats = client.stats()
            if args.json:
                out.write(json.dumps(stats, sort_keys=True) + "\n")
            else:
                if clear:
                    out.write("\x1b[H\x1b[2J")
                out.write(time.strftime("%H:%M:%S ") + "dqueue stats\n" + stats_view(stats)
                          + "\n\n")
            out.flush()
            shown += 1
            if args.count is None or shown < args.count:
                time.sleep(interval_s)
    except KeyboardInterrupt:
        pass
    return EXIT_OK


def _id_list(text: str | None) -> list[str]:
    return [part.strip() for part in (text or "").split(",") if part.strip()]


def cmd_keys(client: Client, args: argparse.Namespace, out: TextIO) -> int:
    """``keys init OUT``: CURVE keys for every member and worker (docs/security.md)."""
    del client  # local files only
    try:
        written = create_cluster_keys(args.out, _id_list(args.members), _id_list(args.workers),
                                      force=args.force)
    except PeerKeyError as exc:
        sys.stderr.write(f"dqueue-cli: keys init: {exc}\n")
        return EXIT_ERROR
    rows = [[w.owner, w.kind, w.key_id, w.path] for w in written]
    text = table(rows, ["owner", "kind", "key", "file"]) + (
        f"\ncopy {os.path.join(args.out, '<id>')}/ to each node and start it with "
        "--secure-dir pointing at it")
    return _json_or(args, out, [{"owner": w.owner, "kind": w.kind, "key": w.key_id,
                                 "path": w.path} for w in written], text)


SECURE_DIR_ENV = "DQUEUE_SECURE_DIR"


def cmd_tokens(client: Client, args: argparse.Namespace, out: TextIO) -> int:
    """``tokens add|list|rm``: the HTTP bearer tokens of a node's secure folder."""
    del client  # local files only
    secure_dir = args.secure_dir or os.environ.get(SECURE_DIR_ENV)
    if not secure_dir:
        raise ValueError(f"tokens: pass --secure-dir DIR (or set {SECURE_DIR_ENV}): the "
                         "node's secure folder")
    try:
        if args.tokens_command == "add":
            token, entry = add_token(secure_dir, args.name, parse_roles(args.roles))
            roles = ",".join(entry.to_json()["roles"])
            return _json_or(args, out, {"name": entry.name, "roles": entry.to_json()["roles"],
                                        "token": token, "file": os.path.join(secure_dir,
                                                                             "tokens.json")},
                            f"{token}\n(token {entry.name!r}, roles {roles}: shown once, the "
                            "node keeps only its hash; send it as Authorization: Bearer, "
                            "--token or DQUEUE_TOKEN)")
        if args.tokens_command == "rm":
            entry = remove_token(secure_dir, args.name)
            return _json_or(args, out, {"removed": entry.name}, f"removed: {entry.name}")
        entries = list_tokens(secure_dir)
        return _json_or(args, out, [{k: v for k, v in e.to_json().items() if k != "sha256"}
                                    for e in entries],
                        table([(e.name, ",".join(e.to_json()["roles"]), e.created_at or None)
                               for e in entries], ["NAME", "ROLES", "CREATED"])
                        if entries else "(no tokens)")
    except TokenFileError as exc:
        raise DQueueError(str(exc), code=f"tokens {args.tokens_command}") from None


# -- parser ----------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of dqueue-cli (global options work before or after the command)."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--server", action="append", default=argparse.SUPPRESS,
                        help="node URL (repeatable or comma-separated); default "
                             f"${SERVER_ENV} or {DEFAULT_SERVER}")
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                        help="print JSON instead of tables")
    common.add_argument("--timeout", default=argparse.SUPPRESS,
                        help="give up retrying after this long (default 10s)")
    common.add_argument("--token", default=argparse.SUPPRESS,
                        help=f"bearer token for the node's HTTP API (default ${TOKEN_ENV})")
    common.add_argument("--ca-file", default=argparse.SUPPRESS,
                        help="PEM file of the CA that signed an https:// proxy's certificate")
    p = argparse.ArgumentParser(prog="dqueue-cli", parents=[common],
                                description="Operate a dqueue cluster.")
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, fn: Callable[..., int], help: str) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, parents=[common], help=help, description=help)
        sp.set_defaults(fn=fn)
        return sp

    sp = add("enqueue", cmd_enqueue, "enqueue a task")
    sp.add_argument("--type", required=True, help="the task type handlers register for")
    sp.add_argument("--payload", help="JSON value (default null)")
    sp.add_argument("--priority", type=int, help="higher is leased first (default 0)")
    sp.add_argument("--max-retries", type=int,
                    help="retries after the first attempt (default: the queue's)")
    sp.add_argument("--idempotency-key",
                    help="an enqueue repeating a live key returns the first task")
    sp.add_argument("--delay", help="e.g. 30s: visible only after this long")
    sp.add_argument("--queue", help="named queue (default: default)")
    add("status", cmd_status, "show one task").add_argument("id", help="the task id")
    add("stats", cmd_stats, "counts by status and type, Raft figures")
    add("health", cmd_health, "the node's role, term, leader and indexes")
    sp = add("lease", cmd_lease, "lease tasks (as a worker would)")
    sp.add_argument("--worker-id", help="lease holder id (default: a random sdk-... id)")
    sp.add_argument("--types", help="comma-separated task types")
    sp.add_argument("--queues", help="comma-separated queues (default: default)")
    sp.add_argument("--lease", help="lease duration, e.g. 30s")
    sp.add_argument("--wait", help="long-poll up to this long, e.g. 5s")
    sp.add_argument("--max-tasks", type=int, default=1,
                    help="lease up to this many tasks, 1 to 100 (default 1)")
    for name, fn, text in (("ack", cmd_ack, "complete a leased task"),
                           ("nack", cmd_nack, "fail a leased task"),
                           ("extend", cmd_extend, "extend a lease")):
        sp = add(name, fn, text)
        sp.add_argument("id", help="the leased task's id")
        sp.add_argument("--worker-id", help="the worker id the task was leased under "
                                            "(default: a random sdk-... id)")
        sp.add_argument("--lease-token", required=True,
                        help="the lease.token of the leased task (`lease` prints it)")
        if name == "nack":
            sp.add_argument("--reason", help="why it failed, kept as last_error")
            sp.add_argument("--dead-letter", action="store_true",
                            help="dead-letter it now instead of retrying")
        if name == "extend":
            sp.add_argument("--lease", help="new lease from now, e.g. 60s")
    add("cancel", cmd_cancel, "cancel a pending task").add_argument("id", help="the task id")
    dlq = add("dlq", cmd_dlq, "the dead-letter queue: list, redrive, purge")
    dsub = dlq.add_subparsers(dest="dlq_command", required=True, metavar="ACTION")
    sp = dsub.add_parser("list", parents=[common], help="list dead tasks")
    sp.add_argument("--type", help="only tasks of this type")
    sp.add_argument("--limit", type=int, default=100,
                    help="list at most this many (default 100)")
    sp = dsub.add_parser("redrive", parents=[common], help="re-queue dead tasks")
    sp.add_argument("id", nargs="?", help="one task (default: every dead task)")
    sp.add_argument("--type", help="only tasks of this type")
    sp = dsub.add_parser("purge", parents=[common], help="delete dead tasks")
    sp.add_argument("--type", help="only tasks of this type")
    cli_queues.add_parser(sub, common, cmd_queue)
    cli_schedules.add_parser(sub, common, cmd_schedule)
    cli_rate_limits.add_parser(sub, common, cmd_rate_limit)
    cli_workers.add_parsers(sub, common, cmd_workers, cmd_tasks)
    cli_cluster.add_parser(sub, common, cmd_cluster)
    keys = add("keys", cmd_keys, "CURVE keys of the peer transport (docs/security.md)")
    sp = keys.add_subparsers(dest="keys_command", required=True, metavar="ACTION").add_parser(
        "init", parents=[common], help="create a key folder per member and per worker")
    sp.add_argument("out", help="folder to write OUT/<id>/ into")
    sp.add_argument("--members", required=True, help="member ids, comma-separated")
    sp.add_argument("--workers", help="worker ids, comma-separated")
    sp.add_argument("--force", action="store_true", help="replace existing keys")
    tokens = add("tokens", cmd_tokens, "HTTP bearer tokens of a node (docs/security.md)")
    tsub = tokens.add_subparsers(dest="tokens_command", required=True, metavar="ACTION")
    add_sp = tsub.add_parser("add", parents=[common], help="create a token and print it once")
    add_sp.add_argument("name", help="the token's name (who holds it)")
    add_sp.add_argument("--roles", required=True,
                        help="comma-separated: produce, consume, read, admin")
    rm_sp = tsub.add_parser("rm", parents=[common], help="remove a token")
    rm_sp.add_argument("name", help="the name of the token to remove")
    for action in (add_sp, rm_sp, tsub.add_parser("list", parents=[common],
                                                  help="names and roles")):
        action.add_argument("--secure-dir", help="the node's secure folder (default "
                                                 f"${SECURE_DIR_ENV})")
    sp = add("watch", cmd_watch, "refresh stats until Ctrl-C")
    sp.add_argument("--interval", default="2s", help="time between refreshes (default 2s)")
    sp.add_argument("--count", type=int, help="stop after this many refreshes")
    return p


def main(argv: Sequence[str] | None = None, out: TextIO | None = None,
         err: TextIO | None = None) -> int:
    """Entry point of ``dqueue-cli``; returns the exit status."""
    out = out or sys.stdout
    err = err or sys.stderr
    parser = build_parser()
    raw = list(sys.argv[1:] if argv is None else argv)
    try:
        args = parser.parse_args(normalize_argv(raw, parser))
    except SystemExit as exc:
        return EXIT_OK if exc.code == 0 else EXIT_USAGE
    args.json = getattr(args, "json", False)
    try:
        timeout_ms = parse_duration_ms(getattr(args, "timeout", "10s"))
    except ValueError as exc:
        err.write(f"dqueue-cli: --timeout: {exc}\n")
        return EXIT_USAGE
    try:
        servers = resolve_servers(getattr(args, "server", None))
        client = Client(servers, retry=RetryPolicy(deadline_s=timeout_ms / 1000),
                        timeout_s=max(1.0, timeout_ms / 1000),
                        token=getattr(args, "token", None),
                        ca_file=getattr(args, "ca_file", None))
    except ValueError as exc:
        err.write(f"dqueue-cli: --server: {exc}\n")
        return EXIT_USAGE
    try:
        return args.fn(client, args, out)
    except ValueError as exc:
        err.write(f"dqueue-cli: {exc}\n")
        return EXIT_USAGE
    except DQueueError as exc:
        err.write(f"dqueue-cli: {exc}\n")
        return _exit_code(exc)
    finally:
        client.close()


def _exit_code(exc: DQueueError) -> int:
    if isinstance(exc, TaskNotFound | QueueNotFound):
        return EXIT_NOT_FOUND
    if isinstance(exc, LeaseConflict | InvalidState | QueueExists):
        return EXIT_CONFLICT
    if isinstance(exc, NoLeader | Unavailable):
        return EXIT_UNAVAILABLE
    return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
