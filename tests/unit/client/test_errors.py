"""Server error codes map to typed exceptions that keep the server's message."""

from __future__ import annotations

import pytest

from dqueue.client import errors as e


@pytest.mark.parametrize("code, status, cls", [
    ("not_found", 404, e.TaskNotFound),
    ("lease_conflict", 409, e.LeaseConflict),
    ("invalid_state", 409, e.InvalidState),
    ("invalid_field", 400, e.InvalidRequest),
    ("body_too_large", 413, e.InvalidRequest),
    ("no_leader", 503, e.NoLeader),
    ("timeout", 503, e.NoLeader),
    ("unavailable", None, e.Unavailable),
    ("teapot", 418, e.InvalidRequest),
    ("boom", 500, e.ServerError),
])
def test_codes(code, status, cls):
    err = e.error_from_code(code, "the message", status=status, field="f")
    assert type(err) is cls
    assert err.code == code and err.message == "the message"
    assert "the message" in str(err)
