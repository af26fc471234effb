"""Per-task-type options of ``@worker.task(...)``: which failures retry, and after how long.

```python
@worker.task("email", max_retries=5, retry_for=(TimeoutError,), dead_letter_for=(ValueError,),
             backoff=Backoff(base_s=1, factor=2, cap_s=60))
def send_email(payload, ctx): ...
```

This module decides only what a failure means (``failure_verdict``); ``app.run_handler`` calls it
and the runtimes send the nack (with its ``retry_delay_ms``) or the dead letter.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dqueue.queue.fields import DELAY_MS, MAX_RETRIES

#: A backoff given as a callable: the delay in seconds before the retry after failed ``attempt``.
BackoffFn = Callable[[int], float]
_MAX_DELAY_S = DELAY_MS.high / 1000


class Retry(Exception):
    """Raised by ``ctx.retry(countdown=...)``: fail this attempt, retry after ``countdown`` s."""

    def __init__(self, countdown: float | None = None, reason: str = "") -> None:
        super().__init__(reason or "retry requested")
        self.countdown = countdown


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential retry delay: ``base_s * factor ** (attempt - 1)``, capped at ``cap_s``, then
    scaled by a factor in ``[1 - jitter, 1 + jitter)`` fixed by the attempt (no random draw, so
    tests can predict it)."""

    base_s: float = 1.0
    factor: float = 2.0
    cap_s: float = 300.0
    jitter: float = 0.0

    def __post_init__(self) -> None:
        for name in ("base_s", "factor", "cap_s", "jitter"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) \
                    or not math.isfinite(value) or value < 0:
                raise ValueError(f"Backoff {name} must be a finite number >= 0, not {value!r}")
        if self.factor < 1:
            raise ValueError(f"Backoff factor must be >= 1, not {self.factor!r}")
        if self.jitter >= 1:
            raise ValueError(f"Backoff jitter must be below 1, not {self.jitter!r}")
        if self.cap_s > _MAX_DELAY_S:
            raise ValueError(f"Backoff cap_s must be at most {_MAX_DELAY_S:g} s")

    def __call__(self, attempt: int) -> float:
        """The delay in seconds after failed attempt ``attempt`` (from 1)."""
        try:
            raw = min(self.base_s * self.factor ** max(attempt - 1, 0), self.cap_s)
        except OverflowError:
            raw = self.cap_s
        if self.jitter:
            unit = (attempt * 0.6180339887) % 1.0  # spread attempts evenly over [0, 1)
            raw *= 1.0 + self.jitter * (2.0 * unit - 1.0)
        return min(raw, self.cap_s)


def _exception_types(name: str, value: Any) -> tuple[type[BaseException], ...]:
    if isinstance(value, type):
        value = (value,)
    if not isinstance(value, tuple) or not all(
            isinstance(item, type) and issubclass(item, BaseException) for item in value):
        raise ValueError(f"{name} must be an exception class or a tuple of them, not {value!r}")
    return value


@dataclass(frozen=True, slots=True)
class TaskOptions:
    """The options of one task type; every one optional (None: the queue's or the task's).

    Attributes:
        max_retries: Retries after the first attempt of tasks enqueued through the handler's
            ``enqueue`` (a producer's own ``max_retries`` wins).
        retry_for: When given, only these exceptions retry; any other dead-letters.
        dead_letter_for: These exceptions dead-letter at once (they win over ``retry_for``).
        backoff: The retry delay (a ``Backoff`` or a callable of the attempt, in seconds),
            sent as the nack's ``retry_delay_ms`` instead of the queue's backoff.
    """

    max_retries: int | None = None
    retry_for: tuple[type[BaseException], ...] | None = None
    dead_letter_for: tuple[type[BaseException], ...] = ()
    backoff: BackoffFn | None = None

    def __post_init__(self) -> None:
        if self.max_retries is not None and not MAX_RETRIES.accepts(self.max_retries):
            raise ValueError(f"max_retries must be an int from {MAX_RETRIES.low} to "
                             f"{MAX_RETRIES.high}, not {self.max_retries!r}")
        if self.retry_for is not None:
            object.__setattr__(self, "retry_for", _exception_types("retry_for", self.retry_for))
        object.__setattr__(self, "dead_letter_for",
                           _exception_types("dead_letter_for", self.dead_letter_for))
        if self.backoff is not None and not callable(self.backoff):
            raise ValueError(f"backoff must be a Backoff or a callable, not {self.backoff!r}")


def retry_delay_s(options: TaskOptions, attempt: int) -> float | None:
    """The delay of the type's backoff after failed ``attempt``, None for the queue's.

    Raises:
        ValueError: a backoff callable returned something that is not a delay.
    """
    if options.backoff is None:
        return None
    delay = options.backoff(attempt)
    if isinstance(delay, bool) or not isinstance(delay, int | float) \
            or not 0 <= delay <= _MAX_DELAY_S:
        raise ValueError(f"backoff({attempt}) returned {delay!r}, not a delay in seconds")
    return float(delay)


def failure_dead_letters(options: TaskOptions, exc: BaseException) -> bool:
    """Whether the handler's exception ``exc`` skips the remaining retries."""
    if isinstance(exc, Retry):
        return False
    if options.dead_letter_for and isinstance(exc, options.dead_letter_for):
        return True
    return options.retry_for is not None and not isinstance(exc, options.retry_for)
