"""The leader's bookkeeping for one follower: next_index, match_index and flow control.

Invariant (Raft figure 2, leader state): ``match_index < next_index``; ``match_index`` only
grows while this member stays leader.
"""

from __future__ import annotations

from collections import deque

from dqueue.raft.types import PeerStatus, ProgressState


class Progress:
    """Replication state of one peer, as the leader tracks it.

    Attributes:
        match_index: highest index known to be replicated on the peer (Raft figure 2).
        next_index: index of the next entry to send (Raft figure 2).
        state: PROBE, REPLICATE or SNAPSHOT (see ProgressState).
        probe_sent: in PROBE, an AppendEntries is out and unanswered; pause until a reply
            or a heartbeat response.
        inflight: last indexes of the AppendEntries sent in REPLICATE and not yet
            acknowledged, oldest first; bounded by max_inflight_msgs.
        recent_active: heard from since the last check-quorum round.
        snapshot_index: index of the snapshot being sent in SNAPSHOT state.
        snapshot_offset: bytes of that snapshot the peer acknowledged; the next chunk
            starts there (one chunk in flight, resent on every heartbeat until acknowledged).
    """

    __slots__ = ("inflight", "match_index", "max_inflight", "next_index", "probe_sent",
                 "recent_active", "snapshot_index", "snapshot_offset", "state")

    def __init__(self, next_index: int, max_inflight: int) -> None:
        self.match_index = 0
        self.next_index = next_index
        self.state = ProgressState.PROBE
        self.probe_sent = False
        self.inflight: deque[int] = deque()
        self.max_inflight = max_inflight
        self.recent_active = False
        self.snapshot_index = 0
        self.snapshot_offset = 0

    def become_probe(self) -> None:
        """Search for the match point one AppendEntries at a time."""
        if self.state is ProgressState.SNAPSHOT:
            # The peer now has at least the snapshot: continue right after it.
            self.next_index = max(self.match_index + 1, self.snapshot_index + 1)
        else:
            self.next_index = self.match_index + 1
        self.state = ProgressState.PROBE
        self.probe_sent = False
        self.inflight.clear()
        self.snapshot_index = 0
        self.snapshot_offset = 0

    def become_replicate(self) -> None:
        """The match point is known: stream appends optimistically."""
        self.state = ProgressState.REPLICATE
        self.next_index = self.match_index + 1
        self.probe_sent = False
        self.inflight.clear()

    def become_snapshot(self, snapshot_index: int) -> None:
        """The entries the peer needs are compacted: send it a snapshot instead."""
        self.state = ProgressState.SNAPSHOT
        self.snapshot_index = snapshot_index
        self.snapshot_offset = 0
        self.probe_sent = False
        self.inflight.clear()

    def lost_entries(self, last_index: int) -> bool:
        """The peer no longer holds what it acknowledged (a repair wiped its log, see
        docs/raft.md "Repair"): its match point drops to ``last_index``, the last index it
        holds, and it is probed from there. Returns False when that changes nothing."""
        if last_index >= self.match_index or self.state is ProgressState.SNAPSHOT:
            return False
        self.match_index = last_index
        self.become_probe()
        return True

    def maybe_update(self, index: int) -> bool:
        """An accepted AppendEntries up to ``index``. Returns True when match_index grew."""
        updated = False
        if self.match_index < index:
            self.match_index = index
            updated = True
            self.probe_sent = False
        # Invariant: match_index < next_index.
        self.next_index = max(self.next_index, index + 1)
        return updated

    def sent_entries(self, last_index: int) -> None:
        """An AppendEntries ending at ``last_index`` went out (empty ones included)."""
        if self.state is ProgressState.REPLICATE:
            if last_index >= self.next_index:
                self.next_index = last_index + 1
                self.inflight.append(last_index)
        elif self.state is ProgressState.PROBE:
            self.probe_sent = True

    def free_inflight(self, index: int) -> None:
        """Acknowledgement up to ``index`` frees every in-flight append ending at or below it."""
        inflight = self.inflight
        while inflight and inflight[0] <= index:
            inflight.popleft()

    def maybe_decrease_to(self, rejected: int, match_hint: int) -> bool:
        """A rejected AppendEntries whose prev_log_index was ``rejected``.

        ``match_hint`` is the highest index that may still match (from the follower's
        conflict index and term). Returns False when the rejection is stale.
        """
        if self.state is ProgressState.REPLICATE:
            # A rejection at or below the match point answers an old message.
            if rejected <= self.match_index:
                return False
            self.next_index = self.match_index + 1
            return True
        # In PROBE only the last probe's answer counts (its prev index is next_index - 1).
        if self.next_index - 1 != rejected:
            return False
        self.next_index = max(min(rejected, match_hint + 1), self.match_index + 1)
        self.probe_sent = False
        return True

    def is_paused(self) -> bool:
        """True when no new AppendEntries may go to this peer now (flow control)."""
        if self.state is ProgressState.PROBE:
            return self.probe_sent
        if self.state is ProgressState.REPLICATE:
            return len(self.inflight) >= self.max_inflight
        return True

    def to_status(self) -> PeerStatus:
        """A frozen copy for Status."""
        return PeerStatus(self.match_index, self.next_index, self.state, self.recent_active)
