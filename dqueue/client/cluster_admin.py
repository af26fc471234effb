"""The SDK's membership operations (docs/sdk.md, "Cluster membership").

``ClusterAdmin(client)`` wraps a ``Client``: each change is one ``/cluster/members`` request
that the server answers once the change committed (any node forwards it to the leader; a
``503`` with the leader hint, when no leader is known, is followed by ``Client``). A change
refused because another one is not committed yet (``membership_change_pending``) is asked
again until ``deadline_s``.

    admin = ClusterAdmin(Client(["http://10.0.0.1:8080"]))
    admin.add_member("n4", raft_addr="10.0.0.4:9090", http_addr="10.0.0.4:8080")
    admin.remove_member("n1")
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from dqueue.client.admin_requests import Requester, item_path
from dqueue.client.errors import DQueueError, ServerError
from dqueue.protocol.errors import ErrorCode

# A learner within this many entries of the leader's log counts as caught up.
DEFAULT_MAX_LAG = 100
DEFAULT_DEADLINE_S = 60.0
_POLL_S = 0.2


def _path(member_id: str, suffix: str = "") -> str:
    return item_path("cluster/members", member_id, suffix)


def _as_change(obj: Any) -> dict[str, Any]:
    if not isinstance(obj, dict) or not isinstance(obj.get("voters"), list):
        raise ServerError("unreadable membership change answer", code=ErrorCode.BAD_REPLY)
    return obj


class ClusterAdmin:
    """Add, promote and remove members of a cluster, and wait for a learner to catch up.

    Args:
        client: a ``Client`` (any object with its ``_request``).
        deadline_s: how long a change refused as pending, or a wait, is retried.
        sleep: the pause between attempts (tests pass their own).
    """

    def __init__(self, client: Requester, deadline_s: float = DEFAULT_DEADLINE_S,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.client = client
        self.deadline_s = deadline_s
        self._sleep = sleep

    def _change(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        deadline = time.monotonic() + self.deadline_s
        while True:
            try:
                return _as_change(self.client._request(method, path, body)[1])
            except DQueueError as exc:
                if (exc.code != ErrorCode.MEMBERSHIP_CHANGE_PENDING
                        or time.monotonic() >= deadline):
                    raise
            self._sleep(_POLL_S)

    def status(self, from_leader: bool = False) -> dict[str, Any]:
        """``GET /cluster``: leader, term, voters, learners, and each member's lag (known only
        on the leader: ``from_leader`` asks it, following the hint of another node)."""
        obj = self.client._request("GET", "/cluster?leader=true" if from_leader
                                   else "/cluster")[1]
        if not isinstance(obj, dict) or not isinstance(obj.get("members"), list):
            raise ServerError("unreadable cluster status", code=ErrorCode.BAD_REPLY)
        return obj

    def add_learner(self, member_id: str, raft_addr: str, http_addr: str,
                    public_key: str | None = None) -> dict[str, Any]:
        """Add ``member_id`` as a learner (it gets the log, never votes). Raises
        InvalidRequest (``member_exists``, a bad field) or NoLeader."""
        body: dict[str, Any] = {"id": member_id, "raft_addr": raft_addr, "http_addr": http_addr}
        if public_key is not None:
            body["public_key"] = public_key
        return self._change("POST", "/cluster/members", body)

    def promote(self, member_id: str) -> dict[str, Any]:
        """Make learner ``member_id`` a voter."""
        return self._change("POST", _path(member_id, "/promote"), {})

    def remove(self, member_id: str) -> dict[str, Any]:
        """Remove voter or learner ``member_id`` (the leader hands over leadership first)."""
        return self._change("DELETE", _path(member_id))

    def lag_of(self, member_id: str) -> int | None:
        """The member's lag behind the leader's log, from the leader; None while the leader
        has not heard from it (its match index is 0: it may not even run yet)."""
        for member in self.status(from_leader=True)["members"]:
            if isinstance(member, dict) and member.get("id") == member_id:
                lag, match = member.get("lag"), member.get("match_index")
                return lag if type(lag) is int and type(match) is int and match > 0 else None
        return None

    def wait_caught_up(self, member_id: str, max_lag: int = DEFAULT_MAX_LAG) -> int:
        """Wait until ``member_id`` is within ``max_lag`` entries of the leader; its lag.

        Raises:
            ServerError: code ``timeout`` when it did not catch up within ``deadline_s``.
        """
        deadline = time.monotonic() + self.deadline_s
        while True:
            lag = self.lag_of(member_id)
            if lag is not None and lag <= max_lag:
                return lag
            if time.monotonic() >= deadline:
                raise ServerError(f"{member_id} did not catch up within {self.deadline_s}s "
                                  f"(lag {lag})", code=ErrorCode.TIMEOUT)
            self._sleep(_POLL_S)

    def add_member(self, member_id: str, raft_addr: str, http_addr: str,
                   public_key: str | None = None, learner: bool = False,
                   max_lag: int = DEFAULT_MAX_LAG) -> dict[str, Any]:
        """Add ``member_id`` as a learner, wait until it caught up, then promote it (unless
        ``learner``); the last change's answer."""
        added = self.add_learner(member_id, raft_addr, http_addr, public_key)
        if learner:
            return added
        self.wait_caught_up(member_id, max_lag)
        return self.promote(member_id)
