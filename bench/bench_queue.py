"""Benchmark of the queue state machine: apply rates, snapshot and restore, memory per task.

Run from the repository root:

    .venv/bin/python bench/bench_queue.py                 # 10,000 and 1,000,000 tasks
    .venv/bin/python bench/bench_queue.py --sizes 10000   # a quick run

Commands are built before the timed loops, as the node does when it decodes a log entry, so
the figures are the cost of ``QueueState.apply`` itself. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import time
import tracemalloc

from dqueue.queue import Ack, Enqueue, Lease, NewTask, QueueConfig, QueueState

TYPES = ("email", "sms", "push", "report")


def make_payload(i: int, payload_bytes: int) -> dict[str, str]:
    """A JSON object whose compact encoding is ``payload_bytes`` long."""
    head = {"to": f"user-{i:08d}@example.com", "body": ""}
    pad = payload_bytes - len(json.dumps(head, separators=(",", ":")))
    head["body"] = "x" * max(pad, 0)
    return head


def make_enqueues(count: int, payload_bytes: int, batch: int) -> list[Enqueue]:
    commands = []
    for start in range(0, count, batch):
        tasks = tuple(NewTask(id=f"{i:032x}", type=TYPES[i % len(TYPES)],
                              payload=make_payload(i, payload_bytes), priority=i % 3)
                      for i in range(start, min(start + batch, count)))
        commands.append(Enqueue(tasks=tasks, now_ms=1_000 + start))
    return commands


class Timer:
    """Wall-clock and CPU seconds of a block: the machine is shared, so both are printed."""

    def __enter__(self) -> Timer:
        self.wall_s, self.cpu_s = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall_s = time.perf_counter() - self.wall_s
        self.cpu_s = time.process_time() - self.cpu_s

    def rate(self, count: int) -> str:
        return f"{count / self.wall_s:10,.0f}/s wall {count / self.cpu_s:10,.0f}/s cpu"


def fill(state: QueueState, commands: list[Enqueue], index: int) -> tuple[int, Timer]:
    """Apply the enqueues; the cyclic collector walks only what the state holds.

    Everything alive before (the pre-built commands, an earlier state) is frozen out of the
    collector meanwhile: a node does not hold a million decoded commands, so their share of
    the collector's full collections would not be the state machine's cost.
    """
    gc.collect()
    gc.freeze()
    try:
        with Timer() as timer:
            for command in commands:
                index += 1
                state.apply(command, index)
    finally:
        gc.unfreeze()
    return index, timer


def lease_ack_cycles(state: QueueState, cycles: int, index: int, typed: bool) -> Timer:
    now_ms = state.clock_ms
    leases = [Lease(worker_id="w1", types=(TYPES[i % len(TYPES)],) if typed else None,
                    now_ms=now_ms) for i in range(cycles)]
    with Timer() as timer:
        for lease in leases:
            index += 1
            task = state.apply(lease, index)["value"]["tasks"][0]
            index += 1
            state.apply(Ack(id=task["id"], worker_id="w1", token=task["lease"]["token"],
                            now_ms=now_ms), index)
    return timer


def memory_per_task(count: int, payload_bytes: int) -> float:
    """Bytes per pending task held by the state, beyond the payload objects themselves."""
    gc.collect()
    tracemalloc.start()
    payloads = [make_payload(i, payload_bytes) for i in range(count)]
    with_payloads = tracemalloc.get_traced_memory()[0]
    state = QueueState(QueueConfig())
    for i in range(count):
        task = NewTask(id=f"{i:032x}", type=TYPES[i % len(TYPES)], payload=payloads[i],
                       priority=i % 3)
        state.apply(Enqueue(tasks=(task,), now_ms=1_000), i + 1)
    gc.collect()
    with_state = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return (with_state - with_payloads) / count


def run(count: int, payload_bytes: int) -> None:
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"\n== {count:,} pending tasks, {payload_bytes}-byte payloads (load {load}) ==")
    singles = make_enqueues(count, payload_bytes, 1)
    state = QueueState(QueueConfig())
    index, timer = fill(state, singles, 0)
    print(f"enqueue, {'1 task per command:':38}{timer.rate(count)} applies")
    del singles
    for paused in (False, True):
        batches = make_enqueues(count, payload_bytes, 100)
        batched = QueueState(QueueConfig())
        if paused:  # what the cyclic collector costs
            gc.disable()
        try:
            _, timer = fill(batched, batches, 0)
        finally:
            gc.enable()
        label = "100 tasks per command, collector off" if paused else "100 tasks per command"
        print(f"enqueue, {label + ':':38}{timer.rate(count)} tasks")
        del batched, batches
    cycles = min(count // 2, 100_000)
    for typed in (False, True):
        timer = lease_ack_cycles(state, cycles, index, typed)
        index += 2 * cycles
        label = "lease(1 type)+ack" if typed else "lease(any)+ack   "
        print(f"{label} cycles:       {timer.rate(cycles)} cycles")
    with Timer() as snap:
        data = state.snapshot()
    restored = QueueState(QueueConfig())
    with Timer() as restore:
        restored.restore(data)
    if restored.snapshot() != data:
        raise SystemExit("restore did not reproduce the snapshot")
    print(f"snapshot of {len(state._tasks):,} tasks ({len(data) / 1e6:,.1f} MB): "
          f"{snap.wall_s:.2f} s wall {snap.cpu_s:.2f} s cpu; "
          f"restore {restore.wall_s:.2f} s wall {restore.cpu_s:.2f} s cpu")
    del restored
    # The restore the node is advised to do: collector off, then the restored objects frozen
    # (moved out of every later collection) before it is on again.
    advised = QueueState(QueueConfig())
    with Timer() as restore:
        gc.disable()
        advised.restore(data)
        gc.freeze()
        gc.enable()
        [[] for _ in range(1_000)]  # allocations that would trigger the deferred collection
    gc.unfreeze()
    print(f"restore, collector off then gc.freeze(): "
          f"{restore.wall_s:.2f} s wall {restore.cpu_s:.2f} s cpu")
    del state, advised, data
    print(f"memory per pending task beyond its payload: "
          f"{memory_per_task(count, payload_bytes):,.0f} bytes")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,1000000",
                        help="comma-separated numbers of pending tasks")
    parser.add_argument("--payload-bytes", type=int, default=200)
    args = parser.parse_args()
    for size in (int(s) for s in args.sizes.split(",")):
        run(size, args.payload_bytes)


if __name__ == "__main__":
    main()
