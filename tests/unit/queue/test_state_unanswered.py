"""``QueueState.apply(..., reply=False)`` changes the state exactly as a reply-building apply.

The model test's machine is reused: a third state gets every command with ``reply=False``
(the fast paths that skip the plain forms of tasks) and must stay byte-identical to the
others, with the same event counts and events (the base machine checks each queue's ready
index).
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis.stateful import invariant

import dqueue.queue as dq
from dqueue.queue.sessions import apply_once
from tests.depth import examples
from tests.unit.queue.test_state_model import CONFIG, QueueVersusModel


class UnansweredVersusAnswered(QueueVersusModel):
    """The model test, plus a state applied without replies."""

    def step(self, command: Any) -> dict[str, Any]:
        if not hasattr(self, "silent"):
            self.silent = dq.QueueState(CONFIG)
        real = super().step(command)
        silent_command = dq.command_from_plain(command.to_plain())
        if self.session is None:
            assert self.silent.apply(silent_command, self.index, reply=False) is None
        else:  # a follower's share of a session's commands: recorded, not answered
            assert apply_once(self.silent, silent_command, self.index, self.session,
                              reply=False) is None
        return real

    @invariant()
    def unanswered_state_agrees(self) -> None:
        if not hasattr(self, "silent"):
            return
        assert self.silent.snapshot() == self.shadow.snapshot()
        assert self.silent.event_counts() == self.shadow.event_counts()
        assert self.silent.drain_events() == self.shadow.drain_events()

TestUnansweredVersusAnswered = UnansweredVersusAnswered.TestCase
TestUnansweredVersusAnswered.settings = settings(
    max_examples=examples(40), stateful_step_count=30, deadline=None,
    suppress_health_check=[HealthCheck.too_slow])
