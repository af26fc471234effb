"""Deterministic cluster simulator for the Raft core: one thread, integer ticks, one seeded
``random.Random`` deciding every fault, and Raft's safety invariants checked after every step.
"""

from dqueue.sim.checker import Checker, InvariantViolation
from dqueue.sim.cluster import Cluster, SimDisk, SimNode
from dqueue.sim.network import LinkFaults, SimNetwork
from dqueue.sim.runner import SimConfig, SimResult, run_seed

__all__ = [
    "Checker",
    "Cluster",
    "InvariantViolation",
    "LinkFaults",
    "SimConfig",
    "SimDisk",
    "SimNetwork",
    "SimNode",
    "SimResult",
    "run_seed",
]
