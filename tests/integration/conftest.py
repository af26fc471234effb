"""Fixtures of the integration tests: clusters of real processes, closed after each test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from dqueue.testing.raftproc import RaftCluster


@pytest.fixture
def cluster_factory(tmp_path: Path) -> Iterator[Callable[..., RaftCluster]]:
    """``make(size, **overrides)`` builds ``RaftCluster``s under ``tmp_path``; every one is
    closed (its processes killed, by PID) after the test."""
    made: list[RaftCluster] = []

    def make(size: int, **overrides: Any) -> RaftCluster:
        cluster = RaftCluster(tmp_path, size, **overrides)
        made.append(cluster)
        return cluster

    yield make
    for cluster in made:
        cluster.close()
