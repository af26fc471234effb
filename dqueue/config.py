"""Node configuration: one dataclass holding every setting, with its default.

Configuration is loaded once at start (flags, then the TOML file, then these defaults) and passed
down to the Raft process and the API process as a value; nothing reads it from a global.
The supervisor hands the resolved configuration to its children as JSON (``to_json``).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class NodeConfig:
    """Every setting of one node. Durations are integers in the unit their name says."""

    id: str
    data_dir: str = "./data"
    http_addr: str = ":8080"
    raft_addr: str = ":9090"
    worker_addr: str = ":9191"
    # Raft member id -> peer transport address (host:port), this node included. Empty with
    # bootstrap means a single-node cluster whose only member is this node at raft_addr.
    peers: dict[str, str] = field(default_factory=dict)
    bootstrap: bool = False
    log_level: str = "info"
    log_format: str = "json"

    # Queue semantics (must be equal on every member: they shape the replicated state).
    lease_timeout_ms: int = 30_000
    max_retries: int = 3
    backoff_base_ms: int = 1_000
    backoff_factor: float = 2.0
    backoff_cap_ms: int = 300_000
    backoff_jitter: float = 0.2
    dedup_window_ms: int = 24 * 3_600_000
    retention_ms: int = 24 * 3_600_000

    # Raft timing: time enters the core only as ticks of tick_ms.
    tick_ms: int = 50
    election_ticks: int = 10
    heartbeat_ticks: int = 2
    snapshot_entries: int = 10_000
    snapshot_chunk_bytes: int = 1 << 20
    max_append_bytes: int = 1 << 20
    max_inflight_msgs: int = 256

    # API process.
    http_threads: int = 32
    max_body_bytes: int = 1 << 20
    request_timeout_ms: int = 5_000
    max_wait_ms: int = 20_000

    def members(self) -> dict[str, str]:
        """Member id -> raft address, this node included."""
        if self.peers:
            return dict(self.peers)
        return {self.id: self.raft_addr}

    def ipc_endpoint(self) -> str:
        """The local API-to-Raft IPC endpoint of this node."""
        import os

        return "ipc://" + os.path.join(os.path.abspath(self.data_dir), "raft.ipc")

    def to_json(self) -> str:
        """Serialize the resolved configuration for a child process."""
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> NodeConfig:
        """Inverse of ``to_json``."""
        raw: dict[str, Any] = json.loads(text)
        return cls(**raw)
