# Sourced by the bin/ wrappers: create .venv and install the project on first use, or again
# whenever pyproject.toml changes. Kept in shell so that a fresh machine needs only python3.
# A wrapper that needs optional dependencies sets DQ_EXTRAS (e.g. "test") before sourcing.
set -euo pipefail
DQ_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DQ_VENV="${DQUEUE_VENV:-$DQ_ROOT/.venv}"
DQ_EXTRAS="${DQ_EXTRAS:-}"
dq_stamp="$DQ_VENV/.dqueue-installed${DQ_EXTRAS:+-$DQ_EXTRAS}"
dq_want="$(sha1sum "$DQ_ROOT/pyproject.toml" | cut -d' ' -f1)"

dq_step() { echo "dqueue: $*" >&2; }

# Runs pip quietly into a log; on failure shows the end of the log and what to do.
dq_pip() {
    local log="$DQ_VENV/pip-install.log"
    if ! PIP_ROOT_USER_ACTION=ignore "$DQ_VENV/bin/python" -m pip install --quiet \
            --disable-pip-version-check --no-warn-script-location "$@" >>"$log" 2>&1; then
        tail -n 30 "$log" >&2
        dq_step "installation failed (full log: $log); check the network to the package" \
            "registry, then run the command again"
        exit 1
    fi
}

if [ ! -x "$DQ_VENV/bin/python" ] || [ "$(cat "$dq_stamp" 2>/dev/null)" != "$dq_want" ]; then
    dq_started=$SECONDS
    dq_step "setting up $DQ_VENV (first run, or pyproject.toml changed)"
    if [ ! -x "$DQ_VENV/bin/python" ]; then
        dq_step "[1/3] creating the virtual environment"
        python3 -m venv "$DQ_VENV"
    else
        dq_step "[1/3] virtual environment exists"
    fi
    dq_step "[2/3] installing dqueue and pyzmq, msgpack, lmdb, falcon, waitress, prometheus-client"
    dq_pip -e "$DQ_ROOT"
    if [ -n "$DQ_EXTRAS" ]; then
        dq_step "[3/3] installing the optional dependencies: $DQ_EXTRAS"
        dq_pip -e "$DQ_ROOT[$DQ_EXTRAS]"
    else
        dq_step "[3/3] no optional dependencies needed"
    fi
    echo "$dq_want" > "$dq_stamp"
    [ -z "$DQ_EXTRAS" ] || echo "$dq_want" > "$DQ_VENV/.dqueue-installed"
    dq_step "ready in $((SECONDS - dq_started)) s"
fi
DQ_PY="$DQ_VENV/bin/python"
