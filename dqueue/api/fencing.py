"""What a lease holder's request must carry: the lease token (docs/security.md, "Lease fencing").

Ack, nack, extend (a release is an extend) and every item of an ``ack_many`` name the lease they
act on by its token, over HTTP (``lease_token``) and on the worker gateway (``token``). The token
is the proof of holding the lease: the worker id alone is public (``GET /tasks/{id}`` shows it to
readers of the dead-letter list, logs carry it), so a request without a token is refused here as
not holding the lease, before anything is proposed. The state machine checks the token against
the lease (``dqueue.queue.state``).
"""

from __future__ import annotations

from typing import Any

import falcon

from dqueue.api import validation as v
from dqueue.api.errors import ApiError
from dqueue.queue import fields


def is_lease_token(value: Any) -> bool:
    """Whether ``value`` is a lease token a client may send (the fast path's check)."""
    return fields.PRESENTED_LEASE_TOKEN.accepts(value)


def lease_token(body: dict[str, Any], name: str, prefix: str = "") -> str:
    """The lease token of a holder's request.

    Args:
        body: the request body.
        name: the field: ``lease_token`` over HTTP, ``token`` on the worker gateway.
        prefix: names the item in errors (``items[3].``).

    Raises:
        ApiError: ``409 lease_conflict`` when the token is absent or null (nothing else proves
            holding the lease); ``400 invalid_field`` when it is not a string of 1 to
            64 characters without control characters (``fields.PRESENTED_LEASE_TOKEN``).
    """
    token = v.opt_text(body, name, fields.PRESENTED_LEASE_TOKEN, prefix)
    if token is None:
        field = prefix + name
        raise ApiError(falcon.HTTP_409, "lease_conflict",
                       f"{field} is required: a lease is held only by the token it was leased "
                       "with (the lease.token of the leased task)", field=field)
    return token
