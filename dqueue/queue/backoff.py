"""Retry delays: exponential backoff with a jitter that is a pure function of its inputs.

Every member computes the same delay for the same failed attempt, so the jitter is derived
from the task id and the attempt number (a CRC-32), never drawn from a random generator.
"""

from __future__ import annotations

import zlib

from dqueue.queue.config import QueueConfig

_CRC_RANGE = float(1 << 32)


def jitter_unit(task_id: str, attempt: int) -> float:
    """Return a number in [0, 1) fixed by ``task_id`` and ``attempt``, equal on every member."""
    return zlib.crc32(f"{task_id}:{attempt}".encode()) / _CRC_RANGE


def backoff_ms(config: QueueConfig, task_id: str, attempt: int) -> int:
    """Return the delay before a task becomes visible again after failed attempt ``attempt``.

    The delay is ``base * factor ** (attempt - 1)``, capped at ``backoff_cap_ms``, then scaled
    by a factor in ``[1 - jitter, 1 + jitter)`` and capped again.

    Args:
        config: Backoff settings.
        task_id: Id of the task that failed.
        attempt: The attempt that failed, from 1.
    """
    cap = config.backoff_cap_ms
    exponent = max(attempt - 1, 0)
    try:
        raw = min(config.backoff_base_ms * config.backoff_factor**exponent, float(cap))
    except OverflowError:
        raw = float(cap)
    if config.backoff_jitter:
        raw *= 1.0 + config.backoff_jitter * (2.0 * jitter_unit(task_id, attempt) - 1.0)
    return min(cap, max(0, int(raw)))
