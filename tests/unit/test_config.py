"""The configuration loader: flags, TOML, precedence, validation naming the key."""

from __future__ import annotations

import dataclasses
import pathlib

import pytest

from dqueue.config import (
    ConfigError,
    InsecurePeersError,
    NodeConfig,
    check_peer_security,
    is_loopback_host,
)
from dqueue.config_loader import TOML_LAYOUT, duration_setting_ms, load_config
from dqueue.queue import QueueConfig

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_seed_command_line():
    config = load_config(["--id=dev", "--bootstrap=true"])
    assert config.id == "dev"
    assert config.bootstrap is True
    assert config.data_dir == "./data"
    assert config.http_addr == "127.0.0.1:8080"  # loopback unless asked (docs/security.md)
    assert config.worker_addr == "127.0.0.1:9191"
    assert load_config(["--id=dev", "--http-addr=:8080"]).http_addr == ":8080"  # seed spelling
    assert config.members() == {"dev": ":9090"}


def test_go_style_single_dash_and_bare_bootstrap():
    config = load_config(["-id", "dev", "--bootstrap", "-lease-timeout=45s"])
    assert (config.id, config.bootstrap, config.queue.lease_ms) == ("dev", True, 45_000)


def test_every_flag():
    config = load_config([
        "--id", "n1", "--data-dir", "d", "--http-addr", "127.0.0.1:1", "--raft-addr",
        "127.0.0.1:2", "--worker-addr", "127.0.0.1:3", "--peers", "n1=127.0.0.1:2,n2=h:5",
        "--bootstrap", "false", "--lease-timeout", "1m30s", "--max-retries", "7",
        "--log-level", "debug", "--log-format", "text", "--peers-http", "n2=h:6",
        "--secure-dir", "keys/n1", "--insecure", "false",
    ])
    assert config == NodeConfig(
        id="n1", data_dir="d", http_addr="127.0.0.1:1", raft_addr="127.0.0.1:2",
        worker_addr="127.0.0.1:3", peers={"n1": "127.0.0.1:2", "n2": "h:5"}, bootstrap=False,
        queue=QueueConfig(lease_ms=90_000, max_retries=7), log_level="debug", log_format="text",
        peers_http={"n2": "h:6"}, secure_dir="keys/n1",
    )


def test_documented_file_holds_every_key_at_its_default():
    text = (ROOT / "conf" / "dqueue.toml").read_text()
    for section, keys in TOML_LAYOUT.items():
        for key in keys:
            assert f"{key} =" in text or f"# {key} =" in text, (section, key)
    config = load_config(["--config", str(ROOT / "conf" / "dqueue.toml"), "--id", "dev"])
    assert config == NodeConfig(id="dev")


def test_cluster_files_describe_three_loopback_members():
    configs = [load_config(["--config", str(ROOT / "conf" / "cluster-3" / f"n{i}.toml")])
               for i in (1, 2, 3)]
    assert [c.http_addr for c in configs] == [f"127.0.0.1:808{i}" for i in (1, 2, 3)]
    assert [c.raft_addr for c in configs] == [f"127.0.0.1:809{i}" for i in (1, 2, 3)]
    assert [c.worker_addr for c in configs] == [f"127.0.0.1:810{i}" for i in (1, 2, 3)]
    assert all(c.members() == configs[0].members() for c in configs)
    # A worker meant for the cluster never drains a dev node started with the defaults.
    dev = NodeConfig(id="dev")
    dev_ports = {a.rpartition(":")[2] for a in (dev.http_addr, dev.raft_addr, dev.worker_addr)}
    cluster_ports = {a.rpartition(":")[2] for c in configs
                     for a in (c.http_addr, c.raft_addr, c.worker_addr)}
    assert not dev_ports & cluster_ports


def test_flag_beats_file_beats_default(tmp_path):
    path = tmp_path / "n.toml"
    path.write_text('id = "a"\n[queue]\nlease_timeout = "10s"\nmax_retries = 9\n')
    config = load_config(["--config", str(path), "--max-retries", "2"])
    assert config.queue.lease_ms == 10_000  # file
    assert config.queue.max_retries == 2  # flag
    assert config.queue.backoff_base_ms == 1_000  # default


def test_the_queue_defaults_are_queue_configs():
    assert NodeConfig(id="a").queue == QueueConfig()
    assert load_config(["--id", "a"]).queue == QueueConfig()


