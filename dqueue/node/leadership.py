"""Who leads, as this node knows it: the one source of the leader for the Raft process loop and
the request router.

The loop updates it from each Ready's soft state (``observe``) before it handles anything else
of that Ready, so that the router's view of the role never runs ahead of the loop's: a new
leader's first entry must carry its queue settings, ahead of any client's command, and the
router proposes only once the loop has seen the role change.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from dqueue.raft import Role


@dataclass
class Leadership:
    """This node's role and leader, from the last soft state the loop handled.

    Args:
        node_id: this node's member id.
        leader_heard: whether the leader was heard from within an election timeout (the core's
            election clock: Raft section 5.2).
    """

    node_id: str
    leader_heard: Callable[[], bool]
    role: Role = Role.FOLLOWER
    leader_id: str | None = None
    # The last leader known, kept while no leader is (for a follower's error hints).
    last_leader_id: str | None = None

    @property
    def is_leader(self) -> bool:
        """Whether this node leads."""
        return self.role is Role.LEADER

    def observe(self, role: Role, leader_id: str | None) -> tuple[bool, bool]:
        """Take a soft state; return (the leader changed to a known one, an election began)."""
        new_leader = leader_id is not None and leader_id != self.leader_id
        campaign = role is Role.CANDIDATE and self.role is not Role.CANDIDATE
        self.role, self.leader_id = role, leader_id
        if leader_id is not None:
            self.last_leader_id = leader_id
        return new_leader, campaign

    def hint(self) -> str | None:
        """The leader an error names: never a member this node knows is unreachable.

        A follower names its leader while it heard from it within an election timeout (Raft
        section 5.2); a (pre-)candidate names none (it campaigns because the last leader went
        silent); a follower that knows no leader yet names the last one it knew.
        """
        if self.leader_id is not None:
            if self.leader_id == self.node_id or self.leader_heard():
                return self.leader_id
            return None
        if self.role in (Role.CANDIDATE, Role.PRE_CANDIDATE):
            return None
        return self.last_leader_id
