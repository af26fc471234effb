#!/usr/bin/env bash
# Chaos test: a 3-node cluster in network namespaces (one per node, joined by a bridge), with
# producers and workers recording every operation while a nemesis kills the leader every 10 s
# and, in between, pauses a node, partitions one, kills a follower, cuts the leader from its
# peers, and restarts everything. Then the faults stop, the cluster heals, the queue drains and
# the history checker reports. Needs root (network namespaces); refuses to run without them.
#   scripts/chaos-test.sh [--duration 60] [--interval 10] [--seed N] [--out DIR] [--help]
# Exit status: 0 valid, 1 a guarantee was broken, 2 the run could not be made.
source "$(dirname "${BASH_SOURCE[0]}")/../bin/_env.sh"
exec "$DQ_PY" -m dqueue.chaos run "$@"
