"""W1 to W4, driven the same way for every system.

Each load runs in its own processes (``spawn``), so that the driver's own CPU never serialises
several clients behind one interpreter lock. Every process builds its client, says it is ready,
and starts at one common instant; it stops at the deadline and sends back what it counted.

- W1: 4 producers, each enqueues one task and waits for its durable confirmation, for a fixed
  time: tasks/s, p50 and p99 of the confirmations' latency.
- W2: 1 producer, batches of 100 (every one confirmed before the next batch), fixed time: tasks/s.
- W3: 20,000 tasks preloaded; 4 consumers each take 1, acknowledge it, repeat, for a fixed time
  or until the backlog is drained: tasks/s.
- W4: 1 producer sends one task at a time to a node that is not the leader; the leader is
  killed with SIGKILL while it sends. Every failed send is retried (same key) after 50 ms,
  each attempt bounded by ``attempt_s``. Figures: the longest gap between two acknowledged
  sends, and how many acknowledged keys a read-back of everything stored does not find.
"""

from __future__ import annotations

import itertools
import multiprocessing
import queue as queue_mod
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from adapters import Target, make_client

SPAWN_TIMEOUT_S = 60.0
# Time given after the last process is ready before the window opens.
START_DELAY_S = 0.3
RETRY_PAUSE_S = 0.05


@dataclass(frozen=True)
class Plan:
    """How long (or how much) each workload runs."""

    w1_s: float = 10.0
    w2_s: float = 10.0
    w3_preload: int = 20_000
    w3_s: float = 10.0
    w4_before_kill_s: float = 3.0
    w4_after_kill_s: float = 12.0
    attempt_s: float = 1.0

    def describe(self) -> str:
        """One line for the report."""
        return (f"W1 {self.w1_s:g} s; W2 {self.w2_s:g} s; W3 {self.w3_preload:,} preloaded, "
                f"{self.w3_s:g} s or until drained; W4 kill after {self.w4_before_kill_s:g} s, "
                f"{self.w4_after_kill_s:g} s more, {self.attempt_s:g} s per attempt")


def _percentile(sorted_values: list[float], fraction: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, int(fraction * len(sorted_values)))
    return sorted_values[index]


def _cpu(outs: list[dict[str, Any]], seconds: float) -> str:
    """The load processes' CPU seconds per second of window, one figure per process."""
    return " ".join(f"{out['cpu_s'] / seconds:.2f}" for out in outs) if seconds > 0 else ""


# -- what each load process runs ------------------------------------------------------------


def _loop_w1(client: Any, tag: str, start: float, end: float, _arg: Any) -> dict[str, Any]:
    latencies: list[float] = []
    n = 0
    errors = 0
    while True:
        t0 = time.perf_counter()
        if t0 >= end:
            break
        try:
            client.enqueue(f"{tag}-{n}")
        except Exception:  # counted and reported, the load goes on
            errors += 1
            continue
        finally:
            n += 1
        t1 = time.perf_counter()
        if t0 >= start and t1 <= end:
            latencies.append(t1 - t0)
    return {"done": len(latencies), "latencies": latencies, "errors": errors}


def _loop_w2(client: Any, tag: str, start: float, end: float, batch: int) -> dict[str, Any]:
    done = 0
    errors = 0
    n = 0
    while True:
        t0 = time.perf_counter()
        if t0 >= end:
            break
        keys = [f"{tag}-{n + i}" for i in range(batch)]
        n += batch
        try:
            client.enqueue_batch(keys)
        except Exception:  # counted and reported
            errors += 1
            continue
        if t0 >= start and time.perf_counter() <= end:
            done += batch
    return {"done": done, "errors": errors}


def _loop_w3(client: Any, _tag: str, start: float, end: float, _arg: Any) -> dict[str, Any]:
    done = 0
    errors = 0
    last = start
    while time.perf_counter() < end:
        try:
            got = client.lease_ack()
        except Exception:  # counted and reported
            errors += 1
            continue
        if not got:
            break  # drained: nothing came within the wait
        now = time.perf_counter()
        if now <= end:
            done += 1
            last = now
    return {"done": done, "errors": errors, "last": last}


