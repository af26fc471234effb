"""Kill a process that writes the store at random points; every reported commit survives.

A child process opens a ``Store`` and commits in a loop what a node commits: batches of log
entries with a hard state whose term, vote and commit only move forward, new terms with a
conflicting suffix, snapshots it takes (``save_snapshot``, compacting the log) and snapshots it
installs (``save(snapshot=...)``). Before each commit it writes the operation to a pipe
(``B``), and after ``save`` returns it writes ``D``. The parent ``SIGKILL``s it at random points
(after a random number of commits, or right after the announcement of a large commit, so that
the kill lands inside it), reopens the store and checks that what it reads is exactly the
state after every reported commit, or that state plus the one commit in flight: no reported
commit lost, nothing half-applied, the hard state never back.

What this does not show: a SIGKILL leaves the kernel's page cache in place, so a commit that
reached ``write`` survives here even without any fsync. The ordering of data pages before the
meta page across a power cut rests on LMDB's synced commits, which the store turns on
(``tests/unit/node/test_store.py`` checks the flags; docs/raft-process.md, "Storage").
"""

from __future__ import annotations

import copy
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from dqueue.node.store import LoadedState, Store, StoredEntry, StoredHardState, StoredSnapshot

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
MEMBERS = ("n1", "n2", "n3")
MAP_BYTES = 1 << 30
# A commit that writes more than this is "large": the parent may kill right after its announcement.
LARGE_BYTES = 256 << 10
TEST_BUDGET_S = 15.0
MAX_ROUNDS = 24
MIN_ROUNDS = 4


