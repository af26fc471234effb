"""dqueue: a distributed task queue replicated by Raft."""

__version__ = "0.1.0.dev0"
