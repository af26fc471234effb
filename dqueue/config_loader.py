"""Loading a ``NodeConfig``: the flags of ``bin/dqueue``, the TOML file, the defaults.

``load_config(argv)`` parses the flags, reads the TOML file named by ``--config`` (layout in
``conf/dqueue.toml``, ``TOML_LAYOUT`` here), applies the precedence flag > file > default,
converts every value to its field's type (durations with ``dqueue/durations.py``) and hands the
result to ``dqueue.config.validate``. Every refusal is a ``ConfigError`` naming the key.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import tomllib
from collections.abc import Sequence
from typing import Any

from dqueue import __version__
from dqueue.config import ConfigError, NodeConfig, queue_settings, split_addr, validate
from dqueue.durations import parse_duration_ms
from dqueue.queue.config import QueueConfig

# TOML layout: section -> {toml key: NodeConfig field, or "queue.<QueueConfig field>"}. Keys of
# duration fields (the field name ends in _ms) drop the suffix and take a duration string such
# as "30s" or "1h30m".
TOML_LAYOUT: dict[str, dict[str, str]] = {
    "": {
        "id": "id",
        "data_dir": "data_dir",
        "http_addr": "http_addr",
        "raft_addr": "raft_addr",
        "worker_addr": "worker_addr",
        "bootstrap": "bootstrap",
        "join": "join",
        "repair": "repair",
        "log_level": "log_level",
        "log_format": "log_format",
        "secure_dir": "secure_dir",
        "insecure": "insecure",
    },
    "sqs": {"account_id": "sqs_account_id", "region": "sqs_region"},
    "queue": {
        "lease_timeout": "queue.lease_ms",
        "max_retries": "queue.max_retries",
        "backoff_base": "queue.backoff_base_ms",
        "backoff_factor": "queue.backoff_factor",
        "backoff_cap": "queue.backoff_cap_ms",
        "backoff_jitter": "queue.backoff_jitter",
        "dedup_window": "queue.dedup_window_ms",
        "retention": "queue.retention_ms",
        "max_depth": "queue.max_depth",
    },
    "raft": {
        "tick": "tick_ms",
        "election_ticks": "election_ticks",
        "heartbeat_ticks": "heartbeat_ticks",
        "snapshot_entries": "snapshot_entries",
        "snapshot_chunk_bytes": "snapshot_chunk_bytes",
        "max_snapshot_bytes": "max_snapshot_bytes",
        "max_append_bytes": "max_append_bytes",
        "max_inflight_msgs": "max_inflight_msgs",
    },
    "api": {
        "http_threads": "http_threads",
        "max_body_bytes": "max_body_bytes",
        "max_result_bytes": "max_result_bytes",
        "request_timeout": "request_timeout_ms",
        "max_wait": "max_wait_ms",
        "drain_timeout": "drain_timeout_ms",
        "ready_max_lag": "ready_max_lag",
        "open_health": "open_health",
    },
}
# Tables of member id -> address.
TOML_TABLES = {"peers": "peers", "peers_http": "peers_http"}

# Flag -> (NodeConfig field or "queue.<QueueConfig field>", TOML key used in messages).
FLAGS: dict[str, tuple[str, str]] = {
    "id": ("id", "id"),
    "data-dir": ("data_dir", "data_dir"),
    "http-addr": ("http_addr", "http_addr"),
    "raft-addr": ("raft_addr", "raft_addr"),
    "worker-addr": ("worker_addr", "worker_addr"),
    "peers": ("peers", "peers"),
    "peers-http": ("peers_http", "peers_http"),
    "bootstrap": ("bootstrap", "bootstrap"),
    "join": ("join", "join"),
    "repair": ("repair", "repair"),
    "lease-timeout": ("queue.lease_ms", "queue.lease_timeout"),
    "max-retries": ("queue.max_retries", "queue.max_retries"),
    "log-level": ("log_level", "log_level"),
    "log-format": ("log_format", "log_format"),
    "secure-dir": ("secure_dir", "secure_dir"),
    "insecure": ("insecure", "insecure"),
}

_TRUE = ("true", "1", "yes", "on")
_FALSE = ("false", "0", "no", "off")


def duration_setting_ms(raw: Any, key: str) -> int:
    """A duration setting (``dqueue/durations.py``: "30s", "500ms", "1h30m") in milliseconds.

    Raises:
        ConfigError: naming ``key`` when the value is not a duration of at least 1ms.
    """
    try:
        ms = parse_duration_ms(raw)
    except ValueError as exc:
        raise ConfigError(key, str(exc)) from None
    if ms < 1:
        raise ConfigError(key, f"the duration must be at least 1ms, got {raw!r}")
    return ms


def parse_bool(value: Any, key: str) -> bool:
    """Accept a TOML boolean or the flag spellings true/false/1/0/yes/no/on/off."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in _TRUE:
        return True
    if isinstance(value, str) and value.lower() in _FALSE:
        return False
    raise ConfigError(key, f"expected true or false, got {value!r}")


