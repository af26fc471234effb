#!/usr/bin/env bash
# Side-by-side benchmark: NATS JetStream, RabbitMQ and dqueue, 3 nodes each on 127.0.0.1.
#   bench/compare/run.sh [--runs 3] [--quick] [--systems nats,rabbitmq,dqueue-http,dqueue-sdk]
# As root on a fresh Debian 12 machine it first installs what it needs: Debian's nats-server
# and rabbitmq-server (apt-get), and the Python clients of the `bench` extra (nats-py, aiormq)
# into the project's .venv. Then bench/compare/compare.py starts one cluster at a time, runs
# W1 to W4 on it and prints the table. A benchmark: it exits 0 whatever it measured, and it
# kills every process it started (by PID) and removes its temporary folders.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"

missing=()
command -v nats-server >/dev/null || missing+=(nats-server)
[ -x /usr/lib/rabbitmq/bin/rabbitmq-server ] || missing+=(rabbitmq-server)
if [ "${#missing[@]}" -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "run.sh: ${missing[*]} missing; run as root to install them with apt-get" >&2
        exit 0
    fi
    echo "run.sh: installing ${missing[*]} (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # --no-install-recommends keeps it to the servers (and Erlang); a service the package
    # starts on its default ports is left alone: the benchmark's nodes use their own ports.
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The project's venv with the bench extra (bin/_env.sh installs it on first use).
DQ_EXTRAS=bench
source "$ROOT/bin/_env.sh"

exec "$DQ_PY" "$ROOT/bench/compare/compare.py" "$@"
