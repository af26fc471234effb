"""The enqueue body's fast path against its full checks, and HTTP against the queue's rules.

``new_task_plain`` recognises the usual body inline; ``_checked_task_plain`` checks every field
with the queue's rules (dqueue/queue/fields.py). For any body, valid or not, both must give the
same task or the same error; and every task HTTP accepts must be one the queue accepts (HTTP
may only be stricter).
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from dqueue.api.errors import ApiError
from dqueue.api.tasks import ENQUEUE_FIELDS, _checked_task_plain, new_task_plain
from dqueue.queue import command_from_plain, fields
from tests.depth import examples
from tests.unit.plain_values import PLAIN

_DEPS: Any = SimpleNamespace(new_id=lambda: "drawn")
_EDGES = [bound + delta for rule in (fields.PRIORITY, fields.MAX_RETRIES)
          for bound in (rule.low, rule.high) for delta in (-1, 0, 1)]
_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(), st.sampled_from(_EDGES),
    st.floats(), st.sampled_from([0, 0.5, 604_800, 604_800.5, -1, 1e300]),
    st.text(max_size=4),
    st.sampled_from(["email", "a.b:c/d-e_f", "bad type", "-x", "x" * 128, "x" * 129,
                     "k" * 256, "k" * 257, "k\n", "é", "\x7f"]),
    st.lists(st.integers(min_value=-(1 << 65), max_value=1 << 65), max_size=3),
    st.dictionaries(st.text(max_size=3), st.one_of(st.none(), st.text(max_size=3),
                                                  st.integers(), st.floats()), max_size=3),
    PLAIN,
)
_BODIES = st.dictionaries(st.sampled_from([*sorted(ENQUEUE_FIELDS), "colour"]), _VALUES,
                          max_size=7)


def _outcome(build: Any, body: Any, prefix: str) -> Any:
    try:
        return ("ok", build(body, _DEPS, prefix, "t-1"))
    except ApiError as exc:
        return ("error", exc.status, exc.code, exc.field, exc.message)


@given(_BODIES | PLAIN, st.booleans(), st.sampled_from(["", "tasks[3]."]))
@settings(max_examples=examples(1_000), deadline=None)
def test_fast_path_gives_what_the_full_checks_give(body: Any, usual: bool,
                                                   prefix: str) -> None:
    if usual and isinstance(body, dict):
        body = {**body, "type": "email"}  # so that the fast path is taken often
    fast = _outcome(new_task_plain, body, prefix)
    assert fast == _outcome(_checked_task_plain, body, prefix)
    if fast[0] == "ok":
        # HTTP is never looser than the queue: what it accepts, the queue accepts as it is.
        task = command_from_plain({"op": "enqueue", "tasks": [fast[1]]}).tasks[0]
        assert task.to_plain() == {"payload": None, "priority": 0, "max_retries": None,
                                   "idempotency_key": None, "delay_ms": None, **fast[1]}


def test_a_task_id_is_drawn_when_none_is_given() -> None:
    assert new_task_plain({"type": "email"}, _DEPS)["id"] == "drawn"