def parse_members(value: Any, key: str) -> dict[str, str]:
    """Parse ``id=host:port,...`` (flag) or a TOML table of id -> address.

    Raises:
        ConfigError: on a duplicate id, an empty part or a bad address.
    """
    pairs: list[tuple[str, Any]]
    if isinstance(value, dict):
        pairs = list(value.items())
    elif isinstance(value, str):
        pairs = []
        for part in (p.strip() for p in value.split(",")):
            if not part:
                continue
            member_id, sep, addr = part.partition("=")
            if not sep:
                raise ConfigError(key, f"expected id=host:port, got {part!r}")
            pairs.append((member_id.strip(), addr.strip()))
    else:
        raise ConfigError(key, "expected id=host:port,... or a table of id = address")
    members: dict[str, str] = {}
    for member_id, addr in pairs:
        if member_id in members:
            raise ConfigError(key, f"duplicate member id {member_id!r}")
        if not isinstance(addr, str):
            raise ConfigError(f"{key}.{member_id}", "the address must be a string")
        split_addr(addr, f"{key}.{member_id}", need_host=True)
        members[member_id] = addr
    return members


def build_parser() -> argparse.ArgumentParser:
    """The flags of ``bin/dqueue``: the seed's names plus ours."""
    parser = argparse.ArgumentParser(
        prog="dqueue",
        description="Run one dqueue node (Raft process and API process under a supervisor).",
        argument_default=argparse.SUPPRESS,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--config", metavar="FILE", help="TOML file (see conf/dqueue.toml)")
    parser.add_argument("--id", help="unique member id of this node (required)")
    parser.add_argument("--data-dir", help="data directory (default ./data)")
    parser.add_argument("--http-addr", help="HTTP API address (default 127.0.0.1:8080; "
                        "':8080' listens on every interface)")
    parser.add_argument("--raft-addr", help="peer transport address (default :9090)")
    parser.add_argument("--worker-addr", help="ZeroMQ worker gateway address "
                        "(default 127.0.0.1:9191)")
    parser.add_argument("--peers", help="members: id=host:port,... with this node included")
    parser.add_argument("--peers-http", help="members' HTTP addresses: id=host:port,...")
    parser.add_argument(
        "--bootstrap", nargs="?", const="true", help="bootstrap a new cluster (default false)"
    )
    parser.add_argument("--join", metavar="URL",
                        help="join a running cluster: start with no configuration and wait "
                             "to be added (`dqueue-cli cluster add`)")
    parser.add_argument(
        "--repair", nargs="?", const="true",
        help="if the store is corrupt, wipe this node's log and rejoin it from the peers "
             "(default false)",
    )
    parser.add_argument("--lease-timeout", help="visibility timeout, e.g. 30s (default 30s)")
    parser.add_argument(
        "--max-retries", help="failed attempts before the dead-letter queue (default 3)"
    )
    parser.add_argument("--log-level", help="debug, info, warning or error (default info)")
    parser.add_argument("--log-format", help="json or text (default json)")
    parser.add_argument(
        "--secure-dir", metavar="DIR",
        help="peer keys: this node's CURVE key pair and the members' public keys "
             "(create them with `dqueue-cli keys init`); without it peers must be on loopback",
    )
    parser.add_argument(
        "--insecure", nargs="?", const="true",
        help="allow non-loopback peers without keys (default false; see docs/security.md)",
    )
    return parser


def _normalize_argv(argv: Sequence[str]) -> list[str]:
    """Accept Go's single-dash long flags (``-id=dev``) as the seed's users type them."""
    known = {*FLAGS, "config"}
    out = []
    for arg in argv:
        name = arg[1:].partition("=")[0]
        if arg.startswith("-") and not arg.startswith("--") and name in known:
            arg = "-" + arg
        out.append(arg)
    return out


def load_config(argv: Sequence[str]) -> NodeConfig:
    """Resolve the configuration from flags, the TOML file they name, and the defaults.

    Raises:
        ConfigError: naming the key of the first impossible setting.
    """
    parser = build_parser()
    try:
        flags = vars(parser.parse_args(_normalize_argv(argv)))
    except SystemExit as exc:
        if exc.code == 0:
            raise
        raise ConfigError("flags", "invalid command line (see --help)") from None
    values: dict[str, Any] = {}
    if "config" in flags:
        values.update(read_toml(flags.pop("config")))
    for flag, raw in flags.items():
        name, key = FLAGS[flag.replace("_", "-")]
        values[name] = _convert(name, raw, key)
    if not values.get("id"):
        raise ConfigError("id", "a node id is required (--id or id in the config file)")
    queue = {name[6:]: values.pop(name) for name in list(values) if name.startswith("queue.")}
    config = NodeConfig(**values, queue=queue_settings(queue))
    return validate(_settle_raft_addr(config, explicit="raft_addr" in values))


def read_toml(path: str) -> dict[str, Any]:
    """Read a TOML file laid out as ``TOML_LAYOUT`` into NodeConfig field values (queue
    settings under ``queue.<QueueConfig field>``).

    Raises:
        ConfigError: on an unreadable file, an unknown key or a value of the wrong kind.
    """
    try:
        with open(path, "rb") as fh:
            doc = tomllib.load(fh)
    except OSError as exc:
        raise ConfigError("config", f"cannot read {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("config", f"{path} is not valid TOML: {exc}") from None
    values: dict[str, Any] = {}
    for key, raw in doc.items():
        if key in TOML_TABLES:
            values[TOML_TABLES[key]] = parse_members(raw, key)
        elif key in TOML_LAYOUT and key:
            if not isinstance(raw, dict):
                raise ConfigError(key, "expected a table")
            for sub_key, sub_raw in raw.items():
                if sub_key not in TOML_LAYOUT[key]:
                    raise ConfigError(f"{key}.{sub_key}", "unknown key")
                name = TOML_LAYOUT[key][sub_key]
                values[name] = _convert(name, sub_raw, f"{key}.{sub_key}")
        elif key in TOML_LAYOUT[""]:
            values[TOML_LAYOUT[""][key]] = _convert(TOML_LAYOUT[""][key], raw, key)
        else:
            raise ConfigError(key, "unknown key")
    return values


def _convert(name: str, raw: Any, key: str) -> Any:
    """Convert one flag or TOML value to the type of NodeConfig field ``name`` (or of
    QueueConfig field ``x`` for ``queue.x``)."""
    if name in ("peers", "peers_http"):
        return parse_members(raw, key)
    if name.endswith("_ms"):
        return duration_setting_ms(raw, key)
    owner, _, field_name = name.rpartition(".")
    kind = (QueueConfig if owner else NodeConfig).__dataclass_fields__[field_name].type
    if kind == "bool":
        return parse_bool(raw, key)
    if kind == "int":
        if isinstance(raw, int) and not isinstance(raw, bool):
            return raw
        if isinstance(raw, str) and re.fullmatch(r"-?\d+", raw):
            return int(raw)
        raise ConfigError(key, f"expected an integer, got {raw!r}")
    if kind == "float":
        if isinstance(raw, int | float) and not isinstance(raw, bool):
            return float(raw)
        try:
            return float(raw)
        except (TypeError, ValueError):
            raise ConfigError(key, f"expected a number, got {raw!r}") from None
    if not isinstance(raw, str):
        raise ConfigError(key, f"expected a string, got {raw!r}")
    return raw


def _settle_raft_addr(config: NodeConfig, explicit: bool) -> NodeConfig:
    """Take the raft address from this node's entry in ``peers`` when none was given."""
    if config.peers and config.id in config.peers and not explicit:
        return dataclasses.replace(config, raft_addr=config.peers[config.id])
    return config
