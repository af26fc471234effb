#!/usr/bin/env bash
# Run the 3-node cluster of conf/cluster-3/ as local processes on 127.0.0.1.
#   scripts/cluster.sh up | down | status | leader | urls | logs [NODE] [-n LINES]
#   scripts/cluster.sh kill NODE | pause NODE | resume NODE | restart NODE
# Data, logs and pid files live in run/cluster/ (DQ_RUN_DIR or --run-dir to change it);
# another set of node configs can be used with DQ_CONF_DIR or --conf-dir.
# Ports: HTTP 8081-8083, peers 8091-8093, workers 8101-8103; `up --base-port N` (or
# DQ_BASE_PORT) moves them to N+1.., N+11.., N+21.. (kept in <run-dir>/base_port).
# Secured by default: peer keys are created in <run-dir>/keys on the first start and each node
# gets --secure-dir; --insecure (or DQUEUE_INSECURE=1) runs without keys, loopback peers only.
source "$(dirname "${BASH_SOURCE[0]}")/../bin/_env.sh"
exec "$DQ_PY" -m dqueue.chaos.localcluster "$@"
