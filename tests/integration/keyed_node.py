"""One real node with CURVE keys from ``dqueue-cli keys init``: shared by the integration tests
of worker keys and of lease fencing."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from dqueue.testing.cluster import NodeCluster

REPO = Path(__file__).resolve().parents[2]


def keys_init(out: Path, *args: str) -> None:
    """Run ``dqueue-cli keys init OUT ARGS...`` and fail the test if it fails."""
    done = subprocess.run([sys.executable, "-m", "dqueue.cli", "keys", "init", str(out), *args],
                          capture_output=True, text=True, timeout=60, cwd=str(REPO),
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 0, done.stderr


@contextmanager
def keyed_node(root: Path, workers: str) -> Iterator[NodeCluster]:
    """Node ``n1`` under ``root`` with the keys of ``root/keys`` (member n1, the comma-separated
    ``workers``), started and leading; stopped on exit."""
    keys_init(root / "keys", "--members", "n1", "--workers", workers)
    cluster = NodeCluster(root, 1, top={"secure_dir": str(root / "keys" / "n1")})
    try:
        cluster.start()
        cluster.leader()
        yield cluster
    finally:
        cluster.close()
