"""Enqueue coalescing: jobs queued behind a command in flight share the next command."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

from dqueue.api.coalesce import EnqueueCoalescer
from dqueue.protocol import ipc
from dqueue.protocol.ipc_client import NoLeader
from dqueue.queue.fields import MAX_BATCH
from dqueue.testing import wait_for, wait_until
from tests.unit.router_thread import RouterThread


class GatedRaft:
    """Answers enqueue commands, each only once the test opens the gate."""

    def __init__(self) -> None:
        self.commands: list[list[str]] = []
        self.gate = threading.Semaphore(0)
        self.entered = threading.Semaphore(0)
        self.fail_with: Exception | None = None
        self.refuse: str | None = None

    def command(self, cmd: dict[str, Any], timeout_ms: int = 5000, wait_ms: int = 0) -> Any:
        ids = [t["id"] for t in cmd["tasks"]]
        self.commands.append(ids)
        self.entered.release()
        self.gate.acquire()
        if self.fail_with is not None:
            raise self.fail_with
        if self.refuse is not None and self.refuse in ids:
            return {"ok": False, "code": "invalid", "message": "refused", "field": "tasks"}
        return {"ok": True, "value": {"tasks": [{"id": i} for i in ids],
                                      "duplicates": [i.endswith("dup") for i in ids]}}

    def read(self, query: dict[str, Any], timeout_ms: int = 5000, stale: bool = False) -> Any:
        raise AssertionError

    def close(self) -> None:
        pass


def submit_in_thread(coalescer: EnqueueCoalescer, ids: list[str], out: dict[str, Any]) -> Any:
    def run() -> None:
        try:
            out[ids[0]] = coalescer.submit([{"id": i} for i in ids], 10)
        except Exception as exc:
            out[ids[0]] = exc

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def queued(coalescer: EnqueueCoalescer) -> int:
    return len(coalescer._queue)


def test_jobs_waiting_behind_a_command_share_the_next_one():
    raft = GatedRaft()
    coalescer = EnqueueCoalescer(lambda: raft, 1000, 1 << 20, max_in_flight=1)
    out: dict[str, Any] = {}
    threads = [submit_in_thread(coalescer, ["a"], out)]
    raft.entered.acquire()  # "a" is in flight alone
    threads += [submit_in_thread(coalescer, [f"b{i}", f"c{i}dup"], out) for i in range(3)]
    wait_for(lambda: queued(coalescer) == 3, 10.0, "3 jobs queued", interval_s=0.005)
    raft.gate.release()
    raft.entered.acquire()
    raft.gate.release()
    for thread in threads:
        thread.join(10)
    assert raft.commands[0] == ["a"]
    assert sorted(raft.commands[1]) == sorted(["b0", "c0dup", "b1", "c1dup", "b2", "c2dup"])
    assert out["a"] == {"ok": True, "value": {"tasks": [{"id": "a"}], "duplicates": [False]}}
    for i in range(3):
        assert out[f"b{i}"]["value"] == {"tasks": [{"id": f"b{i}"}, {"id": f"c{i}dup"}],
                                         "duplicates": [False, True]}
    assert coalescer.commands_sent == 2


def test_a_batch_never_exceeds_the_task_bound():
    raft = GatedRaft()
    coalescer = EnqueueCoalescer(lambda: raft, 1000, 1 << 30, max_in_flight=1)
    out: dict[str, Any] = {}
    threads = [submit_in_thread(coalescer, ["first"], out)]
    raft.entered.acquire()
    big = MAX_BATCH // 2 + 1
    threads += [submit_in_thread(coalescer, [f"j{j}-{i}" for i in range(big)], out)
                for j in range(2)]
    wait_for(lambda: queued(coalescer) == 2, 10.0, "2 jobs queued", interval_s=0.005)
    for _ in range(3):
        raft.gate.release()
    for thread in threads:
        thread.join(10)
    assert [len(c) for c in raft.commands] == [1, big, big]


def test_a_failure_reaches_every_job_of_the_command():
    raft = GatedRaft()
    coalescer = EnqueueCoalescer(lambda: raft, 1000, 1 << 20, max_in_flight=1)
    raft.fail_with = NoLeader("n2", None)
    out: dict[str, Any] = {}
    threads = [submit_in_thread(coalescer, ["a"], out)]
    raft.entered.acquire()
    threads += [submit_in_thread(coalescer, [f"b{i}"], out) for i in range(2)]
    wait_for(lambda: queued(coalescer) == 2, 10.0, "2 jobs queued", interval_s=0.005)
    raft.gate.release()
    raft.gate.release()
    for thread in threads:
        thread.join(10)
    assert all(isinstance(out[k], NoLeader) for k in ("a", "b0", "b1"))


def test_a_refused_job_is_retried_alone_so_the_others_succeed():
    raft = GatedRaft()
    raft.refuse = "bad"
    coalescer = EnqueueCoalescer(lambda: raft, 1000, 1 << 20, max_in_flight=1)
    out: dict[str, Any] = {}
    threads = [submit_in_thread(coalescer, ["a"], out)]
    raft.entered.acquire()
    threads += [submit_in_thread(coalescer, [name], out) for name in ("good", "bad")]
    wait_for(lambda: queued(coalescer) == 2, 10.0, "2 jobs queued", interval_s=0.005)
    for _ in range(4):
        raft.gate.release()
    for thread in threads:
        thread.join(10)
    assert out["good"]["ok"] is True
    assert out["bad"] == {"ok": False, "code": "invalid", "message": "refused", "field": "tasks"}


def test_a_broken_client_fails_the_job_and_the_turn_is_released():
    healthy = GatedRaft()
    calls = []

    def client_of():
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("cannot connect")
        return healthy

    coalescer = EnqueueCoalescer(client_of, 1000, 1 << 20, max_in_flight=1)
    with pytest.raises(RuntimeError):
        coalescer.submit([{"id": "a"}], 1)
    healthy.gate.release()
    assert coalescer.submit([{"id": "b"}], 1)["ok"] is True


def test_a_lone_request_is_sent_from_its_own_thread():
    seen = []

    class Recording(GatedRaft):
        def command(self, cmd, timeout_ms=5000, wait_ms=0):
            seen.append(threading.get_ident())
            self.gate.release()
            return super().command(cmd, timeout_ms, wait_ms)

    raft = Recording()
    coalescer = EnqueueCoalescer(lambda: raft, 1000, 1 << 20)
    assert coalescer.submit([{"id": "a"}], 1)["ok"] is True
    assert seen == [threading.get_ident()]
    assert coalescer._turns_taken == 0


def test_many_concurrent_submitters_each_get_their_own_tasks():
    class Instant:
        def __init__(self) -> None:
            self.lock = threading.Lock()
            self.sizes: list[int] = []

        def command(self, cmd, timeout_ms=5000, wait_ms=0):
            with self.lock:
                self.sizes.append(len(cmd["tasks"]))
            ids = [t["id"] for t in cmd["tasks"]]
            return {"ok": True, "value": {"tasks": [{"id": i} for i in ids],
                                          "duplicates": [False] * len(ids)}}

    raft = Instant()
    coalescer = EnqueueCoalescer(lambda: raft, 1000, 1 << 20)
    out: dict[str, Any] = {}

    def worker(w: int) -> None:
        for n in range(40):
            ids = [f"w{w}-{n}-{k}" for k in range(1 + (w + n) % 3)]
            out[ids[0]] = (ids, coalescer.submit([{"id": i} for i in ids], 10))

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(out) == 16 * 40
    for ids, outcome in out.values():
        assert [t["id"] for t in outcome["value"]["tasks"]] == ids
    assert sum(raft.sizes) == sum(len(ids) for ids, _ in out.values())
    assert coalescer._turns_taken == 0
    assert not coalescer._queue


class Interrupted(BaseException):
    """Stands for KeyboardInterrupt or SystemExit raised inside a sender."""


def test_an_interrupted_sender_still_answers_its_batch_and_passes_the_turn():
    raft = GatedRaft()
    interrupt_first = [True]

    class Interrupting(GatedRaft):
        def command(self, cmd, timeout_ms=5000, wait_ms=0):
            if interrupt_first.pop() if interrupt_first else False:
                raft.entered.release()
                raft.gate.acquire()
                raise Interrupted
            return raft.command(cmd, timeout_ms, wait_ms)

    interrupting = Interrupting()
    coalescer = EnqueueCoalescer(lambda: interrupting, 1000, 1 << 20, max_in_flight=1)
    out: dict[str, Any] = {}

    def first() -> None:
        try:
            coalescer.submit([{"id": "a"}], 1)
        except Interrupted:
            out["a"] = "interrupted"

    sender = threading.Thread(target=first)
    sender.start()
    raft.entered.acquire()  # "a" is in flight, its sender about to be interrupted
    queued_thread = submit_in_thread(coalescer, ["b"], out)
    wait_for(lambda: queued(coalescer) == 1, 10.0, "1 job queued", interval_s=0.005)
    raft.gate.release()  # "a" is interrupted; the turn moves to "b", which is sent
    raft.entered.acquire()
    raft.gate.release()
    sender.join(10)
    queued_thread.join(10)
    assert out["a"] == "interrupted"
    assert out["b"]["ok"] is True and out["b"]["value"]["tasks"] == [{"id": "b"}]
    assert coalescer._turns_taken == 0


class EnqueueServer(RouterThread):
    """A Raft process stand-in on a real IPC socket: answers every enqueue with its tasks.

    With ``hold_until``, each command is answered once that condition holds (e.g. requests
    are queued behind it) or after ``HOLD_S``, so that a loaded machine that runs the
    producers one after another still coalesces."""

    HOLD_S = 2.0

    def __init__(self, endpoint: str,
                 hold_until: Callable[[], bool] | None = None) -> None:
        super().__init__(endpoint)
        self.commands = 0
        self.hold_until = hold_until

    def on_request(self, sock: Any, identity: bytes, kind: bytes, body: Any) -> None:
        tasks = body["cmd"]["tasks"]
        if self.hold_until is not None:
            wait_until(self.hold_until, self.HOLD_S, interval_s=0.002)
        self.commands += 1
        outcome = {"ok": True, "value": {"tasks": tasks, "duplicates": [False] * len(tasks)}}
        self.send(sock, identity, ipc.encode_result(body["rid"], "outcome", outcome))


def test_an_unencodable_request_fails_alone_and_every_good_one_succeeds(tmp_path):
    """Three clients whose tasks cannot be encoded (a lone surrogate that slipped past
    validation) among eight good ones: before, each failed the whole coalesced command it
    shared (1,664 of 2,561 good enqueues failed, issue 13)."""
    from dqueue.protocol.ipc_client import BadRequest, RaftClient

    endpoint = "ipc://" + str(tmp_path / "raft.ipc")
    local = threading.local()

    def client_of() -> RaftClient:
        if not hasattr(local, "client"):
            local.client = RaftClient(endpoint)
        return local.client

    coalescer = EnqueueCoalescer(client_of, 2_000, 1 << 20)
    results: dict[str, list[Any]] = {}

    finished: list[str] = []

    def producer(name: str, bad: bool) -> None:
        out = results.setdefault(name, [])
        for n in range(20 if bad else 60):
            task = {"id": f"{name}-{n}", "type": "x", "payload": "\ud800" if bad else n}
            try:
                out.append(coalescer.submit([task], 10))
            except Exception as exc:
                out.append(exc)
        finished.append(name)

    # Hold each command until requests wait behind it (two, or every other live producer's):
    # once the bad producers are done, good requests must share commands.
    def queued_behind() -> bool:
        return len(coalescer._queue) >= min(2, 10 - len(finished))

    with EnqueueServer(endpoint, hold_until=queued_behind) as server:
        threads = [threading.Thread(target=producer, args=(f"good{i}", False)) for i in range(8)]
        threads += [threading.Thread(target=producer, args=(f"bad{i}", True)) for i in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    good = [r for name, rs in results.items() if name.startswith("good") for r in rs]
    bad = [r for name, rs in results.items() if name.startswith("bad") for r in rs]
    assert len(good) == 8 * 60 and all(isinstance(r, dict) and r["ok"] for r in good)
    assert len(bad) == 3 * 20 and all(isinstance(r, BadRequest) for r in bad)
    assert server.commands < len(good)  # still coalesced