def entry_data(index: int, term: int, size: int) -> bytes:
    """The data of a log entry, a function of its index, term and size only."""
    unit = b"%d.%d;" % (index, term)
    return (unit * (size // len(unit) + 1))[:size]


def snapshot_data(index: int, term: int, size: int) -> bytes:
    """The bytes of a snapshot, a function of its index, term and size only."""
    return entry_data(index, term, size)[::-1]


class Model:
    """What the store must hold after a sequence of operations: lists and dicts, no LMDB."""

    def __init__(self) -> None:
        self.hard: tuple[int, str | None, int] | None = None
        self.members: tuple[str, ...] | None = None
        self.snapshot: tuple[int, int, tuple[str, ...], bytes] | None = None
        self.log: dict[int, tuple[int, bytes]] = {}

    @classmethod
    def from_loaded(cls, loaded: LoadedState) -> Model:
        """The model of what a reopened store returned."""
        model = cls()
        if loaded.hard_state is not None:
            h = loaded.hard_state
            model.hard = (h.term, h.vote, h.commit)
        model.members = loaded.members
        if loaded.snapshot is not None:
            s = loaded.snapshot
            model.snapshot = (s.index, s.term, s.members, s.data)
        model.log = {e.index: (e.term, e.data) for e in loaded.entries}
        return model

    def state(self) -> Any:
        """Everything stored, in one comparable value."""
        return (self.hard, self.members, self.snapshot, sorted(self.log.items()))

    @property
    def last_index(self) -> int:
        """The index of the last entry, or of the snapshot when the log is empty."""
        if self.log:
            return max(self.log)
        return self.snapshot[0] if self.snapshot is not None else 0

    @property
    def snapshot_index(self) -> int:
        """The snapshot's last included index (0 without one)."""
        return self.snapshot[0] if self.snapshot is not None else 0

    def apply(self, op: dict[str, Any]) -> None:
        """Apply one operation the way ``Store.save`` / ``save_snapshot`` define it."""
        if op.get("snapshot") is not None:
            index, term, size = op["snapshot"]
            self.snapshot = (index, term, MEMBERS, snapshot_data(index, term, size))
            self.log = {i: v for i, v in self.log.items() if i > index}
        if op.get("entries") is not None:
            first, count, term, size = op["entries"]
            self.log = {i: v for i, v in self.log.items() if i < first}
            for i in range(first, first + count):
                self.log[i] = (term, entry_data(i, term, size))
        if op.get("hard") is not None:
            term, vote, commit = op["hard"]
            self.hard = (term, vote, commit)
        if op.get("members") is not None:
            self.members = tuple(op["members"])


def next_op(rng: random.Random, model: Model) -> dict[str, Any]:
    """The next operation a node could commit in this state (terms, votes, commits go forward)."""
    if model.hard is None:
        return {"kind": "save", "members": list(MEMBERS), "hard": [1, None, 0]}
    term, vote, commit = model.hard
    last, snap = model.last_index, model.snapshot_index
    roll = rng.random()
    if roll < 0.50:  # the leader's or a follower's batch: entries and the hard state with them
        count = rng.choice([1, 1, 2, 8, 64, 512])
        size = rng.choice([16, 200, 2_000])
        new_commit = rng.randint(commit, last + count)
        return {"kind": "save", "entries": [last + 1, count, term, size],
                "hard": [term, vote, new_commit]}
    if roll < 0.60:  # a new term and a vote (a candidate, or a vote granted)
        return {"kind": "save", "hard": [term + 1, rng.choice([*MEMBERS, None]), commit]}
    if roll < 0.72 and last > max(commit, snap):  # a new leader overwrites an uncommitted suffix
        first = rng.randint(max(commit, snap) + 1, last)
        return {"kind": "save", "entries": [first, rng.randint(1, 16), term + 1, 200],
                "hard": [term + 1, rng.choice(MEMBERS), commit]}
    if roll < 0.82 and commit - snap > 300 and commit in model.log:  # a snapshot it took
        index = rng.randint(snap + 1, commit)
        while index not in model.log:
            index += 1
        size = rng.choice([1_000, 100_000, 2_000_000])
        return {"kind": "save_snapshot", "snapshot": [index, model.log[index][0], size]}
    if roll < 0.85:  # a snapshot installed from the leader, past the end of the log
        index = last + rng.randint(1, 100)
        size = rng.choice([1_000, 1_000_000])
        return {"kind": "save", "snapshot": [index, term, size], "hard": [term, vote, index]}
    return {"kind": "save", "hard": [term, vote, min(last, commit + rng.randint(1, 10))]}


def op_bytes(op: dict[str, Any]) -> int:
    """About how many bytes an operation writes (its entries' and snapshot's data)."""
    written = 0
    if op.get("entries") is not None:
        written += op["entries"][1] * op["entries"][3]
    if op.get("snapshot") is not None:
        written += op["snapshot"][2]
    return written


def run_op(store: Store, op: dict[str, Any]) -> None:
    """Perform one operation on the real store."""
    snap = None
    if op.get("snapshot") is not None:
        index, term, size = op["snapshot"]
        snap = StoredSnapshot(index, term, MEMBERS, snapshot_data(index, term, size))
    if op["kind"] == "save_snapshot":
        assert snap is not None
        store.save_snapshot(snap)
        return
    entries = None
    if op.get("entries") is not None:
        first, count, term, size = op["entries"]
        entries = [StoredEntry(i, term, 0, entry_data(i, term, size))
                   for i in range(first, first + count)]
    hard = StoredHardState(*op["hard"]) if op.get("hard") is not None else None
    store.save(entries=entries or (), hard_state=hard, snapshot=snap, members=op.get("members"))


def child_main(data_dir: str, seed: int) -> None:
    """The writer: commit forever, announcing each commit before and reporting it after."""
    store = Store(data_dir, map_size_bytes=MAP_BYTES)
    model = Model.from_loaded(store.load())
    rng = random.Random(seed)
    out = sys.stdout
    while True:
        op = next_op(rng, model)
        out.write("B " + json.dumps({**op, "large": op_bytes(op) > LARGE_BYTES}) + "\n")
        out.flush()
        run_op(store, op)
        out.write("D\n")  # reported only once save returned: the commit is synced
        out.flush()
        model.apply(op)


def test_every_reported_commit_survives_a_kill_and_the_hard_state_never_goes_back(tmp_path):
    rng = random.Random(20261202)
    data_dir = str(tmp_path / "node")
    done = Model()  # the state after every commit the children reported
    started = time.monotonic()
    outcomes = {"in_flight_kept": 0, "in_flight_lost": 0, "between_commits": 0}
    rounds = large_kills = 0
    previous_hard = (0, None, 0)
    while rounds < MAX_ROUNDS and (rounds < MIN_ROUNDS
                                   or time.monotonic() - started < TEST_BUDGET_S):
        rounds += 1
        kill_on_large = rng.random() < 0.6
        target = rng.randint(1, 4) if kill_on_large else rng.randint(1, 250)
        # Inside a large commit: a random point of its first ~40 ms (building its records,
        # writing its pages, the fsyncs); the delay is the fault injected, not a wait.
        delay_s = rng.uniform(0.0, 0.04) if kill_on_large else 0.0
        proc = subprocess.Popen(
            [sys.executable, "-c",
             "import sys; from tests.integration.test_store_power_cut import child_main; "
             "child_main(sys.argv[1], int(sys.argv[2]))", data_dir, str(rng.randrange(1 << 30))],
            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        assert proc.stdout is not None
        lines: list[bytes] = []
        seen = 0
        try:
            for line in proc.stdout:
                lines.append(line)
                if kill_on_large:
                    if line.startswith(b"B ") and json.loads(line[2:])["large"]:
                        seen += 1
                else:
                    seen += line == b"D\n"
                if seen >= target:
                    if delay_s:
                        time.sleep(delay_s)
                    os.kill(proc.pid, signal.SIGKILL)
                    break
            lines.extend(proc.stdout.readlines())  # whatever it wrote before it died
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            stderr = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
        assert proc.returncode == -signal.SIGKILL, f"the writer died on its own: {stderr}"
        large_kills += kill_on_large

        in_flight = None
        for line in lines:
            if line.startswith(b"B "):
                in_flight = json.loads(line[2:])
            elif line == b"D\n":
                assert in_flight is not None
                done.apply(in_flight)
                in_flight = None

        store = Store(data_dir, map_size_bytes=MAP_BYTES)  # the kill left no lock behind
        try:
            got = Model.from_loaded(store.load()).state()
        finally:
            store.close()
        if in_flight is None:
            outcomes["between_commits"] += 1
            assert got == done.state(), f"round {rounds}: a reported commit is missing"
        elif got == done.state():
            outcomes["in_flight_lost"] += 1  # killed before that commit completed: fine
        else:
            with_it = copy.deepcopy(done)
            with_it.apply(in_flight)
            assert got == with_it.state(), (
                f"round {rounds}: the store is neither the reported state nor that plus the "
                f"commit in flight ({in_flight['kind']})")
            outcomes["in_flight_kept"] += 1
            done = with_it
        hard = done.hard or (0, None, 0)
        assert hard[0] >= previous_hard[0] and hard[2] >= previous_hard[2], "hard state went back"
        previous_hard = hard
    print(f"power-cut test: {rounds} rounds in {time.monotonic() - started:.1f} s, "
          f"{large_kills} kills aimed inside a large commit, outcomes {outcomes}, "
          f"final hard state {done.hard}, snapshot at {done.snapshot_index}, "
          f"last index {done.last_index}, {len(done.log)} entries in the log")
    assert rounds >= MIN_ROUNDS and large_kills >= 1
