"""SimNetwork: seeded faults and cuts, replayable."""

from __future__ import annotations

import random

from dqueue.raft import Message, MessageType
from dqueue.sim import LinkFaults, SimNetwork


def msg(n: int, sender: str = "a", to: str = "b") -> Message:
    return Message(MessageType.HEARTBEAT, to, sender, term=1, index=n)


def deliveries(seed: int, faults: LinkFaults, count: int = 200) -> list[tuple[int, int]]:
    net = SimNetwork(random.Random(seed), faults)
    for n in range(count):
        net.send(msg(n), now=n // 10)
    out = []
    for now in range(count):
        out.extend((now, m.index) for m in net.due(now))
    return out


def test_reliable_network_delivers_in_order_once():
    assert [i for _, i in deliveries(1, LinkFaults())] == list(range(200))


def test_faults_drop_duplicate_and_reorder():
    faults = LinkFaults(drop=0.2, duplicate=0.2, delay=0.3, max_delay_ticks=3)
    got = [i for _, i in deliveries(1, faults)]
    assert len(set(got)) < 200  # some lost
    assert len(got) > len(set(got))  # some twice
    assert got != sorted(got)  # some overtaken


def test_same_seed_same_faults():
    faults = LinkFaults(drop=0.2, duplicate=0.2, delay=0.3, max_delay_ticks=3)
    assert deliveries(5, faults) == deliveries(5, faults)
    assert deliveries(5, faults) != deliveries(6, faults)


def test_partition_cuts_both_directions_and_heal_restores():
    net = SimNetwork(random.Random(1), LinkFaults())
    net.partition([["a"], ["b", "c"]])
    for sender, to in [("a", "b"), ("b", "a"), ("b", "c")]:
        net.send(msg(0, sender, to), 0)
    assert [(m.sender, m.to) for m in net.due(0)] == [("b", "c")]
    net.heal()
    net.send(msg(0, "a", "b"), 1)
    assert len(net.due(1)) == 1
