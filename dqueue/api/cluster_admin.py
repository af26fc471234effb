"""Membership changes: ``POST /cluster/members``, ``POST /cluster/members/{id}/promote``,
``DELETE /cluster/members/{id}`` (role ``admin``; docs/http-api.md, "Cluster membership").

Each is one single-server change (Raft thesis 4.1) that the leader proposes and answers once it
committed; a node that does not lead forwards it to the leader (``503 no_leader`` with the
leader hint when none is known, which the SDK follows). A member is added as a learner (it
gets the log but no vote) and promoted once it caught up: ``dqueue-cli cluster add`` does
both. The fields are checked here so that a bad one is a 400 naming it; the Raft process
checks them again (``dqueue/node/member_admin.py``).
"""

from __future__ import annotations

import falcon

from dqueue.api import validation as v
from dqueue.api.deps import ApiDeps, send_json
from dqueue.api.errors import ApiError, invalid
from dqueue.protocol.errors import ErrorCode
from dqueue.protocol.member_context import is_member_id, member_context

_ADD_FIELDS = frozenset({"id", "raft_addr", "http_addr", "public_key", "learner"})


def member_id(value: str) -> str:
    """A member id from the path; anything that cannot be one is simply not found."""
    if not is_member_id(value):
        raise ApiError(falcon.HTTP_404, ErrorCode.NOT_FOUND, f"no member {value[:64]!r}",
                       field="id")
    return value


class MemberCollection:
    """``POST /cluster/members``: add a member as a learner."""

    def __init__(self, deps: ApiDeps) -> None:
        self._deps = deps

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        body = v.read_json_body(req, self._deps.config.max_body_bytes)
        v.check_keys(body, _ADD_FIELDS, ("id", "raft_addr", "http_addr"))
        if not is_member_id(body["id"]):
            raise invalid("id", "id: expected 1 to 64 letters, digits, '_', '.' or '-'")
        if v.opt_bool(body, "learner") is False:
            raise invalid("learner", "learner: a member is added as a learner and promoted once "
                          "it caught up (POST /cluster/members/{id}/promote; `dqueue-cli "
                          "cluster add` does both)")
        try:
            member_context(body["raft_addr"], body["http_addr"], body.get("public_key"))
        except ValueError as exc:
            raise invalid(str(exc).partition(":")[0], str(exc)) from None
        cmd = {"op": "member_add", "id": body["id"], "raft_addr": body["raft_addr"],
               "http_addr": body["http_addr"]}
        if body.get("public_key") is not None:
            cmd["public_key"] = body["public_key"]
        send_json(resp, falcon.HTTP_201, self._deps.command(cmd))


class MemberItem:
    """``DELETE /cluster/members/{id}``: remove a voter or a learner."""

    def __init__(self, deps: ApiDeps) -> None:
        self._deps = deps

    def on_delete(self, req: falcon.Request, resp: falcon.Response, member: str) -> None:
        value = self._deps.command({"op": "member_remove", "id": member_id(member)})
        send_json(resp, falcon.HTTP_200, value)


class MemberPromote:
    """``POST /cluster/members/{id}/promote``: a learner becomes a voter."""

    def __init__(self, deps: ApiDeps) -> None:
        self._deps = deps

    def on_post(self, req: falcon.Request, resp: falcon.Response, member: str) -> None:
        value = self._deps.command({"op": "member_promote", "id": member_id(member)})
        send_json(resp, falcon.HTTP_200, value)


def register(app: falcon.App, deps: ApiDeps) -> None:
    """Add the membership routes to ``app``."""
    app.add_route("/cluster/members", MemberCollection(deps))
    app.add_route("/cluster/members/{member}", MemberItem(deps))
    app.add_route("/cluster/members/{member}/promote", MemberPromote(deps))
