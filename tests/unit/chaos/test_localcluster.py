"""scripts/cluster.sh's port layout (the files' ports, --base-port moving every one) and its
peer keys (made once, by default; the opt-out)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from dqueue.chaos.localcluster import ROOT, LocalCluster, main
from dqueue.config_loader import load_config
from dqueue.keys import load_peer_keys

CONF = Path(__file__).resolve().parents[3] / "conf" / "cluster-3"


def test_base_port_moves_every_address_of_every_node(tmp_path):
    cluster = LocalCluster(CONF, tmp_path, secure=False, base_port=18080)
    assert cluster.http_addr("n2") == "127.0.0.1:18082"
    flags = cluster.port_flags("n2")
    config = load_config(["--config", str(CONF / "n2.toml"), *flags])
    assert (config.http_addr, config.raft_addr, config.worker_addr) == (
        "127.0.0.1:18082", "127.0.0.1:18092", "127.0.0.1:18102")
    assert config.peers == {f"n{i}": f"127.0.0.1:1809{i}" for i in (1, 2, 3)}
    assert config.peers_http == {f"n{i}": f"127.0.0.1:1808{i}" for i in (1, 2, 3)}


def test_the_files_ports_are_the_layout_from_8080(tmp_path):
    moved = LocalCluster(CONF, tmp_path, secure=False, base_port=8080)
    for node in ("n1", "n2", "n3"):
        plain = load_config(["--config", str(CONF / f"{node}.toml")])
        config = load_config(["--config", str(CONF / f"{node}.toml"), *moved.port_flags(node)])
        assert config == plain


def test_without_base_port_the_files_rule(tmp_path):
    cluster = LocalCluster(CONF, tmp_path, secure=False)
    assert cluster.port_flags("n1") == []
    assert cluster.http_addr("n1") == "127.0.0.1:8081"


def test_the_base_given_to_up_is_kept_for_later_commands(tmp_path, capsys):
    (tmp_path / "base_port").write_text("18080\n")
    assert main(["urls", "--run-dir", str(tmp_path), "--conf-dir", str(CONF)]) == 0
    assert capsys.readouterr().out.strip() == ",".join(
        f"http://127.0.0.1:1808{i}" for i in (1, 2, 3))


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
