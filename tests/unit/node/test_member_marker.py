"""The member marker (dqueue/node/member_marker.py): an empty store under an id and key that
have been a member refuses to start; the marker is written once the store holds a term."""

from __future__ import annotations

import pytest

from dqueue.node.member_marker import ForgottenMember, MemberMarker, checked_marker, marker_path
from dqueue.node.store import LoadedState, StoredHardState


def loaded(term: int = 0, entries: int = 0) -> LoadedState:
    hard = None if term == 0 else StoredHardState(term, None, 0)
    return LoadedState(hard_state=hard, members=None, snapshot=None,
                       entries=[object()] * entries)  # type: ignore[list-item]


class ClosingStore:
    def __init__(self) -> None:
        self.closed = 0

    def close(self) -> None:
        self.closed += 1


def test_a_new_member_starts_and_is_marked_at_its_first_term(tmp_path):
    marker = MemberMarker(str(tmp_path), "n1")
    marker.check_start(loaded())
    path = tmp_path / "n1.member"
    marker.note_term(0)
    assert not path.exists()
    marker.note_term(1)
    assert path.exists() and path == tmp_path / "n1.member"
    assert str(path) == marker_path(str(tmp_path), "n1")
    assert not list(tmp_path.glob("*.tmp"))


def test_an_empty_store_under_a_marked_id_is_refused_and_closed(tmp_path):
    MemberMarker(str(tmp_path), "n2").note_term(4)
    store = ClosingStore()
    with pytest.raises(ForgottenMember, match=r"n2\.member") as refused:
        checked_marker(str(tmp_path), "n2", loaded(), store)  # type: ignore[arg-type]
    assert "cluster add" in str(refused.value) and "--join" in str(refused.value)
    assert store.closed == 1
    # Another id in the same folder is a new member.
    checked_marker(str(tmp_path), "n3", loaded(), ClosingStore())  # type: ignore[arg-type]


def test_a_store_that_holds_a_term_is_marked_at_start(tmp_path):
    MemberMarker(str(tmp_path), "n1").check_start(loaded(term=3, entries=2))
    assert (tmp_path / "n1.member").exists()
    MemberMarker(str(tmp_path), "n1").check_start(loaded(term=3))  # marked: still starts


def test_without_a_key_folder_nothing_is_checked_or_written(tmp_path):
    marker = MemberMarker("", "n1")
    marker.check_start(loaded())
    marker.note_term(5)
    assert list(tmp_path.iterdir()) == []
