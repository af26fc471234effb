# Sourced by the bin/ wrappers: create .venv and install the project on first use, or again
# whenever pyproject.toml changes. Kept in shell so that a fresh machine needs only python3.
set -euo pipefail
DQ_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DQ_VENV="${DQUEUE_VENV:-$DQ_ROOT/.venv}"
dq_stamp="$DQ_VENV/.dqueue-installed"
dq_want="$(sha1sum "$DQ_ROOT/pyproject.toml" | cut -d' ' -f1)"
if [ ! -x "$DQ_VENV/bin/python" ] || [ "$(cat "$dq_stamp" 2>/dev/null)" != "$dq_want" ]; then
    echo "dqueue: setting up $DQ_VENV (first run only)..." >&2
    python3 -m venv "$DQ_VENV"
    "$DQ_VENV/bin/python" -m pip install --quiet --upgrade pip >&2
    "$DQ_VENV/bin/python" -m pip install --quiet -e "$DQ_ROOT[test]" >&2
    echo "$dq_want" > "$dq_stamp"
fi
DQ_PY="$DQ_VENV/bin/python"
