"""Node configuration: one dataclass holding every setting, with its default, and its rules.

Configuration is loaded once at start and passed down to the Raft process and the API process
as a value; nothing reads it from a global. The supervisor hands the resolved configuration to
its children as JSON (``to_json``).

Here: ``NodeConfig``, ``ConfigError``, and ``validate``, which refuses impossible
configurations with a ``ConfigError`` naming the key (ranges, ports used twice, member ids,
peer security). Where the values come from (the flags of ``bin/dqueue``, the TOML file named by
``--config``, the precedence flag > file > default) is ``dqueue/config_loader.py``.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import os
import re
from dataclasses import dataclass, field
from typing import Any

from dqueue.queue.config import QueueConfig, settings_from_plain
from dqueue.queue.results import DEFAULT_MAX_RESULT_BYTES


@dataclass(frozen=True)
class NodeConfig:
    """Every setting of one node. Durations are integers in the unit their name says."""

    id: str
    data_dir: str = "./data"
    # Loopback by default: a fresh node does not listen on every interface. ``:8080`` (the
    # seed's spelling) still means every interface, served in protected mode until tokens or
    # --insecure are configured (docs/security.md).
    http_addr: str = "127.0.0.1:8080"
    raft_addr: str = ":9090"
    worker_addr: str = "127.0.0.1:9191"
    # Raft member id -> peer transport address (host:port), this node included. Empty with
    # bootstrap means a single-node cluster whose only member is this node at raft_addr.
    peers: dict[str, str] = field(default_factory=dict)
    bootstrap: bool = False
    # Join a running cluster (the URL of one of its members, for the operator's record): with
    # an empty store the node starts with no configuration, never campaigns, and waits to be
    # added (``dqueue-cli cluster add``); it learns everything from the leader.
    join: str = ""
    # On a corrupt store: wipe the log and snapshot (term and vote kept) and rejoin from the
    # peers instead of refusing to start (docs/operations.md, "A corrupt store").
    repair: bool = False
    log_level: str = "info"
    log_format: str = "json"
    # Peer transport keys (docs/security.md): a folder with this node's CURVE key pair and the
    # members' public keys. Empty: loopback peers only, unencrypted, unless ``insecure``.
    secure_dir: str = ""
    # Allow non-loopback peer addresses without keys (anyone who reaches the peer port can
    # then pose as a member).
    insecure: bool = False

    # The queue settings ([queue], defaults in QueueConfig) this node proposes when it becomes
    # leader. They are replicated: every member applies each command under the settings the
    # log carries, so they need not be equal on every member, but they take effect only while
    # this node leads (docs/configuration.md, "Queue settings are replicated").
    queue: QueueConfig = field(default_factory=QueueConfig)

    # Raft timing: time enters the core only as ticks of tick_ms.
    tick_ms: int = 50
    election_ticks: int = 10
    heartbeat_ticks: int = 2
    snapshot_entries: int = 10_000
    snapshot_chunk_bytes: int = 1 << 20
    # Largest snapshot this member takes from a leader (RaftConfig.max_snapshot_bytes).
    max_snapshot_bytes: int = 1 << 30
    max_append_bytes: int = 1 << 20
    max_inflight_msgs: int = 256

    # API process.
    http_threads: int = 32
    max_body_bytes: int = 1 << 20
    # Largest task result (an ack's ``result``, compact JSON) the HTTP API and the worker
    # gateway take: dqueue/queue/results.py.
    max_result_bytes: int = DEFAULT_MAX_RESULT_BYTES
    request_timeout_ms: int = 5_000
    max_wait_ms: int = 20_000
    # GET /ready answers 200 only while this node's applied index is within this many entries
    # of its commit index (and a leader is known).
    ready_max_lag: int = 1_000
    # GET /health, /ready, /metrics and /openapi.json answer without a token (docs/security.md);
    # false: they need a token with the read role like any other read.
    open_health: bool = True

    # Member id -> HTTP address of that member (for leader hints and GET /cluster). Optional:
    # members missing here are shown without an HTTP address.
    peers_http: dict[str, str] = field(default_factory=dict)
    # How long a stopping API process lets requests in flight finish before it exits.
    drain_timeout_ms: int = 10_000
    # The SQS-compatible API (docs/sqs.md): the account id and region in queue URLs and ARNs.
    sqs_account_id: str = "000000000000"
    sqs_region: str = "us-east-1"

    def members(self) -> dict[str, str]:
        """Member id -> raft address, this node included."""
        if self.peers:
            return dict(self.peers)
        return {self.id: self.raft_addr}

    def ipc_endpoint(self) -> str:
        """The local API-to-Raft IPC endpoint of this node."""
        return "ipc://" + os.path.join(os.path.abspath(self.data_dir), "raft.ipc")

    def to_json(self) -> str:
        """Serialize the resolved configuration for a child process."""
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> NodeConfig:
        """Inverse of ``to_json``.

        Raises:
            ValueError, TypeError: the text is not a configuration ``to_json`` wrote.
        """
        raw: dict[str, Any] = json.loads(text)
        if "queue" in raw:
            raw["queue"] = settings_from_plain(raw["queue"])
        return cls(**raw)


class ConfigError(ValueError):
    """An impossible configuration, refused at start.

    Attributes:
        key: the flag or TOML key at fault (TOML spelling, e.g. ``queue.lease_timeout``).
    """

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key
        self.message = message


class InsecurePeersError(ConfigError):
    """Non-loopback peer addresses without keys (the node exits with status 1)."""


LOG_LEVELS = ("debug", "info", "warning", "error")
LOG_FORMATS = ("json", "text")
_MEMBER_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def split_addr(addr: str, key: str, need_host: bool = False) -> tuple[str, int]:
    """Split ``host:port`` (host optional unless ``need_host``) into its parts.

    Raises:
        ConfigError: when the port is missing or out of range.
    """
    host, sep, port_text = addr.rpartition(":")
    if not sep or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ConfigError(key, f"expected host:port with a port in 1..65535, got {addr!r}")
    if need_host and not host:
        raise ConfigError(key, f"a host is required, got {addr!r}")
    return host.strip("[]"), int(port_text)


def validate(config: NodeConfig) -> NodeConfig:
    """Refuse impossible configurations; return the configuration unchanged otherwise.

    Raises:
        ConfigError: naming the key at fault.
    """
    if not _MEMBER_ID.fullmatch(config.id):
        raise ConfigError("id", "1 to 64 letters, digits, '_', '.' or '-', starting alnum")
    for member_id in [*config.peers, *config.peers_http]:
        if not _MEMBER_ID.fullmatch(member_id):
            raise ConfigError("peers", f"bad member id {member_id!r}")
    if config.peers and config.id not in config.peers:
        raise ConfigError("peers", f"this node's id {config.id!r} is missing from the members")
    if config.join and not re.fullmatch(r"https?://[^\s/?#]+(/[^\s?#]*)?", config.join):
        raise ConfigError("join", "the HTTP URL of a running member, as http://host:port")
    if not re.fullmatch(r"[0-9]{12}", config.sqs_account_id):
        raise ConfigError("sqs.account_id", "12 digits, as an AWS account id")
    if not re.fullmatch(r"[a-z0-9-]{1,32}", config.sqs_region):
        raise ConfigError("sqs.region", "lower-case letters, digits and '-', as us-east-1")
    unknown_http = sorted(set(config.peers_http) - set(config.members()))
    if unknown_http:
        raise ConfigError("peers_http", f"not a member: {', '.join(unknown_http)}")
    if config.log_level not in LOG_LEVELS:
        raise ConfigError("log_level", f"one of {', '.join(LOG_LEVELS)}")
    if config.log_format not in LOG_FORMATS:
        raise ConfigError("log_format", f"one of {', '.join(LOG_FORMATS)}")
    _check_ports(config)
    _check_ranges(config)
    _check_queue(dataclasses.asdict(config.queue))
    check_peer_security(config)
    return config


LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})
# A bind address that listens on every interface: the ZAP handler still refuses every
# non-loopback connection without keys, so it does not widen who is admitted.
BIND_ALL_HOSTS = frozenset({"", "*", "0.0.0.0", "::"})


def is_loopback_host(host: str) -> bool:
    """Whether ``host`` (a name or an IP, brackets allowed) names the loopback interface."""
    host = host.strip("[]").lower()
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_peer_security(config: NodeConfig) -> None:
    """Without keys, refuse peer addresses that are not loopback unless ``insecure`` is set.

    Raises:
        InsecurePeersError: naming the first address at fault and how to create keys.
    """
    if config.secure_dir or config.insecure:
        return
    addrs = [("raft_addr", config.raft_addr, True)]
    addrs += [(f"peers.{m}", a, False) for m, a in sorted(config.peers.items())]
    for key, addr, is_bind in addrs:
        host = split_addr(addr, key)[0]
        if is_loopback_host(host) or (is_bind and host in BIND_ALL_HOSTS):
            continue
        members = ",".join(sorted(config.members()))
        raise InsecurePeersError(
            key, f"{addr} is not a loopback address and no peer keys are configured: anyone "
            "who reaches the peer port could pose as a member. Create keys with `dqueue-cli "
            f"keys init KEYS --members {members}`, copy KEYS/<id>/ to each node and pass "
            "--secure-dir (TOML secure_dir); or pass --insecure (TOML insecure = true) to run "
            "without keys (docs/security.md)")


def _check_ports(config: NodeConfig) -> None:
    """No port used twice: among this node's listeners and against the other members."""
    own = {
        "http_addr": split_addr(config.http_addr, "http_addr"),
        "raft_addr": split_addr(config.raft_addr, "raft_addr"),
        "worker_addr": split_addr(config.worker_addr, "worker_addr"),
    }
    if config.id in config.peers:
        peer_port = split_addr(config.peers[config.id], f"peers.{config.id}")[1]
        if peer_port != own["raft_addr"][1]:
            raise ConfigError(
                "raft_addr", f"port {own['raft_addr'][1]} differs from peers.{config.id}"
            )
    taken: list[tuple[str, tuple[str, int]]] = []
    for key, addr in own.items():
        taken.append((key, addr))
    for member_id, addr in sorted(config.members().items()):
        if member_id != config.id:
            taken.append((f"peers.{member_id}", split_addr(addr, f"peers.{member_id}")))
    for member_id, addr in sorted(config.peers_http.items()):
        if member_id != config.id:
            taken.append((f"peers_http.{member_id}", split_addr(addr, f"peers_http.{member_id}")))
    for i, (key, (host, port)) in enumerate(taken):
        for other_key, (other_host, other_port) in taken[:i]:
            same_host = host == other_host or not host or not other_host
            if port == other_port and same_host:
                raise ConfigError(key, f"port {port} is already used by {other_key}")


