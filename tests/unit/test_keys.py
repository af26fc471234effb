"""Key material of the peer transport: creating a cluster's keys and loading one node's."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
import zmq.auth

from dqueue.keys import PeerKeyError, create_cluster_keys, load_peer_keys

MEMBERS = ["n1", "n2", "n3"]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def keys(tmp_path: Path) -> Path:
    create_cluster_keys(str(tmp_path / "keys"), MEMBERS, ["w1"])
    return tmp_path / "keys"


def test_layout_and_permissions(keys):
    for member in MEMBERS:
        folder = keys / member
        assert mode(folder) == 0o700
        assert mode(folder / f"{member}.key_secret") == 0o600
        assert sorted(p.name for p in (folder / "members").iterdir()) == [
            "n1.key", "n2.key", "n3.key"]
        assert [p.name for p in (folder / "workers").iterdir()] == ["w1.key"]
    worker = keys / "w1"
    assert mode(worker / "w1.key_secret") == 0o600
    assert sorted(p.name for p in (worker / "members").iterdir()) == [
        "n1.key", "n2.key", "n3.key"]
    assert not (worker / "workers").exists()


def test_every_node_trusts_the_same_member_keys(keys):
    loaded = {m: load_peer_keys(str(keys / m), m, MEMBERS) for m in MEMBERS}
    assert all(k.members == loaded["n1"].members for k in loaded.values())
    for member, k in loaded.items():
        assert k.members[member] == k.public_key
        assert len(set(k.members.values())) == 3
    worker_public, _ = zmq.auth.load_certificate(str(keys / "w1" / "w1.key_secret"))
    assert loaded["n2"].workers == {"w1": worker_public}
    assert "secret" not in repr(loaded["n1"]).replace("secret_key", "")


def test_existing_keys_are_not_overwritten_without_force(keys):
    before = (keys / "n1" / "n1.key_secret").read_bytes()
    with pytest.raises(PeerKeyError, match="--force"):
        create_cluster_keys(str(keys), MEMBERS)
    assert (keys / "n1" / "n1.key_secret").read_bytes() == before
    written = create_cluster_keys(str(keys), MEMBERS, force=True)
    assert (keys / "n1" / "n1.key_secret").read_bytes() != before
    assert {w.kind for w in written} == {"secret", "member"}
    assert not list((keys / "n1" / "workers").iterdir())  # the old worker key went with --force


@pytest.mark.parametrize(("members", "workers"), [([], []), (["a", "a"], []), (["a"], ["a"]),
                                                  (["../x"], []), ([""], [])])
def test_bad_ids_are_refused(tmp_path, members, workers):
    with pytest.raises(PeerKeyError):
        create_cluster_keys(str(tmp_path / "k"), members, workers)


def test_missing_folder_or_secret(tmp_path, keys):
    with pytest.raises(PeerKeyError, match="no such key folder"):
        load_peer_keys(str(tmp_path / "absent"), "n1", MEMBERS)
    with pytest.raises(PeerKeyError, match="secret key is missing"):
        load_peer_keys(str(keys / "n1"), "n2", MEMBERS)  # n2's secret is not in n1's folder


def test_a_secret_key_readable_by_others_is_refused(keys):
    os.chmod(keys / "n1" / "n1.key_secret", 0o640)
    with pytest.raises(PeerKeyError, match="chmod 600"):
        load_peer_keys(str(keys / "n1"), "n1", MEMBERS)


def test_a_missing_member_key_is_refused(keys):
    (keys / "n1" / "members" / "n3.key").unlink()
    with pytest.raises(PeerKeyError, match="n3"):
        load_peer_keys(str(keys / "n1"), "n1", MEMBERS)


def test_a_key_of_a_non_member_is_not_trusted(keys):
    # members/ may hold more keys than the configured members: only members' are admitted.
    keys_of_two = load_peer_keys(str(keys / "n1"), "n1", ["n1", "n2"])
    assert sorted(keys_of_two.members) == ["n1", "n2"]


def test_own_public_key_must_match_the_secret(keys):
    (keys / "n1" / "members" / "n1.key").write_bytes(
        (keys / "n1" / "members" / "n2.key").read_bytes())
    with pytest.raises(PeerKeyError, match="differs"):
        load_peer_keys(str(keys / "n1"), "n1", MEMBERS)


def test_two_members_with_one_key_are_refused(keys):
    (keys / "n1" / "members" / "n3.key").write_bytes(
        (keys / "n1" / "members" / "n2.key").read_bytes())
    with pytest.raises(PeerKeyError, match="same key"):
        load_peer_keys(str(keys / "n1"), "n1", MEMBERS)


@pytest.mark.parametrize("content", [b"", b"garbage\n", b'curve\n    public-key = "short"\n'])
def test_malformed_key_files_are_refused(keys, content):
    (keys / "n1" / "members" / "n2.key").write_bytes(content)
    with pytest.raises(PeerKeyError):
        load_peer_keys(str(keys / "n1"), "n1", MEMBERS)


def test_a_malformed_secret_file_is_refused(keys):
    path = keys / "n1" / "n1.key_secret"
    path.write_bytes(b"not a certificate\n")
    with pytest.raises(PeerKeyError):
        load_peer_keys(str(keys / "n1"), "n1", MEMBERS)
