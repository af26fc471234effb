"""Where the SDK, the CLI and the worker find the nodes and the token: comma-separated server
strings, ``DQUEUE_SERVER`` and ``DQUEUE_TOKEN`` (dqueue/client/env.py)."""

from __future__ import annotations

import pytest

from dqueue.client import Client
from dqueue.client.env import (
    DEFAULT_SERVER,
    SERVER_ENV,
    TOKEN_ENV,
    resolve_servers,
    resolve_token,
    split_servers,
)


@pytest.mark.parametrize(("servers", "urls"), [
    ("http://a:1", ["http://a:1"]),
    ("http://a:1,http://b:2", ["http://a:1", "http://b:2"]),
    (" http://a:1 , http://b:2 ,", ["http://a:1", "http://b:2"]),
    (["http://a:1,http://b:2", "http://c:3"], ["http://a:1", "http://b:2", "http://c:3"]),
    (("http://a:1",), ["http://a:1"]),
    (",,", []),
    ([], []),
])
def test_split_servers_splits_every_item_at_commas(servers, urls):
    assert split_servers(servers) == urls


def test_servers_given_win_over_the_environment():
    env = {SERVER_ENV: "http://env:1"}
    assert resolve_servers("http://a:1,http://b:2", env) == ["http://a:1", "http://b:2"]
    assert resolve_servers(["http://a:1"], env) == ["http://a:1"]


def test_dqueue_server_is_read_when_none_are_given_and_may_be_a_list():
    assert resolve_servers(None, {SERVER_ENV: "http://a:1, http://b:2"}) == ["http://a:1",
                                                                           "http://b:2"]
    assert resolve_servers(None, {}) == [DEFAULT_SERVER]
    assert resolve_servers(None, {SERVER_ENV: ""}) == [DEFAULT_SERVER]  # empty: unset


@pytest.mark.parametrize("servers", [[], "", " , ", [","]])
def test_no_url_at_all_is_a_value_error(servers):
    with pytest.raises(ValueError, match="at least one server URL"):
        resolve_servers(servers, {SERVER_ENV: "http://env:1"})


def test_an_environment_of_only_commas_is_a_value_error():
    with pytest.raises(ValueError, match="at least one server URL"):
        resolve_servers(None, {SERVER_ENV: ",,"})


def test_the_token_given_wins_and_empty_means_none():
    env = {TOKEN_ENV: "from-env"}
    assert resolve_token("mine", env) == "mine"
    assert resolve_token("", env) is None  # an explicit "no token", even with one in the env
    assert resolve_token(None, env) == "from-env"
    assert resolve_token(None, {TOKEN_ENV: ""}) is None
    assert resolve_token(None, {}) is None


def test_the_client_takes_a_comma_list_and_the_environment(monkeypatch):
    client = Client("http://127.0.0.1:1,http://127.0.0.1:2", token="")
    assert client.servers == ["http://127.0.0.1:1", "http://127.0.0.1:2"]
    monkeypatch.setenv(SERVER_ENV, "http://127.0.0.1:3,http://127.0.0.1:4")
    monkeypatch.setenv(TOKEN_ENV, "s3cret")
    client = Client()
    assert client.servers == ["http://127.0.0.1:3", "http://127.0.0.1:4"]
    assert client.token == "s3cret"
    with pytest.raises(ValueError):
        Client(",")
