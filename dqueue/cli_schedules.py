"""``dqueue-cli schedule``: add, list, show, rm, pause and resume periodic schedules.

    dqueue-cli schedule add nightly --cron "0 3 * * *" --timezone Europe/Paris --type report
    dqueue-cli schedule add beat --every 30s --type ping --payload '{"n": 1}'
    dqueue-cli schedule list
    dqueue-cli --json schedule show nightly
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any, TextIO

from dqueue.client.http_client import Client
from dqueue.durations import parse_duration_ms

Output = Callable[[argparse.Namespace, TextIO, Any, str], int]


def _when(schedule: dict[str, Any]) -> str:
    if schedule.get("cron"):
        return f"{schedule['cron']} ({schedule.get('timezone') or 'UTC'})"
    return f"every {schedule.get('every_seconds')}s"


def schedules_view(items: list[dict[str, Any]], table: Callable[..., str]) -> str:
    """One row per schedule: when, what, state and the next slot."""
    if not items:
        return "(no schedules)"
    rows = [(item.get("name"), _when(item), (item.get("task") or {}).get("type"),
             (item.get("task") or {}).get("queue"),
             "paused" if item.get("paused") else "active", item.get("catch_up"),
             item.get("next_slot"), item.get("fired"), item.get("last_error"))
            for item in items]
    return table(rows, ["SCHEDULE", "WHEN", "TYPE", "QUEUE", "STATE", "CATCH UP",
                        "NEXT", "FIRED", "LAST ERROR"])


def schedule_view(item: dict[str, Any], table: Callable[..., str]) -> str:
    """One schedule: every field, one a line."""
    rows = [(key, json.dumps(value) if isinstance(value, (dict, list)) else value)
            for key, value in item.items() if key != "name"]
    return f"schedule {item.get('name')}\n\n" + table(rows, ["FIELD", "VALUE"])


def _every_seconds(text: str) -> int:
    milliseconds = parse_duration_ms(text)
    if milliseconds % 1000 or milliseconds <= 0:
        raise ValueError(f"--every {text!r}: a whole number of seconds, such as 30s or 5m")
    return milliseconds // 1000


def run(client: Client, args: argparse.Namespace, out: TextIO, emit: Output,
        table: Callable[..., str]) -> int:
    """Run one ``schedule`` action; ``emit`` prints JSON or the text view.

    Raises:
        ValueError: flags that do not make a schedule (the CLI prints it as a usage error).
    """
    action = args.schedule_command
    if action == "list":
        items = client.list_schedules()
        return emit(args, out, items, schedules_view(items, table))
    if action == "show":
        item = client.get_schedule(args.name)
        return emit(args, out, item, schedule_view(item, table))
    if action in ("pause", "resume"):
        item = (client.pause_schedule(args.name) if action == "pause"
                else client.resume_schedule(args.name))
        return emit(args, out, item, f"schedule {args.name}: "
                                     f"{'paused' if item.get('paused') else 'active'}")
    if action == "rm":
        client.delete_schedule(args.name)
        return emit(args, out, {"deleted": args.name}, f"deleted schedule {args.name}")
    if (args.cron is None) == (args.every is None):
        raise ValueError("give --cron or --every, exactly one")
    try:
        payload = json.loads(args.payload) if args.payload is not None else None
    except ValueError as exc:
        raise ValueError(f"--payload is not JSON: {exc}") from None
    item = client.put_schedule(
        args.name, args.type, cron=args.cron, timezone=args.timezone,
        every_seconds=None if args.every is None else _every_seconds(args.every),
        queue=args.queue, payload=payload, priority=args.priority,
        max_retries=args.max_retries, paused=args.paused, catch_up=args.catch_up)
    return emit(args, out, item, schedule_view(item, table))


def add_parser(sub: Any, common: argparse.ArgumentParser,
               fn: Callable[..., int]) -> None:
    """Add ``schedule`` and its actions to the subcommands ``sub`` of dqueue-cli."""
    text = "periodic schedules: add, list, show, rm, pause, resume"
    schedule = sub.add_parser("schedule", parents=[common], help=text, description=text)
    schedule.set_defaults(fn=fn)
    actions = schedule.add_subparsers(dest="schedule_command", required=True,
                                      metavar="ACTION")
    actions.add_parser("list", parents=[common], help="every schedule and its next slot")
    for name, help_text in (("show", "one schedule, every field"),
                            ("rm", "delete a schedule (its tasks stay)"),
                            ("pause", "pause a schedule"),
                            ("resume", "resume; slots passed while paused are skipped")):
        actions.add_parser(name, parents=[common], help=help_text).add_argument(
            "name", help="the schedule's name")
    text = "create or replace a schedule (slots before now never fire)"
    sp = actions.add_parser("add", parents=[common], help=text, description=text)
    sp.add_argument("name", help="letters, digits, - and _ (as a queue name)")
    sp.add_argument("--cron", help='five fields: minute hour day month weekday, "0 3 * * *"')
    sp.add_argument("--timezone", help="IANA zone of --cron, e.g. Europe/Paris (default UTC)")
    sp.add_argument("--every", help="an interval instead of --cron, e.g. 30s, 5m")
    sp.add_argument("--type", required=True, help="task type of each occurrence")
    sp.add_argument("--queue", help="queue of each task (default: default)")
    sp.add_argument("--payload", help="JSON payload of each task")
    sp.add_argument("--priority", type=int, help="priority of each task (higher first)")
    sp.add_argument("--max-retries", type=int, dest="max_retries",
                    help="retries after the first attempt (default: the queue's)")
    sp.add_argument("--paused", action="store_true", help="create it paused")
    sp.add_argument("--catch-up", dest="catch_up", choices=("skip", "latest"),
                    default="skip", help="after downtime: skip missed slots, or run the "
                                         "latest one once (default skip)")
