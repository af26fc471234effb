"""Settings of the queue state machine, passed in as a value.

The settings shape the replicated state, so every member must apply each command under equal
settings. They are therefore replicated themselves: a node starts its state with the defaults,
each new leader proposes its own settings as a ``configure`` command before any other command
of its term, and snapshots carry the settings in force (docs/internals.md section 4).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

DAY_MS = 24 * 3_600_000


@dataclass(frozen=True, slots=True)
class QueueConfig:
    """Queue semantics and limits. Durations are integer milliseconds.

    The node's configuration holds the settings it proposes as leader (``NodeConfig.queue``,
    the ``[queue]`` section of its TOML file); the core never reads the node configuration.

    Attributes:
        lease_ms: Lease length when a lease or extend command gives none.
        max_retries: Retries after the first attempt before a task is dead (its attempts are
            max_retries + 1), when its enqueue and its queue give none.
        backoff_base_ms: Delay before the first retry.
        backoff_factor: Growth of the delay per further failed attempt.
        backoff_cap_ms: Upper bound of any retry delay, jitter included.
        backoff_jitter: Relative spread of the delay, in [0, 1): 0.2 means +/- 20 %.
        dedup_window_ms: How long an idempotency key deduplicates enqueues.
        retention_ms: How long completed, cancelled and dead tasks are kept before pruning.
        max_batch: Most tasks in one enqueue command.
        max_lease_tasks: Most tasks one lease command may take.
        max_lease_ms: Longest lease a lease or extend command may ask for.
        max_depth: Most tasks pending (delayed included) or leased at once; an enqueue that
            would go beyond it is refused whole with ``queue_full``. 0: no limit.
    """

    lease_ms: int = 30_000
    max_retries: int = 3
    backoff_base_ms: int = 1_000
    backoff_factor: float = 2.0
    backoff_cap_ms: int = 300_000
    backoff_jitter: float = 0.2
    dedup_window_ms: int = DAY_MS
    retention_ms: int = DAY_MS
    max_batch: int = 1_000
    max_lease_tasks: int = 100
    max_lease_ms: int = 12 * 3_600_000
    max_depth: int = 0

    def __post_init__(self) -> None:
        positive = {"lease_ms": self.lease_ms, "max_batch": self.max_batch,
                    "max_lease_tasks": self.max_lease_tasks, "max_lease_ms": self.max_lease_ms}
        for name, value in positive.items():
            if not isinstance(value, int) or value <= 0:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        non_negative = {"max_retries": self.max_retries, "backoff_base_ms": self.backoff_base_ms,
                        "backoff_cap_ms": self.backoff_cap_ms,
                        "dedup_window_ms": self.dedup_window_ms,
                        "retention_ms": self.retention_ms, "max_depth": self.max_depth}
        for name, value in non_negative.items():
            if not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
        if not self.backoff_factor >= 1.0:
            raise ValueError(f"backoff_factor must be >= 1, got {self.backoff_factor!r}")
        if not 0.0 <= self.backoff_jitter < 1.0:
            raise ValueError(f"backoff_jitter must be in [0, 1), got {self.backoff_jitter!r}")
        if self.lease_ms > self.max_lease_ms:
            raise ValueError("lease_ms must not exceed max_lease_ms")


def settings_to_plain(config: QueueConfig) -> dict[str, Any]:
    """Return the settings as a plain dict (field name to value), for commands and snapshots.

    ``max_depth`` is left out while it is 0 (no bound): members of an older version refuse a
    setting they do not know, so a rolling upgrade works as long as no bound is set.
    """
    plain = asdict(config)
    if not plain["max_depth"]:
        del plain["max_depth"]
    return plain


def settings_from_plain(obj: Any) -> QueueConfig:
    """Build settings from ``settings_to_plain`` output; missing fields take their default.

    Raises:
        ValueError: naming the first unknown, mistyped or out-of-range field.
    """
    if not isinstance(obj, dict):
        raise ValueError("settings must be an object")
    known = {field.name: field for field in fields(QueueConfig)}
    for name, value in obj.items():
        if name not in known:
            raise ValueError(f"settings.{name}: unknown setting")
        floats = name in ("backoff_factor", "backoff_jitter")
        if (isinstance(value, bool) or not isinstance(value, (int, float) if floats else int)
                or (floats and not math.isfinite(value))):
            raise ValueError(f"settings.{name}: must be a finite number")
    return QueueConfig(**obj)
