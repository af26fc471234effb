"""The entry point refuses a bad --config-json before touching anything."""

from __future__ import annotations

import pytest

from dqueue.config import NodeConfig
from dqueue.exit_status import RaftExit
from dqueue.node.__main__ import main


@pytest.mark.parametrize("text", ["{", "[]", '{"id": "n1", "no_such_field": 1}', '{}'])
def test_bad_config_json_exits_1(text, capsys):
    assert main(["--config-json", text]) == RaftExit.REFUSED_TO_START
    assert "bad --config-json" in capsys.readouterr().err


def test_peer_keys_that_do_not_load_exit_1(tmp_path, capsys):
    """A --secure-dir without this node's secret key: status 1, the file named, no store."""
    config = NodeConfig(id="n1", data_dir=str(tmp_path / "data"), raft_addr="127.0.0.1:1",
                        secure_dir=str(tmp_path / "keys"))
    (tmp_path / "keys").mkdir()
    assert main(["--config-json", config.to_json()]) == RaftExit.REFUSED_TO_START
    assert "n1.key_secret" in capsys.readouterr().err
    assert not any((tmp_path / "data").iterdir())  # the store was never opened


def test_non_loopback_peers_without_keys_exit_1(tmp_path, capsys):
    config = NodeConfig(id="n1", data_dir=str(tmp_path / "data"), raft_addr="10.0.0.1:9090")
    assert main(["--config-json", config.to_json()]) == RaftExit.REFUSED_TO_START
    assert "dqueue-cli keys init" in capsys.readouterr().err
    assert not (tmp_path / "data").exists()
