"""The tokens file: hashing, comparing, parsing, writing, and re-reading when it changes."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import stat

import pytest

from dqueue import tokens as t


def test_a_token_has_256_random_bits_and_only_its_sha256_is_stored(tmp_path):
    token, entry = t.add_token(str(tmp_path / "sec"), "ci", frozenset({"produce"}))
    assert token.startswith(t.TOKEN_PREFIX) and len(token) == len(t.TOKEN_PREFIX) + 43
    assert entry.sha256 == hashlib.sha256(token.encode()).hexdigest()
    text = (tmp_path / "sec" / "tokens.json").read_text()
    assert token not in text and token[len(t.TOKEN_PREFIX):] not in text
    assert entry.sha256 in text
    assert len({t.new_token() for _ in range(100)}) == 100


def test_match_compares_every_entry_with_compare_digest(monkeypatch):
    entries = [t.TokenEntry(f"n{i}", frozenset({"read"}), t.hash_token(f"tok{i}"))
               for i in range(5)]
    calls = []
    real = hmac.compare_digest

    def counting(a, b):
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(t.hmac, "compare_digest", counting)
    assert t.match_token(entries, "tok1").name == "n1"
    assert len(calls) == 5  # no early exit: the time does not tell which entry matched
    calls.clear()
    assert t.match_token(entries, "tok9") is None
    assert len(calls) == 5
    assert t.match_token(entries, "") is None


@pytest.mark.parametrize("content, says", [
    ("{", "not valid JSON"),
    ('{"version": 2, "tokens": []}', "expected"),
    ('{"version": 1}', "expected"),
    ('{"version": 1, "tokens": [3]}', "tokens[0]: not an object"),
    ('{"version": 1, "tokens": [{"name": "a b", "roles": ["read"], "sha256": "' + "0" * 64
     + '"}]}', "tokens[0].name"),
    ('{"version": 1, "tokens": [{"name": "a", "roles": ["root"], "sha256": "' + "0" * 64
     + '"}]}', "tokens[0].roles"),
    ('{"version": 1, "tokens": [{"name": "a", "roles": [], "sha256": "' + "0" * 64
     + '"}]}', "tokens[0].roles"),
    ('{"version": 1, "tokens": [{"name": "a", "roles": ["read"], "sha256": "xyz"}]}',
     "tokens[0].sha256"),
    ('{"version": 1, "tokens": [{"name": "a", "roles": ["read"], "sha256": "' + "0" * 64
     + '"}, {"name": "a", "roles": ["read"], "sha256": "' + "1" * 64 + '"}]}', "twice"),
])
def test_a_malformed_file_is_refused_naming_the_file_and_the_fault(tmp_path, content, says):
    path = tmp_path / "tokens.json"
    path.write_text(content)
    with pytest.raises(t.TokenFileError, match=r"tokens\.json") as info:
        t.read_tokens(path)
    assert says in str(info.value)


def test_a_missing_file_means_no_tokens(tmp_path):
    assert t.read_tokens(tmp_path / "tokens.json") is None
    assert t.list_tokens(str(tmp_path)) == ()


def test_add_list_remove_and_permissions(tmp_path):
    secure = str(tmp_path / "sec")
    t.add_token(secure, "ci", frozenset({"produce", "read"}))
    t.add_token(secure, "w1", frozenset({"consume"}))
    with pytest.raises(t.TokenFileError, match="exists already"):
        t.add_token(secure, "ci", frozenset({"read"}))
    with pytest.raises(t.TokenFileError, match="name"):
        t.add_token(secure, "../x", frozenset({"read"}))
    assert [(e.name, e.roles) for e in t.list_tokens(secure)] == [
        ("ci", frozenset({"produce", "read"})), ("w1", frozenset({"consume"}))]
    assert stat.S_IMODE(os.stat(secure).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(t.tokens_path(secure)).st_mode) == 0o600
    assert t.remove_token(secure, "ci").name == "ci"
    assert [e.name for e in t.list_tokens(secure)] == ["w1"]
    with pytest.raises(t.TokenFileError, match="no token named"):
        t.remove_token(secure, "ci")
    doc = json.loads(t.tokens_path(secure).read_text())
    assert doc["version"] == 1 and doc["tokens"][0]["roles"] == ["consume"]


def test_roles_parse():
    assert t.parse_roles("produce, consume") == {"produce", "consume"}
    for bad in ("", "root", "read,root"):
        with pytest.raises(ValueError, match="roles"):
            t.parse_roles(bad)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_file_is_reread_when_it_changes_at_most_once_a_second(tmp_path):
    secure = str(tmp_path)
    clock = Clock()
    seen = []
    tokens = t.TokenFile(t.tokens_path(secure), clock=clock,
                         on_reload=lambda entries, error: seen.append(error))
    assert tokens.entries() is None
    t.add_token(secure, "ci", frozenset({"read"}))
    clock.now += 0.5
    assert tokens.entries() is None  # not looked at within the second
    clock.now += 0.6
    assert [e.name for e in tokens.entries()] == ["ci"]
    # A broken edit keeps the last good set and reports the error.
    t.tokens_path(secure).write_text("{ half written")
    clock.now += 1.1
    assert [e.name for e in tokens.entries()] == ["ci"]
    assert seen[-1] is not None and "not valid JSON" in seen[-1]
    t.tokens_path(secure).unlink()
    clock.now += 1.1
    assert tokens.entries() is None


def test_a_malformed_file_refuses_construction(tmp_path):
    path = tmp_path / "tokens.json"
    path.write_text("[]")
    with pytest.raises(t.TokenFileError, match="expected"):
        t.TokenFile(path)
