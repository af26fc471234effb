"""QueueConfig rejects settings that would break the queue rules."""

from __future__ import annotations

import pytest

from dqueue.queue.config import QueueConfig


def test_defaults_match_the_node_defaults() -> None:
    config = QueueConfig()
    assert (config.lease_ms, config.max_retries, config.max_batch, config.max_lease_tasks) == \
        (30_000, 3, 1_000, 100)
    assert config.dedup_window_ms == config.retention_ms == 86_400_000


@pytest.mark.parametrize("kwargs", [{"lease_ms": 0}, {"max_retries": -1},
                                    {"backoff_factor": 0.5}, {"backoff_jitter": 1.0},
                                    {"retention_ms": 1.5}, {"lease_ms": 10, "max_lease_ms": 5}])
def test_rejects(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        QueueConfig(**kwargs)
