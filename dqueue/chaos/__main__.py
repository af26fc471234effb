"""``python -m dqueue.chaos run ...`` (a chaos run) or ``check HISTORY`` (the checker alone)."""

from __future__ import annotations

import sys

from dqueue.chaos import checker, runner


def main(argv: list[str] | None = None) -> int:
    """Dispatch to the runner or the checker."""
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["run"]:
        return runner.main(args[1:])
    if args[:1] == ["check"]:
        return checker.main(args[1:])
    print("usage: python -m dqueue.chaos run [--duration S ...] | check HISTORY [--json]",
          file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
