"""``dqueue-cli cluster`` (dqueue/cli_cluster.py): its flags and its text and JSON views."""

from __future__ import annotations

import argparse
import io
import json

import pytest

from dqueue import cli, cli_cluster
from dqueue.keys import create_cluster_keys, load_member_keys
from tests.unit.client.fakes import ScriptedRequester


def _parse(*argv: str) -> argparse.Namespace:
    args = cli.build_parser().parse_args(argv)
    args.json = getattr(args, "json", False)  # main() fills the global options' defaults
    return args


def test_add_as_learner_and_the_change_view():
    args = _parse("cluster", "add", "n4", "--raft-addr", "h:1", "--http-addr", "h:2",
                  "--learner")
    server = ScriptedRequester([{"id": "n4", "change": "add_learner", "index": 7, "voters": ["n1"],
                        "learners": ["n4"]}])
    out = io.StringIO()
    assert cli_cluster.run(server, args, out, cli._json_or, cli.table) == 0  # type: ignore[arg-type]
    assert out.getvalue() == ("add_learner n4: committed at index 7\n"
                              "voters: n1   learners: n4\n")
    assert server.requests == [("POST", "/cluster/members",
                                {"id": "n4", "raft_addr": "h:1", "http_addr": "h:2"})]


def test_add_reads_the_public_key_from_its_key_file(tmp_path):
    create_cluster_keys(str(tmp_path), ["n4"])
    key_file = tmp_path / "n4" / "members" / "n4.key"
    key = load_member_keys(str(tmp_path / "n4"))["n4"].decode()
    args = _parse("cluster", "add", "n4", "--raft-addr", "h:1", "--http-addr", "h:2",
                  "--learner", "--public-key", str(key_file))
    server = ScriptedRequester([{"id": "n4", "change": "add_learner", "index": 7,
                                 "voters": ["n1"], "learners": ["n4"]}])
    cli_cluster.run(server, args, io.StringIO(), cli._json_or, cli.table)  # type: ignore[arg-type]
    assert server.requests[0][2]["public_key"] == key and len(key) == 40
    (tmp_path / "junk.key").write_text("not a key")
    args.public_key = str(tmp_path / "junk.key")
    with pytest.raises(SystemExit, match="--public-key"):
        cli_cluster.run(server, args, io.StringIO(), cli._json_or, cli.table)  # type: ignore[arg-type]


def test_status_table_and_json():
    cluster = {"leader_id": "n1", "term": 2, "voters": ["n1"], "learners": ["n4"],
               "members": [{"id": "n1", "suffrage": "voter", "role": "leader", "lag": 0},
                           {"id": "n4", "suffrage": "learner", "role": "follower", "lag": 5}]}
    out = io.StringIO()
    cli_cluster.run(ScriptedRequester([cluster]), _parse("cluster", "status"), out,  # type: ignore[arg-type]
                    cli._json_or, cli.table)
    lines = out.getvalue().splitlines()
    assert lines[0] == "leader: n1   term: 2" and "SUFFRAGE" in lines[1]
    assert lines[4].split()[:3] == ["n4", "learner", "follower"]
    out = io.StringIO()
    cli_cluster.run(ScriptedRequester([cluster]), _parse("--json", "cluster", "remove", "n4"),  # type: ignore[arg-type]
                    out, cli._json_or, cli.table)
    assert json.loads(out.getvalue()) == cluster
