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

from dqueue.queue import Ack, AckBatch, Enqueue, Lease, Nack, NewTask, QueueConfig, QueueState

TYPES = ("email", "sms", "push", "report")


def make_payload(i: int, payload_bytes: int) -> dict[str, str]:
    """A JSON object whose compact encoding is ``payload_bytes`` long."""
    head = {"to": f"user-{i:08d}@example.com", "body": ""}
    pad = payload_bytes - len(json.dumps(head, separators=(",", ":")))
    head["body"] = "x" * max(pad, 0)
    return head


def make_enqueues(count: int, payload_bytes: int, batch: int, first: int = 0,
                  now_ms: int | None = None) -> list[Enqueue]:
    """Enqueues of tasks ``first`` to ``first + count - 1``, ``batch`` tasks per command."""
    commands = []
    for start in range(first, first + count, batch):
        tasks = tuple(NewTask(id=f"{i:032x}", type=TYPES[i % len(TYPES)],
                              payload=make_payload(i, payload_bytes), priority=i % 3)
                      for i in range(start, min(start + batch, first + count)))
        commands.append(Enqueue(tasks=tasks, now_ms=1_000 + start if now_ms is None else now_ms))
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
        return rate(count, self.wall_s, self.cpu_s)


def rate(count: int, wall_s: float, cpu_s: float) -> str:
    """Rates per wall and CPU second, and the CPU microseconds per item."""
    return (f"{count / wall_s:10,.0f}/s wall {count / cpu_s:10,.0f}/s cpu "
            f"{cpu_s / count * 1e6:6.2f} us cpu each")


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


def lease_ack_cycles(state: QueueState, cycles: int, index: int, typed: bool,
                     nack: bool = False) -> tuple[int, Timer]:
    """Lease one task and ack it (or nack it: it goes back to pending after a backoff)."""
    now_ms = state.clock_ms
    leases = [Lease(worker_id="w1", types=(TYPES[i % len(TYPES)],) if typed else None,
                    now_ms=now_ms) for i in range(cycles)]
    with Timer() as timer:
        for lease in leases:
            index += 1
            task = state.apply(lease, index)["value"]["tasks"][0]
            index += 1
            if nack:
                state.apply(Nack(id=task["id"], worker_id="w1", token=task["lease"]["token"],
                                 reason="boom", now_ms=now_ms), index)
            else:
                state.apply(Ack(id=task["id"], worker_id="w1", token=task["lease"]["token"],
                                now_ms=now_ms), index)
    return index, timer


def lease_batch_cycles(state: QueueState, tasks: int, batch: int,
                       index: int) -> tuple[int, list[tuple[float, float]]]:
    """Lease ``batch`` tasks per command and ack them with one ``ack_batch`` command.

    Returns the index and the (wall, CPU) seconds of the lease applies and of the ack_batch
    applies (the ack commands are built from the lease answers outside the timed part).
    """
    now_ms = state.clock_ms
    leases = [Lease(worker_id="w1", max_tasks=batch, now_ms=now_ms)
              for _ in range(tasks // batch)]
    spent = [[0.0, 0.0], [0.0, 0.0]]
    for lease in leases:
        index += 1
        wall_s, cpu_s = time.perf_counter(), time.process_time()
        leased = state.apply(lease, index)["value"]["tasks"]
        spent[0][0] += time.perf_counter() - wall_s
        spent[0][1] += time.process_time() - cpu_s
        acks = AckBatch(items=tuple(Ack(id=t["id"], worker_id="w1", token=t["lease"]["token"],
                                        now_ms=now_ms) for t in leased), now_ms=now_ms)
        index += 1
        wall_s, cpu_s = time.perf_counter(), time.process_time()
        state.apply(acks, index)
        spent[1][0] += time.perf_counter() - wall_s
        spent[1][1] += time.process_time() - cpu_s
    return index, [(wall, cpu) for wall, cpu in spent]


def top_up(state: QueueState, target: int, index: int, payload_bytes: int,
           first: int) -> tuple[int, int]:
    """Enqueue (untimed) until ``target`` tasks are pending; return the index and next id."""
    missing = target - state.stats()["by_status"]["pending"]
    if missing > 0:
        for command in make_enqueues(missing, payload_bytes, 100, first, state.clock_ms):
            index += 1
            state.apply(command, index)
        first += missing
    return index, first


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
    next_id = count
    for typed, nack in ((False, False), (True, False), (False, True)):
        index, next_id = top_up(state, count, index, payload_bytes, next_id)
        index, timer = lease_ack_cycles(state, cycles, index, typed, nack)
        label = ("lease(1 type)+ack" if typed else "lease(any)+nack  " if nack
                 else "lease(any)+ack   ")
        print(f"{label} cycles:       {timer.rate(cycles)} cycles")
    index, next_id = top_up(state, count, index, payload_bytes, next_id)
    index, spent = lease_batch_cycles(state, cycles, 100, index)
    print(f"{'lease, 100 tasks per command:':47}{rate(cycles, *spent[0])} tasks")
    print(f"{'ack_batch, 100 acks per command:':47}{rate(cycles, *spent[1])} acks")
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
