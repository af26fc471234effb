#!/usr/bin/env bash
# Basic demo on the local cluster: start it (if it is down), enqueue a few tasks with the CLI,
# run a worker until they are done, show the stats, and stop the cluster again.
#   scripts/demo-basic.sh            (DQ_CONF_DIR / DQ_RUN_DIR as for scripts/cluster.sh)
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$HERE/../bin/_env.sh"
CLUSTER="$HERE/cluster.sh"
RUN_DIR="${DQ_RUN_DIR:-$DQ_ROOT/run/cluster}"
mkdir -p "$RUN_DIR"
step() { printf '\n== %s\n' "$*"; }

started=0
if ! "$CLUSTER" leader >/dev/null 2>&1; then
    step "starting the 3-node cluster"
    "$CLUSTER" up
    started=1
fi
SERVERS="$("$CLUSTER" urls)"
CLI=("$DQ_ROOT/bin/dqueue-cli" --server "$SERVERS")
WORKER_PID=""
cleanup() {
    if [ -n "$WORKER_PID" ]; then kill "$WORKER_PID" 2>/dev/null || true; wait "$WORKER_PID" 2>/dev/null || true; fi
    if [ "$started" = 1 ]; then step "stopping the cluster"; "$CLUSTER" down; fi
}
trap cleanup EXIT

step "cluster"
"$CLUSTER" status

step "enqueue 5 emails and one 1-second job with a higher priority"
show() { "$DQ_PY" -c 'import json, sys
print("enqueued %(id)s  type=%(type)s  priority=%(priority)s  %(status)s" % json.load(sys.stdin))'; }
for i in 1 2 3 4 5; do
    "${CLI[@]}" --json enqueue --type email \
        --payload "{\"to\":\"user$i@example.com\",\"subject\":\"hello $i\"}" | show
done
"${CLI[@]}" --json enqueue --type sleep --payload '{"seconds": 1}' --priority 10 | show
"${CLI[@]}" stats

step "run a worker (bin/dqueue-worker) until the queue is empty"
"$DQ_ROOT/bin/dqueue-worker" --server "$SERVERS" --types email,sleep \
    > "$RUN_DIR/demo-worker.log" 2>&1 &
WORKER_PID=$!
remaining() {
    "${CLI[@]}" --json stats | "$DQ_PY" -c '
import json, sys
by_type = json.load(sys.stdin).get("by_type", {})
print(sum(by_type.get(t, {}).get(s, 0) for t in ("email", "sleep") for s in ("pending", "leased")))'
}
deadline=$((SECONDS + 60))
while [ "$(remaining)" != 0 ]; do
    if [ $SECONDS -ge $deadline ]; then echo "demo: the worker did not drain the queue in 60 s" >&2; exit 1; fi
    sleep 0.5
done
kill -TERM "$WORKER_PID"; wait "$WORKER_PID" || true; WORKER_PID=""
echo "worker log ($RUN_DIR/demo-worker.log), last lines:"
tail -n 8 "$RUN_DIR/demo-worker.log"

step "stats after the worker"
"${CLI[@]}" stats