# QueueConfig field -> (TOML key, lowest allowed, highest allowed).
_QUEUE_RANGES: dict[str, tuple[str, float, float]] = {
    "lease_ms": ("queue.lease_timeout", 1, 12 * 3_600_000),
    "max_retries": ("queue.max_retries", 0, 1_000),
    "max_depth": ("queue.max_depth", 0, 1 << 40),
    "backoff_base_ms": ("queue.backoff_base", 1, 24 * 3_600_000),
    "backoff_factor": ("queue.backoff_factor", 1.0, 100.0),
    "backoff_cap_ms": ("queue.backoff_cap", 1, 7 * 24 * 3_600_000),
    "backoff_jitter": ("queue.backoff_jitter", 0.0, 1.0),
}
# NodeConfig field -> (TOML key, lowest allowed, highest allowed).
_RANGES: dict[str, tuple[str, float, float]] = {
    "tick_ms": ("raft.tick", 1, 10_000),
    "election_ticks": ("raft.election_ticks", 2, 10_000),
    "heartbeat_ticks": ("raft.heartbeat_ticks", 1, 10_000),
    "snapshot_entries": ("raft.snapshot_entries", 1, 1 << 40),
    # At most half the peer transport's frame bound (node/transport.py MAX_MESSAGE_BYTES, the
    # Raft codec's MAX_MESSAGE_DATA_BYTES): a bigger chunk or append could never be delivered.
    "snapshot_chunk_bytes": ("raft.snapshot_chunk_bytes", 1024, 32 << 20),
    "max_append_bytes": ("raft.max_append_bytes", 1024, 32 << 20),
    "max_snapshot_bytes": ("raft.max_snapshot_bytes", 1 << 20, 1 << 40),
    "max_inflight_msgs": ("raft.max_inflight_msgs", 1, 1 << 20),
    "http_threads": ("api.http_threads", 1, 1_024),
    "max_body_bytes": ("api.max_body_bytes", 1024, 1 << 30),
    # At most a worker message's bound (api/gateway.py MAX_WORKER_MESSAGE_BYTES).
    "max_result_bytes": ("api.max_result_bytes", 1024, 4 << 20),
    "request_timeout_ms": ("api.request_timeout", 1, 3_600_000),
    "max_wait_ms": ("api.max_wait", 1, 3_600_000),
    "drain_timeout_ms": ("api.drain_timeout", 1, 3_600_000),
    "ready_max_lag": ("api.ready_max_lag", 0, 1 << 40),
}


