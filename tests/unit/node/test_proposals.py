"""ProposalBatcher: the commands of one loop turn become one log entry, bounded in bytes."""

from __future__ import annotations

from typing import Any

from dqueue.node.codec import decode_entry_items
from dqueue.node.proposals import MAX_BATCH_COMMANDS, ProposalBatcher
from dqueue.queue import command_from_plain
from dqueue.queue.sessions import ClientSession
from dqueue.raft import ProposalDropped


class Core:
    """Stand-in for the core's propose: records entry data, or refuses it."""

    def __init__(self) -> None:
        self.proposed: list[bytes] = []
        self.refuse = False

    def propose(self, data: bytes) -> None:
        if self.refuse:
            raise ProposalDropped("n2")
        self.proposed.append(data)


def _tick(now_ms: int) -> dict[str, Any]:
    return {"op": "tick", "now_ms": now_ms}


def _items(data: bytes) -> list[tuple[str, Any]]:
    rids, cmds, _ = decode_entry_items(data)
    return list(zip(rids, cmds, strict=True))


def _batcher(core: Core, max_bytes: int = 1 << 19) -> tuple[ProposalBatcher, list[list[str]],
                                                             list[float]]:
    dropped: list[list[str]] = []
    sizes: list[float] = []
    return ProposalBatcher(max_bytes, core.propose, dropped.append, sizes.append), dropped, sizes


def test_commands_of_one_turn_become_one_entry_in_order():
    core = Core()
    batcher, dropped, sizes = _batcher(core)
    for i in range(50):
        batcher.add(f"r{i}", _tick(i))
    assert core.proposed == []  # nothing goes to the core before the turn's flush
    assert batcher.flush() == 50
    assert len(core.proposed) == 1
    assert _items(core.proposed[0]) == [(f"r{i}", _tick(i)) for i in range(50)]
    assert (batcher.entries_proposed, sizes, dropped) == (1, [50], [])
    assert batcher.flush() == 0  # an empty batch proposes nothing
    assert len(core.proposed) == 1


def test_batch_is_proposed_before_it_would_pass_the_byte_bound():
    core = Core()
    batcher, _, sizes = _batcher(core, max_bytes=200)
    for i in range(40):
        batcher.add(f"r{i}", _tick(i))
    batcher.flush()
    assert len(core.proposed) > 1
    assert all(len(data) <= 200 + 3 for data in core.proposed)  # 3: the array header
    items = [item for data in core.proposed for item in _items(data)]
    assert items == [(f"r{i}", _tick(i)) for i in range(40)]  # order kept across entries
    assert sum(sizes) == 40


def test_a_command_larger_than_the_bound_goes_alone():
    core = Core()
    batcher, _, _ = _batcher(core, max_bytes=100)
    big = {"op": "enqueue", "tasks": [{"id": "t", "type": "x", "payload": "p" * 500}]}
    batcher.add("small", _tick(1))
    batcher.add("big", big)
    batcher.add("after", _tick(2))
    batcher.flush()
    assert [decode_entry_items(d)[0] for d in core.proposed] == [
        ["small"], ["big"], ["after"]]


def test_batch_is_cut_at_the_command_limit():
    core = Core()
    batcher, _, sizes = _batcher(core)
    for i in range(MAX_BATCH_COMMANDS + 1):
        batcher.add("", _tick(i))
    batcher.flush()
    assert sizes == [MAX_BATCH_COMMANDS, 1]


def test_a_refused_batch_hands_back_its_request_ids_and_keeps_nothing():
    core = Core()
    core.refuse = True  # a leadership transfer is under way
    batcher, dropped, sizes = _batcher(core)
    cmd = {"op": "enqueue", "tasks": [{"id": "t1", "type": "x"}], "now_ms": 5}
    batcher.add("r1", cmd, command_from_plain(cmd))
    batcher.add("", _tick(5))  # the node's own tick carries no request id
    batcher.add("r2", _tick(5))
    assert batcher.flush() == 0
    assert dropped == [["r1", "r2"]]
    assert (batcher.entries_proposed, sizes, len(batcher)) == (0, [], 0)
    core.refuse = False
    batcher.add("r3", _tick(6), command_from_plain(_tick(6)))
    batcher.flush()
    assert batcher.take_parsed(core.proposed[0]) == (["r3"], [command_from_plain(_tick(6))],
                                                     [None])


def test_parsed_commands_are_found_only_by_the_exact_entry_bytes_and_only_once():
    core = Core()
    batcher, _, _ = _batcher(core)
    cmds = [{"op": "enqueue", "tasks": [{"id": f"t{i}", "type": "x"}], "now_ms": 7}
            for i in range(3)]
    parsed = [command_from_plain(c) for c in cmds]
    sessions = [ClientSession("n1.x", 1, 1), None, ClientSession("n2.y", 9, 4)]
    for i in range(3):
        batcher.add(f"r{i}", cmds[i], parsed[i], sessions[i])
    batcher.flush()
    data = core.proposed[0]
    other = core.proposed[0][:-1] + b"\x00"  # an entry another leader wrote at that index
    assert batcher.take_parsed(other) is None
    assert decode_entry_items(data)[2] == sessions  # the same sessions travel in the entry
    assert batcher.take_parsed(data) == (["r0", "r1", "r2"], parsed, sessions)
    assert batcher.take_parsed(data) is None


def test_forgotten_parsed_commands_are_not_found():
    core = Core()
    batcher, _, _ = _batcher(core)
    batcher.add("r0", _tick(1), command_from_plain(_tick(1)))
    batcher.flush()
    batcher.forget_parsed()  # the node stopped leading
    assert batcher.take_parsed(core.proposed[0]) is None


def test_a_batch_with_a_command_not_parsed_is_not_kept():
    core = Core()
    batcher, _, _ = _batcher(core)
    batcher.add("r0", _tick(1), command_from_plain(_tick(1)))
    batcher.add("r1", _tick(1))  # no parsed command: the apply decodes the entry
    batcher.flush()
    assert batcher.take_parsed(core.proposed[0]) is None
