"""wait_for and free_port (dqueue/testing/waits.py)."""

from __future__ import annotations

import itertools
import socket
import time

import pytest

from dqueue.testing import free_port, wait_for


def test_wait_for_returns_the_first_truthy_value() -> None:
    calls = itertools.count(1)
    assert wait_for(lambda: (n := next(calls)) >= 3 and n, 5.0) == 3


def test_wait_for_fails_at_its_deadline_naming_the_condition() -> None:
    started = time.monotonic()
    with pytest.raises(AssertionError, match="the moon to turn blue"):
        wait_for(lambda: None, 0.2, "the moon to turn blue")
    assert 0.2 <= time.monotonic() - started < 5.0


def test_ignored_errors_mean_not_yet_and_are_reported() -> None:
    answers = iter([OSError("refused"), OSError("refused"), "up"])

    def probe() -> str:
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert wait_for(probe, 5.0, ignore=(OSError,)) == "up"
    with pytest.raises(AssertionError, match="refused"):
        wait_for(lambda: (_ for _ in ()).throw(OSError("refused")), 0.1, ignore=(OSError,))


def test_other_errors_propagate_at_once() -> None:
    with pytest.raises(KeyError):
        wait_for(lambda: {}["missing"], 5.0, ignore=(OSError,))


def test_free_port_can_be_bound_on_loopback() -> None:
    port = free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))
        assert sock.getsockname()[1] == port
