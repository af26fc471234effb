"""The gateway's ack coalescing policy (dqueue/api/ack_hold.py), without sockets."""

from __future__ import annotations

from dqueue.api.ack_hold import (
    MAX_ACK_HOLD_MS,
    AckGroup,
    AckHold,
    batch_results,
    refusal,
)


def test_a_full_batch_asks_to_be_sent_and_take_empties_the_hold() -> None:
    hold = AckHold(window_ms=2, max_batch=3)
    assert [hold.hold((None, i, {"id": str(i)}), 10.0) for i in range(3)] == [False, False, True]
    assert [item["id"] for _, _, item in hold.take()] == ["0", "1", "2"]
    assert hold.held == [] and not hold.may_go(99.0)


def test_poll_waits_for_the_window_then_for_the_longest_hold() -> None:
    hold = AckHold(window_ms=2, max_batch=10)
    assert hold.poll_ms(0.0, 50) == 50  # nothing held: the gateway's own poll
    hold.hold((None, 0, {}), 0.0)  # held at 0.0 (times chosen to be exact in floating point)
    assert hold.poll_ms(0.0, 50) == 2 and hold.poll_ms(0.0, 1) == 1
    assert not hold.may_go(0.001)  # within the window
    hold.command_sent()
    assert not hold.may_go(0.004)  # window over, but an ack command is in flight
    assert hold.poll_ms(0.004, 50) == MAX_ACK_HOLD_MS - 4  # so the poll waits for the hold
    assert hold.may_go(MAX_ACK_HOLD_MS / 1000)
    hold.command_done()
    assert hold.in_flight == 0 and hold.may_go(0.004)


def test_batch_results_fan_out_a_refusal_and_refuse_a_wrong_shape() -> None:
    refused = {"ok": False, "code": "no_leader", "message": "m"}
    assert batch_results(refused, 2) == [refused, refused]
    done = {"ok": True, "value": {"results": [{"ok": True}, {"ok": False, "code": "not_found"}]}}
    assert batch_results(done, 2) == done["value"]["results"]
    assert batch_results(done, 3) is None
    assert batch_results({"ok": True, "value": {"results": [1, 2]}}, 2) is None
    assert batch_results({"ok": True, "value": "x"}, 1) is None


def test_a_group_is_answered_once_every_item_is_settled() -> None:
    group = AckGroup(b"w", 7, [None, None], 2)
    assert not group.settle(1, refusal({"ok": False, "code": "lease_conflict", "message": "x"}))
    assert group.settle(0, refusal({"ok": True}))
    assert group.results == [None, {"code": "lease_conflict", "message": "x"}]
    assert refusal({"ok": False}) == {"code": "invalid", "message": "None"}


def test_a_batch_is_full_once_its_messages_took_max_bytes() -> None:
    hold = AckHold(window_ms=2, max_batch=1_000, max_bytes=1_000)
    assert not hold.hold((None, 0, {"id": "0"}), 10.0, 400)
    assert not hold.hold((None, 1, {"id": "1"}), 10.0, 599)
    assert hold.hold((None, 2, {"id": "2"}), 10.0, 1)  # 1,000 bytes held: send now
    hold.take()
    assert not hold.hold((None, 3, {"id": "3"}), 10.0, 999)  # take() started the count over
    assert hold.hold((None, 4, {"id": "4"}), 10.0, 1)
