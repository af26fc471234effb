"""Randomized simulation in CI: 300 seeds of 2,000 faulty ticks, 3- and 5-member clusters,
with every fault kind on (drop, duplicate, delay/reorder, partitions including the leader's
isolation and rolling splits, crashes with restarts from disk, crashes inside a Ready, repairs
that wipe a member's log, leadership transfers, clients re-sending commands)."""

from __future__ import annotations

import multiprocessing
import os
from dataclasses import replace

import pytest

from dqueue.sim import SimConfig, SimResult, run_seed

SEEDS = range(1, 301)
TICKS = 2000


def _run(seed: int) -> SimResult:
    return run_seed(seed, replace(SimConfig(), size=3 if seed % 2 else 5, ticks=TICKS))


@pytest.mark.sim
@pytest.mark.slow
def test_three_hundred_seeds_without_violation():
    config = SimConfig()
    assert config.faults.drop > 0 and config.faults.duplicate > 0 and config.faults.delay > 0
    assert config.partition_rate > 0 and config.crash_rate > 0 and config.transfer_rate > 0
    assert config.snapshot_every > 0
    jobs = max(1, min(2, os.cpu_count() or 1))
    with multiprocessing.get_context("fork").Pool(jobs) as pool:
        results = pool.map(_run, SEEDS, chunksize=10)
    failures = [f"seed {r.seed} tick {r.tick}: {r.violation}" for r in results if r.violation]
    assert not failures, "replay with scripts/simulate.py --seed N --trace:\n" + "\n".join(
        failures)
    assert all(r.stats["ticks"] >= TICKS for r in results)
    # Every run made progress and exercised elections, so the checks had work to do.
    assert all(r.stats["acked"] > 0 and r.stats["terms"] >= 1 for r in results)
    assert sum(r.stats["terms"] for r in results) > 2 * len(results)
    assert sum(r.stats["wipes"] for r in results) > 0  # repaired members rejoined
    # Crashes struck inside Readies at every point, writes of a commit index alone were
    # skipped, and clients' retries and duplicated proposals were answered by their sessions.
    for kind in ("crash_before_write", "crash_after_write", "crash_after_vote",
                 "skipped_writes", "retries", "answered_repeats"):
        assert sum(r.stats[kind] for r in results) > 0, kind
    assert sum(r.stats["duplicates"] for r in results) == 0
