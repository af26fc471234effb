"""The Raft process's garbage-collector policy: collect the unfrozen objects, freeze survivors."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from dqueue.node.gcpause import OldObjectFreezer, paused_gc


@pytest.fixture
def unfrozen() -> Iterator[None]:
    """Leave the test process's collector as it found it: nothing frozen afterwards."""
    gc.collect()
    yield
    gc.unfreeze()
    gc.collect()


def test_paused_gc_pauses_inside_and_leaves_the_collector_as_it_was() -> None:
    assert gc.isenabled()
    with pytest.raises(KeyError), paused_gc():
        assert not gc.isenabled()
        raise KeyError("a failure inside the block")
    assert gc.isenabled()
    gc.disable()
    try:
        with paused_gc():
            assert not gc.isenabled()
        assert not gc.isenabled()  # not enabled by the block: it was off before
    finally:
        gc.enable()


def test_promotions_must_be_positive() -> None:
    with pytest.raises(ValueError, match="promotions"):
        OldObjectFreezer(promotions=0)


def test_waits_for_promotions_then_freezes_the_survivors(unfrozen: None) -> None:
    freezer = OldObjectFreezer(promotions=2)
    gc.collect()
    assert freezer.maybe_collect() is None  # nothing reached the oldest generation yet
    frozen_before = freezer.frozen_objects()
    kept = []
    while gc.get_count()[2] < 2:  # young collections push survivors into the oldest one
        kept.append([len(kept)])
    garbage = [[]]
    garbage[0].append(garbage)  # a cycle, unreachable once the name is gone
    del garbage
    ms = freezer.maybe_collect()
    assert ms is not None and ms >= 0  # it ran (None when it does not)
    assert freezer.frozen_objects() >= frozen_before + len(kept)
    assert gc.get_count()[2] == 0  # the oldest generation was just collected
    assert gc.collect() == 0  # the cycle was collected before the freeze, not frozen
    assert freezer.maybe_collect() is None


def test_frozen_objects_are_still_freed_by_reference_counting(unfrozen: None) -> None:
    freezer = OldObjectFreezer()
    kept = [[n] for n in range(10_000)]
    freezer.collect_and_freeze()
    frozen = freezer.frozen_objects()
    del kept
    assert freezer.frozen_objects() <= frozen - 10_000
