"""The command lines the chaos runner gives its nodes: peer keys by default."""

from __future__ import annotations

from pathlib import Path

from dqueue.chaos import netns
from dqueue.chaos.runner import build_parser, node_specs


def topology() -> netns.Topology:
    return netns.subnet_topology("dqt", ["n1", "n2", "n3"])


def test_nodes_get_their_own_key_folder(tmp_path: Path):
    specs = node_specs(topology(), tmp_path, None, [], tmp_path / "keys")
    for spec in specs:
        assert f"--secure-dir={tmp_path / 'keys' / spec.id}" in spec.argv
    assert not build_parser().parse_args([]).insecure


def test_without_keys_the_nodes_run_insecure(tmp_path: Path):
    for spec in node_specs(topology(), tmp_path, None, [], None):
        assert not any(a.startswith("--secure-dir") for a in spec.argv)
        assert "--insecure=true" in spec.argv
    assert build_parser().parse_args(["--insecure"]).insecure
