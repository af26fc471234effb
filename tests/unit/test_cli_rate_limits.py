"""``dqueue-cli rate-limit`` and ``queue set --rate-limit``, tables and JSON, against the real
API app (the real queue state machine behind it) served on 127.0.0.1."""

from __future__ import annotations

import pytest

from dqueue.client import Client
from dqueue.client.errors import DQueueError
from tests.unit.test_cli import run, run_json
from tests.unit.test_cli_queues import server  # noqa: F401  (the fixture)


def test_set_list_rm(server):  # noqa: F811
    assert run_json("rate-limit", "set", "email", "100/m") == {"type": "email",
                                                               "rate_limit": "100/m"}
    code, out, _ = run("rate-limit", "set", "sms", "5/s")
    assert code == 0 and "sms: at most 5/s" in out
    code, out, _ = run("rate-limit", "list")
    assert code == 0 and "RATE LIMIT" in out and "email" in out and "100/m" in out
    assert [item["type"] for item in run_json("rate-limit", "list")] == ["email", "sms"]
    assert run_json("rate-limit", "rm", "sms") == {"deleted": "sms"}
    assert run_json("rate-limit", "list") == [{"type": "email", "rate_limit": "100/m"}]
    code, _, err = run("rate-limit", "rm", "sms")
    assert code != 0 and "sms" in err


def test_bad_limit_fails_naming_it(server):  # noqa: F811
    code, _, err = run("rate-limit", "set", "email", "100/day")
    assert code != 0 and "rate_limit" in err


def test_queue_setting(server):  # noqa: F811
    made = run_json("queue", "create", "mail", "--rate-limit", "20/s")
    assert made["settings"]["rate_limit"] == "20/s"
    changed = run_json("queue", "set", "mail", "--rate-limit", "1/m")
    assert changed["settings"]["rate_limit"] == "1/m"
    cleared = run_json("queue", "set", "mail", "--clear", "rate_limit")
    assert cleared["settings"]["rate_limit"] is None


def test_sdk_get_and_not_found(server):  # noqa: F811
    client = Client()  # $DQUEUE_SERVER, set by the fixture
    assert client.set_rate_limit("email", "7/h") == {"type": "email", "rate_limit": "7/h"}
    assert client.get_rate_limit("email") == {"type": "email", "rate_limit": "7/h"}
    client.delete_rate_limit("email")
    with pytest.raises(DQueueError):
        client.get_rate_limit("email")
    assert client.create_queue("mail", rate_limit="3/s")["settings"]["rate_limit"] == "3/s"
