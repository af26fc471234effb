"""The simulator's state machine: values behind the real client sessions, and its snapshots."""

from __future__ import annotations

from dqueue.sim.machine import SimStateMachine, decode_proposal, encode_proposal


def test_a_repeat_is_answered_not_applied_and_a_stale_one_neither():
    machine = SimStateMachine()
    first = encode_proposal("c1", 1, 1, 5, b"v1")
    assert machine.apply(1, first) == (b"v1", False)
    assert machine.apply(2, first) is None  # a duplicated PROPOSE or a retry
    # The client saw seq 1 answered and moved on: its outcome may go, a late copy is STALE.
    assert machine.apply(3, encode_proposal("c1", 2, 2, 6, b"v2")) == (b"v2", False)
    assert machine.apply(4, first) is None
    assert machine.values == [b"v1", b"v2"] and machine.answered_repeats == 2


def test_data_without_a_session_applies_each_time_and_says_so():
    machine = SimStateMachine()
    assert machine.apply(1, b"plain") == (b"plain", False)
    assert machine.apply(2, b"plain") == (b"plain", True)


def test_snapshot_holds_values_and_sessions_and_is_the_same_bytes_for_the_same_log():
    log = [encode_proposal("c1", 1, 1, 1, b"a"), encode_proposal("c2", 1, 1, 2, b"b,c"),
           encode_proposal("c1", 1, 1, 3, b"a")]
    one, two = SimStateMachine(), SimStateMachine()
    for index, data in enumerate(log, 1):
        one.apply(index, data)
        two.apply(index, data)
    assert one.snapshot() == two.snapshot()
    restored = SimStateMachine.restore(one.snapshot())
    assert restored.values == [b"a", b"b,c"]
    assert restored.apply(4, log[0]) is None  # the restored sessions still answer the repeat
    assert restored.snapshot() == one.snapshot()


def test_proposal_header_round_trip():
    data = encode_proposal("c9", 7, 3, 42, b"v 1")
    assert decode_proposal(data) == ("c9", 7, 3, 42, b"v 1")
    assert decode_proposal(b"v1") is None