def test_every_queue_key_of_the_file_reaches_the_queue_settings(tmp_path):
    path = tmp_path / "n.toml"
    path.write_text('id = "a"\n[queue]\nlease_timeout = "1m"\nmax_retries = 4\n'
                    'backoff_base = "2s"\nbackoff_factor = 3\nbackoff_cap = "1h"\n'
                    'backoff_jitter = 0.5\ndedup_window = "2h"\nretention = "3h"\n'
                    'max_depth = 10\n')
    assert load_config(["--config", str(path)]).queue == QueueConfig(
        lease_ms=60_000, max_retries=4, backoff_base_ms=2_000, backoff_factor=3.0,
        backoff_cap_ms=3_600_000, backoff_jitter=0.5, dedup_window_ms=7_200_000,
        retention_ms=10_800_000, max_depth=10)
    assert set(TOML_LAYOUT["queue"].values()) == {f"queue.{name}" for name in (
        "lease_ms", "max_retries", "backoff_base_ms", "backoff_factor", "backoff_cap_ms",
        "backoff_jitter", "dedup_window_ms", "retention_ms", "max_depth")}


def test_raft_addr_comes_from_peers_when_not_given():
    config = load_config(["--id", "n2", "--peers", "n1=127.0.0.1:7001,n2=127.0.0.1:7002"])
    assert config.raft_addr == "127.0.0.1:7002"


@pytest.mark.parametrize(
    ("argv", "toml", "key"),
    [
        ([], "", "id"),
        (["--id", "a", "--peers", "a=h:1,a=h:2"], "", "peers"),
        (["--id", "a", "--peers", "b=h:1,c=h:2"], "", "peers"),
        (["--id", "a", "--peers", "a=h1"], "", "peers.a"),
        (["--id", "a", "--http-addr", ":9090"], "", "raft_addr"),
        (["--id", "a", "--worker-addr", ":8080"], "", "worker_addr"),
        (["--id", "a", "--peers", "a=127.0.0.1:1,b=127.0.0.1:1"], "", "peers.b"),
        (["--id", "a", "--raft-addr", ":5", "--peers", "a=127.0.0.1:6"], "", "raft_addr"),
        (["--id", "a", "--lease-timeout", "30"], "", "queue.lease_timeout"),
        (["--id", "a", "--lease-timeout", "soon"], "", "queue.lease_timeout"),
        (["--id", "a", "--lease-timeout", "0s"], "", "queue.lease_timeout"),
        (["--id", "a", "--max-retries", "many"], "", "queue.max_retries"),
        (["--id", "a", "--max-retries", "-1"], "", "queue.max_retries"),
        (["--id", "a", "--bootstrap", "maybe"], "", "bootstrap"),
        (["--id", "a", "--log-format", "xml"], "", "log_format"),
        (["--id", "a", "--log-level", "loud"], "", "log_level"),
        (["--id", "bad id"], "", "id"),
        (["--id", "a"], "colour = 'red'\n", "colour"),
        (["--id", "a"], "[queue]\nspeed = 1\n", "queue.speed"),
        (["--id", "a"], "[queue]\nbackoff_jitter = 1.0\n", "queue.backoff_jitter"),
        (["--id", "a"], "[queue]\nbackoff_factor = 0.5\n", "queue.backoff_factor"),
        (["--id", "a"], "[queue]\nbackoff_cap = '1s'\nbackoff_base = '2s'\n",
         "queue.backoff_cap"),
        (["--id", "a", "--lease-timeout", "13h"], "", "queue.lease_timeout"),
        (["--id", "a"], "[raft]\ntick = 50\n", "raft.tick"),
        (["--id", "a"], "[raft]\nheartbeat_ticks = 20\n", "raft.heartbeat_ticks"),
        (["--id", "a"], "[api]\nhttp_threads = 0\n", "api.http_threads"),
        (["--id", "a"], "[api]\nmax_body_bytes = 'big'\n", "api.max_body_bytes"),
        (["--id", "a"], "[peers_http]\nzz = '127.0.0.1:1'\n", "peers_http"),
        (["--id", "a"], "this is not toml", "config"),
    ],
)
def test_impossible_configurations_name_the_key(tmp_path, argv, toml, key):
    if toml:
        path = tmp_path / "c.toml"
        path.write_text(toml)
        argv = [*argv, "--config", str(path)]
    with pytest.raises(ConfigError) as caught:
        load_config(argv)
    assert caught.value.key == key
    assert key in str(caught.value)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(ConfigError) as caught:
        load_config(["--id", "a", "--config", str(tmp_path / "absent.toml")])
    assert caught.value.key == "config"


@pytest.mark.parametrize(
    ("text", "ms"),
    [("30s", 30_000), ("500ms", 500), ("1.5s", 1_500), ("5m", 300_000), ("1h30m", 5_400_000),
     ("24h", 86_400_000)],
)
def test_durations(text, ms):
    assert duration_setting_ms(text, "k") == ms


@pytest.mark.parametrize("text", ["", "30", "s", "-1s", "1d", "1s 2s", "0", "0s", "0.1ms", 30])
def test_bad_durations_are_refused_naming_the_key(text):
    with pytest.raises(ConfigError) as caught:
        duration_setting_ms(text, "queue.lease_timeout")
    assert caught.value.key == "queue.lease_timeout"


