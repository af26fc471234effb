"""``dqueue-cli cluster``: status, add, promote and remove members (docs/cli.md).

    dqueue-cli cluster status
    dqueue-cli cluster add n4 --raft-addr 10.0.0.4:9090 --http-addr 10.0.0.4:8080
    dqueue-cli cluster add n5 --raft-addr ... --http-addr ... --learner
    dqueue-cli cluster promote n5
    dqueue-cli --json cluster remove n1

``add`` adds a learner, waits until it is within ``--max-lag`` entries of the leader, then
promotes it (unless ``--learner``). Each change is answered once it committed.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any, TextIO

from dqueue.client.cluster_admin import DEFAULT_DEADLINE_S, DEFAULT_MAX_LAG, ClusterAdmin
from dqueue.client.http_client import Client
from dqueue.keys import PeerKeyError, public_key_arg

Output = Callable[[argparse.Namespace, TextIO, Any, str], int]


def status_view(cluster: dict[str, Any], table: Callable[..., str]) -> str:
    """Leader, term and one row per member with its suffrage and lag."""
    head = f"leader: {cluster.get('leader_id') or '(none)'}   term: {cluster.get('term')}"
    rows = [(m.get("id"), m.get("suffrage", "voter"), m.get("role"), m.get("http_addr"),
             m.get("raft_addr"), m.get("match_index"), m.get("lag"))
            for m in cluster.get("members") or [] if isinstance(m, dict)]
    return head + "\n" + table(rows, ["ID", "SUFFRAGE", "ROLE", "HTTP", "RAFT", "MATCH", "LAG"])


def change_view(change: dict[str, Any]) -> str:
    """One committed change and the configuration after it."""
    voters = ",".join(change.get("voters") or []) or "-"
    learners = ",".join(change.get("learners") or []) or "-"
    return (f"{change.get('change')} {change.get('id')}: committed at index "
            f"{change.get('index')}\nvoters: {voters}   learners: {learners}")


def run(client: Client, args: argparse.Namespace, out: TextIO, emit: Output,
        table: Callable[..., str]) -> int:
    """Run one ``cluster`` action; ``emit`` prints JSON or the text view."""
    admin = ClusterAdmin(client, deadline_s=getattr(args, "wait", DEFAULT_DEADLINE_S))
    action = args.cluster_command
    if action == "status":
        cluster = admin.status()
        return emit(args, out, cluster, status_view(cluster, table))
    if action == "add":
        try:
            public_key = public_key_arg(args.public_key) if args.public_key else None
        except PeerKeyError as exc:
            raise SystemExit(f"dqueue-cli: --public-key: {exc}") from None
        change = admin.add_member(args.id, args.raft_addr, args.http_addr, public_key,
                                  learner=args.learner, max_lag=args.max_lag)
    elif action == "promote":
        change = admin.promote(args.id)
    else:
        change = admin.remove(args.id)
    return emit(args, out, change, change_view(change))


def add_parser(sub: Any, common: argparse.ArgumentParser, fn: Callable[..., int]) -> None:
    """Add ``cluster`` and its actions to the subcommands ``sub`` of dqueue-cli."""
    text = "cluster membership and replication: status, add, promote, remove"
    cluster = sub.add_parser("cluster", parents=[common], help=text, description=text)
    cluster.set_defaults(fn=fn)
    actions = cluster.add_subparsers(dest="cluster_command", required=True, metavar="ACTION")
    actions.add_parser("status", parents=[common], help="leader, term, members, lag")
    text = "add a member as a learner, wait until it caught up, promote it"
    sp = actions.add_parser("add", parents=[common], help=text, description=text)
    sp.add_argument("id", help="the new member's id (its --id)")
    sp.add_argument("--raft-addr", dest="raft_addr", required=True,
                    help="host:port of its peer transport, reachable from every member")
    sp.add_argument("--http-addr", dest="http_addr", required=True,
                    help="host:port of its HTTP API")
    sp.add_argument("--public-key", dest="public_key",
                    help="its CURVE public key: a Z85 key or its public key file "
                         "(KEYS/<id>/members/<id>.key); required in a cluster with keys")
    sp.add_argument("--learner", action="store_true", help="leave it a learner (no vote)")
    sp.add_argument("--max-lag", dest="max_lag", type=int, default=DEFAULT_MAX_LAG,
                    help=f"entries behind the leader that count as caught up "
                         f"(default {DEFAULT_MAX_LAG})")
    for name, help_text in (("promote", "make a learner a voter"),
                            ("remove", "remove a member (a leader hands over first)")):
        actions.add_parser(name, parents=[common], help=help_text).add_argument(
            "id", help="the member's id")
    for action in actions.choices.values():
        action.add_argument("--wait", type=float, default=DEFAULT_DEADLINE_S,
                            help=f"seconds to retry a pending change or wait for catch-up "
                                 f"(default {DEFAULT_DEADLINE_S:g})")
