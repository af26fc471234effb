"""RaftConfig refuses settings that could never work."""

from __future__ import annotations

import pytest

from dqueue.raft import RaftConfig


def test_defaults_match_the_contract():
    config = RaftConfig("a", ("a", "b", "c"))
    assert (config.election_ticks, config.heartbeat_ticks) == (10, 2)
    assert config.pre_vote and config.check_quorum


@pytest.mark.parametrize("kwargs", [
    {"id": "z"},
    {"members": ("a", "a", "b")},
    {"heartbeat_ticks": 10},
    {"heartbeat_ticks": 0},
    {"max_inflight_msgs": 0},
    {"max_append_bytes": 0},
    {"snapshot_chunk_bytes": 0},
    {"snapshot_chunk_bytes": (64 << 20) + 1},  # above the codec's data bound
    {"members": tuple(f"m{i}" for i in range(65)), "id": "m0"},
    {"members": ("a", "b" * 257)},  # an id the codec refuses
    {"members": ("a", "")},
])
def test_bad_settings_are_refused(kwargs):
    values = {"id": "a", "members": ("a", "b", "c"), **kwargs}
    with pytest.raises(ValueError):
        RaftConfig(**values)
