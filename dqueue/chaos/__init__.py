"""Chaos harness: run a cluster under faults, record every client operation, check the history.

The package is a client of dqueue (stdlib only, HTTP to the nodes) and never imports the node.
``history`` holds the event format, ``checker`` judges a finished history, ``netns`` builds the
network namespaces that make partitions real, ``workload`` runs producers and workers,
``nemesis`` injects faults, ``runner`` ties them up. Node processes start and are signalled by
``dqueue.testing.processes``, as in every launcher of dqueue.
"""