def _loop_preload(client: Any, tag: str, _start: float, _end: float,
                  count: int) -> dict[str, Any]:
    n = 0
    failures = 0
    while n < count and failures < 20:
        keys = [f"{tag}-{n + i}" for i in range(min(100, count - n))]
        try:
            client.enqueue_batch(keys)
        except Exception:  # retried, a bounded number of times
            failures += 1
            continue
        n += len(keys)
    return {"done": n, "errors": failures}


def _loop_w4(client: Any, tag: str, start: float, end: float, attempt_s: float,
             ) -> dict[str, Any]:
    acked: list[tuple[float, str]] = []
    errors = 0
    kinds: dict[str, int] = {}
    error_times: list[float] = []
    n = 0
    while time.perf_counter() < end:
        key = f"{tag}-{n}"
        while time.perf_counter() < end:
            try:
                client.enqueue(key, dedup=True)
            except Exception as exc:  # the same key is sent again
                errors += 1
                kinds[type(exc).__name__] = kinds.get(type(exc).__name__, 0) + 1
                error_times.append(time.perf_counter())
                time.sleep(RETRY_PAUSE_S)
                continue
            acked.append((time.perf_counter(), key))
            break
        n += 1
    return {"acked": acked, "errors": errors, "start": start, "error_kinds": kinds,
            "error_span_s": [round(error_times[0] - start, 3), round(error_times[-1] - start, 3)]
            if error_times else []}


def _loop_read_back(client: Any, _tag: str, _start: float, _end: float,
                    _arg: Any) -> dict[str, Any]:
    return {"keys": sorted(client.read_back())}


LOOPS: dict[str, Callable[..., dict[str, Any]]] = {
    "w1": _loop_w1, "w2": _loop_w2, "w3": _loop_w3, "preload": _loop_preload, "w4": _loop_w4,
    "read_back": _loop_read_back,
}


def _child(target: Target, role: str, tag: str, arg: Any, ready: Any, go: Any,
           results: Any) -> None:
    try:
        client = make_client(target)
    except Exception as exc:  # reported to the parent
        ready.put(f"connect failed: {exc!r}")
        return
    ready.put("ok")
    try:
        start_at, duration_s = go.get(timeout=SPAWN_TIMEOUT_S)
        # Both ends of the window are in this process's perf_counter, from the common wall
        # instant the parent chose.
        start = time.perf_counter() + max(0.0, start_at - time.time())
        while time.perf_counter() < start:
            time.sleep(0.001)
        cpu0 = time.process_time()
        out = LOOPS[role](client, tag, start, start + duration_s, arg)
        out["window_start"] = start
        # The driver's own CPU: a load process near 1.0 s per second is the bottleneck itself.
        out["cpu_s"] = time.process_time() - cpu0
        results.put(("ok", out))
    except Exception as exc:  # reported to the parent
        results.put(("error", repr(exc)))
    finally:
        client.close()


class Load:
    """``count`` processes running ``role`` against ``target``."""

    def __init__(self, target: Target, role: str, count: int, arg: Any = None) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.ready, self.go, self.results = ctx.Queue(), ctx.Queue(), ctx.Queue()
        self.procs = [ctx.Process(target=_child, daemon=True,
                                  args=(target, role, f"{role}-{i}", arg, self.ready, self.go,
                                        self.results))
                      for i in range(count)]
        for proc in self.procs:
            proc.start()
        for _ in self.procs:
            state = self.ready.get(timeout=SPAWN_TIMEOUT_S)
            if state != "ok":
                self.stop()
                raise RuntimeError(state)

    def begin(self, duration_s: float) -> float:
        """Open the window for every process; return its start (wall clock)."""
        start_at = time.time() + START_DELAY_S
        for _ in self.procs:
            self.go.put((start_at, duration_s))
        return start_at

    def collect(self, timeout_s: float) -> list[dict[str, Any]]:
        """Every process's result (raises if one failed or none came within the time)."""
        outs: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout_s
        try:
            for _ in self.procs:
                state, out = self.results.get(timeout=max(0.1, deadline - time.monotonic()))
                if state != "ok":
                    raise RuntimeError(out)
                outs.append(out)
        except queue_mod.Empty as exc:
            raise RuntimeError("a load process gave no result in time") from exc
        finally:
            self.stop()
        return outs

    def stop(self) -> None:
        """Join the processes; terminate (by PID) any that does not end in time."""
        for proc in self.procs:
            proc.join(timeout=10)
            if proc.is_alive():
                proc.terminate()
                proc.join(timeout=5)


