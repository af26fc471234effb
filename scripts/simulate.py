#!/usr/bin/env python3
"""Run the deterministic Raft simulator over many seeds, or replay one seed with a trace.

    scripts/simulate.py --seeds 1-10000 [--jobs 2]   # stop at the first violation
    scripts/simulate.py --seed 42 --trace            # replay one seed exactly, every event
    scripts/simulate.py --seeds 1-2000 --membership  # with membership changes (issue 16)
    scripts/simulate.py --seeds 1-2000 --keep-going  # list every failing seed, then totals

Odd seeds run a 3-member cluster, even seeds 5 members (unless --size is given). A violation
prints the seed, the tick, the broken property and the last events before it. With
--membership the leader also adds spare members as learners, promotes them once caught up and
removes members, itself included (MEMBERSHIP_CHANGES).
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import time
from dataclasses import replace

from dqueue.sim import SimConfig, SimResult, run_seed

# With --membership: spare members that may be added, and the chance per tick of a change.
MEMBERSHIP_CHANGES = {"spares": 4, "member_change_rate": 0.01}


def config_for(seed: int, size: int | None, ticks: int, membership: bool = False) -> SimConfig:
    """The run shape of one seed."""
    config = replace(SimConfig(), size=size or (3 if seed % 2 else 5), ticks=ticks)
    return replace(config, **MEMBERSHIP_CHANGES) if membership else config  # type: ignore[arg-type]


def _run(args: tuple[int, int | None, int, bool]) -> SimResult:
    seed, size, ticks, membership = args
    return run_seed(seed, config_for(seed, size, ticks, membership))


def parse_range(text: str) -> range:
    """``A-B`` (inclusive) or a single number."""
    first, _, last = text.partition("-")
    return range(int(first), int(last or first) + 1)


def report_violation(result: SimResult, size: int | None, ticks: int, events: int,
                     membership: bool) -> None:
    """Print a failing seed and replay it traced for its last events."""
    traced = run_seed(result.seed, config_for(result.seed, size, ticks, membership), trace=True,
                      keep_events=events)
    print(f"VIOLATION seed={result.seed} tick={result.tick}: {result.violation}")
    flag = " --membership" if membership else ""
    print(f"replay: scripts/simulate.py --seed {result.seed} --trace{flag}")
    print("last events:")
    for line in traced.events:
        print(f"  {line}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=parse_range, help="inclusive range, e.g. 1-10000")
    parser.add_argument("--seed", type=int, help="run one seed")
    parser.add_argument("--trace", action="store_true", help="print every event of --seed")
    parser.add_argument("--size", type=int, help="members (default: 3 for odd seeds, else 5)")
    parser.add_argument("--ticks", type=int, default=2000, help="faulty ticks per seed")
    parser.add_argument("--jobs", type=int, default=1, help="worker processes")
    parser.add_argument("--events", type=int, default=40, help="events shown on a violation")
    parser.add_argument("--membership", action="store_true",
                        help="add, promote and remove members during the run")
    parser.add_argument("--keep-going", action="store_true",
                        help="print each failing seed and go on; totals at the end")
    args = parser.parse_args(argv)
    if args.seed is not None:
        result = run_seed(args.seed, config_for(args.seed, args.size, args.ticks,
                                                args.membership),
                          trace=args.trace, keep_events=10**9 if args.trace else 0)
        for line in result.events:
            print(line)
        print(f"seed={result.seed} tick={result.tick} violation={result.violation} "
              f"stats={result.stats}")
        return 1 if result.violation else 0
    if args.seeds is None:
        parser.error("give --seeds A-B or --seed N")
    started = time.monotonic()
    work = [(seed, args.size, args.ticks, args.membership) for seed in args.seeds]
    done = 0
    failed: list[SimResult] = []
    with multiprocessing.Pool(args.jobs) as pool:
        for result in pool.imap(_run, work, chunksize=4):
            done += 1
            if result.violation and args.keep_going:
                failed.append(result)
                print(f"FAILED seed={result.seed} tick={result.tick}: {result.violation}",
                      flush=True)
            elif result.violation:
                pool.terminate()
                report_violation(result, args.size, args.ticks, args.events, args.membership)
                print(f"{done} seeds run in {time.monotonic() - started:.1f}s")
                return 1
            if done % 100 == 0:
                rate = done / (time.monotonic() - started)
                print(f"{done} seeds run, {len(failed)} failed ({rate:.2f} seeds/s)",
                      flush=True)
    elapsed = time.monotonic() - started
    liveness = sum(1 for r in failed if (r.violation or "").startswith("liveness"))
    print(f"{done} seeds, {len(failed) - liveness} violations, {liveness} liveness failures, "
          f"{elapsed:.1f}s ({done / elapsed:.2f} seeds/s)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