def queue_settings(values: dict[str, Any]) -> QueueConfig:
    """The queue settings of ``values`` (QueueConfig field -> value), defaults for the rest.

    Raises:
        ConfigError: naming the key of the first setting out of range.
    """
    settings = {**dataclasses.asdict(QueueConfig()), **values}
    _check_queue(settings)
    try:
        return QueueConfig(**settings)
    except ValueError as exc:  # a rule of QueueConfig's own that the ranges do not state
        raise ConfigError("queue", str(exc)) from None


def _check_queue(settings: dict[str, Any]) -> None:
    _check_values(settings, _QUEUE_RANGES)
    if settings["backoff_jitter"] >= 1.0:
        raise ConfigError("queue.backoff_jitter", "must be below 1")
    if settings["backoff_cap_ms"] < settings["backoff_base_ms"]:
        raise ConfigError("queue.backoff_cap", "must not be smaller than queue.backoff_base")


def _check_values(values: dict[str, Any], ranges: dict[str, tuple[str, float, float]]) -> None:
    for name, (key, low, high) in ranges.items():
        value = values[name]
        if not low <= value <= high:
            raise ConfigError(key, f"must be between {low} and {high}, got {value}")


def _check_ranges(config: NodeConfig) -> None:
    _check_values({name: getattr(config, name) for name in _RANGES}, _RANGES)
    if config.heartbeat_ticks >= config.election_ticks:
        raise ConfigError("raft.heartbeat_ticks", "must be smaller than raft.election_ticks")
    if config.max_snapshot_bytes < config.snapshot_chunk_bytes:
        raise ConfigError("raft.max_snapshot_bytes",
                          "must not be smaller than raft.snapshot_chunk_bytes")