def run(target: Target, role: str, count: int, duration_s: float, arg: Any = None,
        slack_s: float = 60.0) -> list[dict[str, Any]]:
    """Start ``count`` processes, run the window, return their results."""
    load = Load(target, role, count, arg)
    load.begin(duration_s)
    return load.collect(duration_s + slack_s)


# -- the four workloads ---------------------------------------------------------------------


def w1(target: Target, plan: Plan) -> dict[str, Any]:
    """W1: 4 producers, single confirmed enqueues."""
    outs = run(target, "w1", 4, plan.w1_s)
    latencies = sorted(x for out in outs for x in out["latencies"])
    return {"rate": len(latencies) / plan.w1_s,
            "p50_ms": _percentile(latencies, 0.50) * 1000,
            "p99_ms": _percentile(latencies, 0.99) * 1000,
            "errors": sum(out["errors"] for out in outs), "driver_cpu": _cpu(outs, plan.w1_s)}


def w2(target: Target, plan: Plan) -> dict[str, Any]:
    """W2: 1 producer, confirmed batches of 100."""
    outs = run(target, "w2", 1, plan.w2_s, 100)
    return {"rate": sum(out["done"] for out in outs) / plan.w2_s,
            "errors": sum(out["errors"] for out in outs), "driver_cpu": _cpu(outs, plan.w2_s)}


def preload(target: Target, count: int) -> int:
    """Enqueue ``count`` tasks (batches of 100, one process); return how many were stored."""
    outs = run(target, "preload", 1, 0.0, count, slack_s=600.0)
    return int(outs[0]["done"])


def w3(target: Target, plan: Plan) -> dict[str, Any]:
    """W3: 4 consumers, lease 1 and ack, over the preloaded backlog."""
    outs = run(target, "w3", 4, plan.w3_s)
    done = sum(out["done"] for out in outs)
    start = min(out["window_start"] for out in outs)
    # Drained before the deadline: the window ends with the last ack.
    elapsed = min(plan.w3_s, max(out["last"] for out in outs) - start)
    return {"rate": done / elapsed if elapsed > 0 else 0.0, "done": done,
            "errors": sum(out["errors"] for out in outs), "driver_cpu": _cpu(outs, elapsed)}


def w4(target: Target, plan: Plan, kill_leader: Callable[[], str],
       read_back_target: Callable[[], Target]) -> dict[str, Any]:
    """W4: kill the leader while a producer sends through another node; read back."""
    duration_s = plan.w4_before_kill_s + plan.w4_after_kill_s
    load = Load(target, "w4", 1, plan.attempt_s)
    start_at = load.begin(duration_s)
    time.sleep(max(0.0, start_at + plan.w4_before_kill_s - time.time()))
    killed = kill_leader()
    (out,) = load.collect(duration_s + 60.0)
    times = [t for t, _ in out["acked"]]
    end = out["window_start"] + duration_s
    # The window's end closes the last gap: a system that never recovers shows the whole rest.
    marks = [out["window_start"], *times, end]
    gap_s = max(b - a for a, b in itertools.pairwise(marks))
    acked = {key for _, key in out["acked"]}
    figures: dict[str, Any] = {"gap_s": gap_s, "acked": len(acked), "errors": out["errors"],
                               "killed": killed, "error_kinds": out["error_kinds"],
                               "error_span_s": out["error_span_s"],
                               "recovered": bool(times) and times[-1] > end - 1.0}
    try:
        (back,) = run(read_back_target(), "read_back", 1, 0.0, slack_s=120.0)
    except Exception as exc:  # the gap stands; the loss count is unknown
        figures["read_back_error"] = f"{type(exc).__name__}: {exc}"[:300]
        return figures
    figures["lost"] = len(acked - set(back["keys"]))
    return figures
