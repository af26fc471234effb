"""What a node started with --join says about the cluster it waits for (dqueue/node/join.py):
the answer of GET /cluster is untrusted, an unreachable URL is retried and never fatal."""

from __future__ import annotations

import io
import json
import logging
import urllib.error
from dataclasses import replace

import pytest

from dqueue.config import ConfigError, NodeConfig, validate
from dqueue.logs import FIELDS_ATTR
from dqueue.node import join

CONFIG = NodeConfig(id="n4", raft_addr="127.0.0.1:9094", http_addr="127.0.0.1:8084",
                    join="http://127.0.0.1:8081")
def _fields(caplog) -> str:
    return " ".join(f"{r.getMessage()} {getattr(r, FIELDS_ATTR, {})}" for r in caplog.records)


CLUSTER = {"leader_id": "n1", "members": [{"id": "n1", "role": "leader"},
                                          {"id": "n2", "role": "follower"}]}


class _Answer(io.BytesIO):
    def __enter__(self) -> _Answer:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def _opener(*answers):
    calls = []

    def opener(request, timeout):
        calls.append((request.full_url, timeout))
        answer = answers[min(len(calls), len(answers)) - 1]
        if isinstance(answer, Exception):
            raise answer
        return _Answer(json.dumps(answer).encode())
    return opener, calls


def test_it_logs_the_members_and_the_command_that_adds_it(caplog):
    opener, calls = _opener(CLUSTER)
    with caplog.at_level(logging.INFO, logger="dqueue.node.join"):
        described = join.probe(CONFIG, opener, wait=lambda _: False)
    assert calls == [("http://127.0.0.1:8081/cluster", join.REQUEST_TIMEOUT_S)]
    assert described == {"members": {"n1": "leader", "n2": "follower"}, "leader": "n1",
                         "already_member": False}
    assert ("dqueue-cli --server http://127.0.0.1:8081 cluster add n4 --raft-addr "
            "127.0.0.1:9094 --http-addr 127.0.0.1:8084") in _fields(caplog)


def test_an_unreachable_url_is_retried_then_given_up(caplog):
    opener, calls = _opener(urllib.error.URLError("refused"))
    waits: list[float] = []
    with caplog.at_level(logging.WARNING, logger="dqueue.node.join"):
        assert join.probe(CONFIG, opener, wait=lambda s: waits.append(s) is not None) is None
    assert len(calls) == join.ATTEMPTS and len(waits) == join.ATTEMPTS - 1
    assert caplog.text.count("join_target_unreachable") == join.ATTEMPTS


def test_it_succeeds_once_the_url_answers():
    opener, calls = _opener(urllib.error.URLError("refused"), CLUSTER)
    assert join.probe(CONFIG, opener, wait=lambda _: False) is not None
    assert len(calls) == 2


@pytest.mark.parametrize("answer", [
    None, [], {"members": "n1"}, {"members": [5, None, {"id": "bad id!"}, {"id": "x" * 99}]},
    {"members": [{"id": "n1", "role": ["x"]}], "leader_id": 3}])
def test_a_strange_answer_never_raises(answer):
    described = join.describe_cluster(CONFIG, answer)
    assert described is None or all(len(k) <= 64 for k in described["members"])
    if described is not None:
        assert described["leader"] is None or described["leader"] == "n1"


def test_without_a_token_it_asks_health_instead():
    calls = []

    def opener(request, timeout):
        calls.append(request.full_url)
        if request.full_url.endswith("/cluster"):
            raise urllib.error.HTTPError(request.full_url, 401, "no", {}, None)
        return _Answer(json.dumps({"node_id": "n1", "leader_id": "n2"}).encode())
    described = join.probe(CONFIG, opener, wait=lambda _: False)
    assert calls == ["http://127.0.0.1:8081/cluster", "http://127.0.0.1:8081/health"]
    assert described == {"members": {"n1": "?"}, "leader": "n2", "already_member": False}


def test_another_refusal_is_not_retried(caplog):
    opener, calls = _opener(urllib.error.HTTPError("u", 404, "no", {}, None))
    with caplog.at_level(logging.WARNING, logger="dqueue.node.join"):
        assert join.probe(CONFIG, opener, wait=lambda _: False) is None
    assert len(calls) == 1 and "join_target_refused" in _fields(caplog)


@pytest.mark.parametrize("url", ["127.0.0.1:8081", "ftp://h:1", "http://", "http://a b:1",
                                 "http://h:1?x=1"])
def test_the_join_url_must_be_an_http_url(url):
    with pytest.raises(ConfigError) as info:
        validate(replace(CONFIG, join=url))
    assert info.value.key == "join"


def test_an_http_url_is_accepted():
    assert validate(replace(CONFIG, join="https://n1.example:8080/")).join