def test_json_round_trip():
    config = load_config(["--id", "n1", "--peers", "n1=127.0.0.1:1,n2=127.0.0.1:2",
                          "--lease-timeout", "45s"])
    assert config.queue.lease_ms == 45_000
    assert NodeConfig.from_json(config.to_json()) == config
    assert dataclasses.asdict(NodeConfig.from_json(config.to_json())) == dataclasses.asdict(config)


@pytest.mark.parametrize("host", ["127.0.0.1", "127.3.2.1", "::1", "[::1]", "localhost"])
def test_loopback_hosts(host):
    assert is_loopback_host(host)


@pytest.mark.parametrize("host", ["10.0.0.1", "h", "example.org", "::ffff:10.0.0.1", ""])
def test_hosts_that_are_not_loopback(host):
    assert not is_loopback_host(host)


def test_loopback_peers_without_keys_are_allowed():
    config = load_config(["--id", "a", "--peers", "a=127.0.0.1:1,b=localhost:2,c=[::1]:3"])
    check_peer_security(config)
    # A bind-all raft address is no wider: the ZAP handler admits loopback connections only.
    check_peer_security(load_config(["--id", "dev", "--bootstrap"]))


@pytest.mark.parametrize(
    ("argv", "key"),
    [
        (["--id", "a", "--peers", "a=127.0.0.1:1,b=10.0.0.2:1"], "peers.b"),
        (["--id", "a", "--peers", "a=10.0.0.1:1,b=127.0.0.1:2"], "raft_addr"),
        (["--id", "a", "--raft-addr", "192.168.1.5:9090"], "raft_addr"),
    ],
)
def test_non_loopback_peers_without_keys_are_refused(argv, key):
    with pytest.raises(InsecurePeersError) as caught:
        load_config(argv)
    assert caught.value.key == key
    assert "dqueue-cli keys init" in caught.value.message
    assert "--insecure" in caught.value.message
    # Either override lets it start.
    assert load_config([*argv, "--insecure"]).insecure is True
    assert load_config([*argv, "--secure-dir", "k"]).secure_dir == "k"


def test_security_keys_in_toml(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("id = 'a'\nraft_addr = '10.0.0.1:9090'\nsecure_dir = 'keys'\n")
    assert load_config(["--config", str(path)]).secure_dir == "keys"
    path.write_text("id = 'a'\nraft_addr = '10.0.0.1:9090'\ninsecure = true\n")
    assert load_config(["--config", str(path)]).insecure is True


@pytest.mark.parametrize("key", ["snapshot_chunk_bytes", "max_append_bytes"])
def test_message_sizes_stay_below_the_peer_frame_bound(tmp_path, key):
    """A chunk or an append bigger than the transport's frame bound could never be delivered
    (and the Raft core refuses such a snapshot chunk size at start)."""
    from dqueue.node.transport import MAX_MESSAGE_BYTES

    path = tmp_path / "node.toml"
    for size, ok in ((32 << 20, True), (MAX_MESSAGE_BYTES, False)):
        path.write_text(f'id = "a"\n[raft]\n{key} = {size}\n')
        if ok:
            assert getattr(load_config([f"--config={path}"]), key) == size
        else:
            with pytest.raises(ConfigError, match=key):
                load_config([f"--config={path}"])


def test_max_snapshot_bytes_reaches_the_raft_core_defaults_and_bounds(tmp_path):
    """The node's bound on a snapshot taken from a leader: the core's default, and never below
    one chunk (the core would refuse every snapshot of more than one)."""
    from dqueue.raft import RaftConfig

    assert NodeConfig(id="a").max_snapshot_bytes == RaftConfig("a", ("a",)).max_snapshot_bytes
    path = tmp_path / "node.toml"
    path.write_text('id = "a"\n[raft]\nmax_snapshot_bytes = 67108864\n')
    assert load_config([f"--config={path}"]).max_snapshot_bytes == 64 << 20
    for text in ("max_snapshot_bytes = 1024",
                 "snapshot_chunk_bytes = 4194304\nmax_snapshot_bytes = 2097152"):
        path.write_text(f'id = "a"\n[raft]\n{text}\n')
        with pytest.raises(ConfigError, match=r"raft\.max_snapshot_bytes"):
            load_config([f"--config={path}"])


@pytest.mark.parametrize(("value", "ok"), [(1_024, True), (65_536, True), (4 << 20, True),
                                           (1_023, False), ((4 << 20) + 1, False)])
def test_max_result_bytes_is_1_kib_to_4_mib(tmp_path, value, ok):
    path = tmp_path / "c.toml"
    path.write_text(f"[api]\nmax_result_bytes = {value}\n")
    argv = ["--id", "a", "--config", str(path)]
    if ok:
        assert load_config(argv).max_result_bytes == value
        return
    with pytest.raises(ConfigError) as caught:
        load_config(argv)
    assert caught.value.key == "api.max_result_bytes"


def test_max_result_bytes_defaults_to_64_kib():
    assert load_config(["--id", "a"]).max_result_bytes == 65_536
