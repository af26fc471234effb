"""scripts/cluster.sh's cluster: peer keys by default, made once, and the opt-out."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from dqueue.chaos.localcluster import ROOT, LocalCluster
from dqueue.keys import load_peer_keys


@pytest.fixture
def conf_dir(tmp_path: Path) -> Path:
    target = tmp_path / "conf"
    shutil.copytree(ROOT / "conf" / "cluster-3", target)
    return target


def test_keys_are_made_once_for_every_node(conf_dir, tmp_path):
    cluster = LocalCluster(conf_dir, tmp_path / "run", secure=True)
    cluster.ensure_keys()
    secret = cluster.keys_dir / "n2" / "n2.key_secret"
    first = secret.read_bytes()
    for node in ("n1", "n2", "n3"):
        keys = load_peer_keys(str(cluster.keys_dir / node), node, ["n1", "n2", "n3"])
        assert sorted(keys.members) == ["n1", "n2", "n3"]
    cluster.ensure_keys()  # a restart keeps the keys the running nodes trust
    assert secret.read_bytes() == first


def test_dqueue_insecure_opts_out(conf_dir, tmp_path, monkeypatch):
    monkeypatch.delenv("DQUEUE_INSECURE", raising=False)
    assert LocalCluster(conf_dir, tmp_path / "run").secure
    monkeypatch.setenv("DQUEUE_INSECURE", "1")
    assert not LocalCluster(conf_dir, tmp_path / "run").secure
    assert LocalCluster(conf_dir, tmp_path / "run", secure=True).secure
