#!/usr/bin/env bash
# Failover demo on the local cluster (scripts/cluster.sh): find the leader, enqueue tasks,
# kill -9 the leader, show the new leader and how long the election took, check that every
# task is still there, restart the old node and show it rejoin.
#   scripts/demo-failover.sh [--runs N] [--tasks N] [--json FILE]
# Starts the cluster first if it is down (and stops it again at the end).
source "$(dirname "${BASH_SOURCE[0]}")/../bin/_env.sh"
exec "$DQ_PY" -m dqueue.chaos.failover "$@"
