"""Queue refusals mapped to HTTP: 429 queue_full with Retry-After, 409 idempotency_key_reused."""

from __future__ import annotations

import falcon
import pytest

from dqueue.api.errors import ApiError, value_of


def test_queue_full_is_a_429_with_retry_after():
    with pytest.raises(ApiError) as info:
        value_of({"ok": False, "code": "queue_full", "message": "m", "max_depth": 5})
    error = info.value
    assert (error.status, error.code) == (falcon.HTTP_429, "queue_full")
    assert error.headers["Retry-After"] == "1"
    assert error.body()["error"]["max_depth"] == 5


def test_key_reused_is_a_409_naming_the_original_task():
    with pytest.raises(ApiError) as info:
        value_of({"ok": False, "code": "idempotency_key_reused", "message": "m",
                  "field": "idempotency_key", "task_id": "abc"})
    error = info.value
    assert (error.status, error.code, error.field) == (falcon.HTTP_409,
                                                       "idempotency_key_reused",
                                                       "idempotency_key")
    assert error.body()["error"]["task_id"] == "abc"
