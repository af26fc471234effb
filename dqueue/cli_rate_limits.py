"""``dqueue-cli rate-limit``: set, list and remove the rate limits of task types.

    dqueue-cli rate-limit set email 100/m     # at most 100 email tasks leased a minute
    dqueue-cli rate-limit list
    dqueue-cli rate-limit rm email

A queue's own limit is a queue setting: ``dqueue-cli queue set emails --rate-limit 20/s``.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any, TextIO

from dqueue.client.http_client import Client

Output = Callable[[argparse.Namespace, TextIO, Any, str], int]


def run(client: Client, args: argparse.Namespace, out: TextIO, emit: Output,
        table: Callable[..., str]) -> int:
    """Run one ``rate-limit`` action; ``emit`` prints JSON or the text view."""
    action = args.rate_limit_command
    if action == "list":
        limits = client.list_rate_limits()
        rows = [(item["type"], item["rate_limit"]) for item in limits]
        return emit(args, out, limits,
                    table(rows, ["TYPE", "RATE LIMIT"]) if rows else "(no rate limits)")
    if action == "set":
        item = client.set_rate_limit(args.type, args.rate_limit)
        return emit(args, out, item, f"{item['type']}: at most {item['rate_limit']}")
    client.delete_rate_limit(args.type)
    return emit(args, out, {"deleted": args.type}, f"removed the limit of {args.type}")


def add_parser(sub: Any, common: argparse.ArgumentParser,
               fn: Callable[..., int]) -> None:
    """Add ``rate-limit`` and its actions to the subcommands ``sub`` of dqueue-cli."""
    text = "rate limits of task types, over every queue and worker: set, list, rm"
    parser = sub.add_parser("rate-limit", parents=[common], help=text, description=text)
    parser.set_defaults(fn=fn)
    actions = parser.add_subparsers(dest="rate_limit_command", required=True,
                                    metavar="ACTION")
    actions.add_parser("list", parents=[common], help="every type's limit")
    sp = actions.add_parser("set", parents=[common], help="set a type's limit")
    sp.add_argument("type", help="the task type")
    sp.add_argument("rate_limit", metavar="LIMIT",
                    help="N/s, N/m or N/h, e.g. 100/m (counted at lease time)")
    actions.add_parser("rm", parents=[common], help="remove a type's limit").add_argument(
        "type", help="the task type")
