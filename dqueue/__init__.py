"""dqueue: a distributed task queue replicated by Raft."""

__version__ = "0.2.0"
