"""Values that cross the Raft core's boundary: configuration, log entries, messages, Ready.

Everything here is a frozen dataclass or an enum, so a value handed to the node runtime can
never be changed behind the core's back. Names follow the Raft paper (Ongaro and Ousterhout,
"In Search of an Understandable Consensus Algorithm", extended version).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum

# Bounds of what a peer message may carry; dqueue/raft/codec.py refuses anything beyond them.
# Terms, indexes, offsets and hints fit a signed 64-bit integer (msgpack, LMDB keys and every
# store record hold them), and the core never moves its own term above MAX_RAFT_INT
# (``Raft.campaign``), so ``term + 1`` can never overflow anything.
MAX_RAFT_INT = (1 << 63) - 1
# A member id, at most (ZeroMQ routing identities hold at most 255 bytes).
MAX_ID_CHARS = 256
# Voters of one cluster, at most (snapshot meta, RaftConfig).
MAX_MEMBERS = 64
# Entries of one message, at most; the leader cuts its AppendEntries there (roles.py).
MAX_ENTRIES_PER_MESSAGE = 1 << 16
# Data bytes of one message (entries' data, a snapshot chunk), at most. Not below the peer
# transport's frame bound (node/transport.py MAX_MESSAGE_BYTES), so no message the transport
# delivers is refused for its size here.
MAX_MESSAGE_DATA_BYTES = 64 << 20
# Bytes of a message's context (a read's id, CAMPAIGN_TRANSFER), at most.
MAX_CONTEXT_BYTES = 4_096
# The highest last included index an InstallSnapshot may carry. A member that installed a
# snapshot at index i appends from i + 1, and the codec refuses indexes above MAX_RAFT_INT: a
# snapshot near the limit would leave a member that can never be sent another entry. No log
# gets there by appends (2^62 entries, a million a second, take 146,000 years), so one above it
# comes from a buggy member; refused, it leaves 2^62 indexes of room.
MAX_SNAPSHOT_INDEX = MAX_RAFT_INT >> 1
# Default bound on the bytes of one snapshot a member assembles from InstallSnapshot chunks.
DEFAULT_MAX_SNAPSHOT_BYTES = 1 << 30


class ProposalDropped(Exception):
    """A proposal the core could not accept or forward.

    Attributes:
        leader_id: the leader this node knows of (a hint for the client), or None.
    """

    def __init__(self, leader_id: str | None) -> None:
        super().__init__(f"proposal dropped (leader hint: {leader_id})")
        self.leader_id = leader_id


@dataclass(frozen=True, slots=True)
class Membership:
    """A cluster configuration: who votes, who only replicates (dqueue/raft/membership.py).

    Attributes:
        voters: the members whose votes count (elections, commit, ReadIndex, check-quorum).
            Empty only on a member that joins and has not yet heard its configuration.
        learners: members that receive the log and snapshots but never vote nor count
            toward a majority (etcd-io/raft's learners).
        contexts: ``(id, bytes)`` pairs sorted by id: the opaque bytes the node attached to a
            member when it was added (its addresses and public key).
    """

    voters: tuple[str, ...]
    learners: tuple[str, ...] = ()
    contexts: tuple[tuple[str, bytes], ...] = ()

    def quorum(self) -> int:
        """Votes that make a majority of the voters (Raft 5.2)."""
        return len(self.voters) // 2 + 1

    def is_voter(self, member_id: str) -> bool:
        """Whether ``member_id`` votes in this configuration."""
        return member_id in self.voters

    def is_learner(self, member_id: str) -> bool:
        """Whether ``member_id`` is a learner in this configuration."""
        return member_id in self.learners

    def is_member(self, member_id: str) -> bool:
        """Whether ``member_id`` is a voter or a learner."""
        return member_id in self.voters or member_id in self.learners

    def members(self) -> tuple[str, ...]:
        """Voters then learners."""
        return self.voters + self.learners

    def context_of(self, member_id: str) -> bytes:
        """The context bytes of ``member_id`` (empty when none was given)."""
        for key, value in self.contexts:
            if key == member_id:
                return value
        return b""


@dataclass(frozen=True, slots=True)
class RaftConfig:
    """Static settings of one Raft member, passed down as a value.

    Attributes:
        id: this member's id.
        members: the BOOTSTRAP voters, this member included, used only when the persisted
            state holds no configuration (no snapshot and no conf-change entry). Empty for a
            member started to join a running cluster: it has no configuration until the
            leader sends one, and never campaigns until one makes it a voter.
        election_ticks: base election timeout; each follower draws its timeout uniformly
            from ``[election_ticks, 2 * election_ticks)`` (Raft section 5.2).
        heartbeat_ticks: ticks between a leader's heartbeats; must be < election_ticks.
        max_inflight_msgs: AppendEntries sent to one follower and not yet answered, at most.
        max_append_bytes: bound on the entry data bytes of one AppendEntries (one entry at
            least is always sent, whatever its size).
        snapshot_chunk_bytes: bound on the data bytes of one InstallSnapshot chunk.
        max_snapshot_bytes: bound on the bytes of a snapshot received from a leader: chunks
            that would grow the receive buffer beyond it are refused and the buffer dropped
            (memory stays bounded whatever a leader sends). It must exceed the largest
            snapshot any member takes, or a member that needs one cannot catch up.
        pre_vote: run a pre-vote round before a real election (thesis section 9.6).
        check_quorum: a leader steps down when it has not heard from a quorum for an election
            timeout, and a member that hears from a leader ignores vote requests for that
            long (thesis sections 6.2 and 4.2.3).
    """

    id: str
    members: tuple[str, ...]
    election_ticks: int = 10
    heartbeat_ticks: int = 2
    max_inflight_msgs: int = 256
    max_append_bytes: int = 1 << 20
    snapshot_chunk_bytes: int = 1 << 20
    max_snapshot_bytes: int = DEFAULT_MAX_SNAPSHOT_BYTES
    pre_vote: bool = True
    check_quorum: bool = True

    def __post_init__(self) -> None:
        if self.members and self.id not in self.members:
            raise ValueError(f"id {self.id!r} is not one of the members {self.members!r}")
        if len(set(self.members)) != len(self.members):
            raise ValueError("members must be distinct")
        if self.heartbeat_ticks < 1 or self.election_ticks <= self.heartbeat_ticks:
            raise ValueError("need 1 <= heartbeat_ticks < election_ticks")
        if self.max_inflight_msgs < 1 or self.max_append_bytes < 1:
            raise ValueError("max_inflight_msgs and max_append_bytes must be positive")
        if not 1 <= self.snapshot_chunk_bytes <= MAX_MESSAGE_DATA_BYTES:
            raise ValueError(f"snapshot_chunk_bytes must be 1 to {MAX_MESSAGE_DATA_BYTES}")
        if self.max_snapshot_bytes < self.snapshot_chunk_bytes:
            raise ValueError("max_snapshot_bytes must be at least snapshot_chunk_bytes")
        if len(self.members) > MAX_MEMBERS:
            raise ValueError(f"at most {MAX_MEMBERS} members")
        if not all(0 < len(m) <= MAX_ID_CHARS for m in self.members):
            # The codec refuses longer ids: such a member could never be heard.
            raise ValueError(f"member ids must have 1 to {MAX_ID_CHARS} characters")


class SnapshotRefusal(StrEnum):
    """Why a member refused an InstallSnapshot (``Raft.snapshots_rejected_by_reason``)."""

    CHECKSUM = "checksum"  # the assembled bytes miss the checksum of the meta
    INVALID = "invalid"  # the node's validator refused the data (it would not restore)
    TOO_LARGE = "too_large"  # the chunks would grow past max_snapshot_bytes
    INDEX_TOO_HIGH = "index_too_high"  # the last included index is above MAX_SNAPSHOT_INDEX
    TERM_ABOVE_MESSAGE = "term_above_message"  # the last included term exceeds the leader's


class Role(StrEnum):
    """The role a member plays (Raft section 5.1, plus the pre-vote phase)."""

    FOLLOWER = "follower"
    PRE_CANDIDATE = "pre_candidate"
    CANDIDATE = "candidate"
    LEADER = "leader"


class EntryType(IntEnum):
    """Kinds of log entry."""

    NORMAL = 0
    NOOP = 1  # appended by a new leader so that it can commit (Raft section 5.4.2, 8)
    CONF_CHANGE = 2  # a membership change; data: membership.encode_conf_entry (thesis 4.1)


@dataclass(frozen=True, slots=True)
class Entry:
    """One log entry. Indexes start at 1; index 0 with term 0 is the empty log's sentinel."""

    index: int
    term: int
    type: EntryType = EntryType.NORMAL
    data: bytes = b""


@dataclass(frozen=True, slots=True)
class HardState:
    """What must be on disk before any message that depends on it leaves (Raft figure 2).

    Attributes:
        term: current_term.
        vote: voted_for in ``term``, or None.
        commit: commit_index. Not needed for safety (Raft figure 2 keeps it volatile); a node
            may write it only along with other writes, and a restarted node then learns the
            rest of it from the leader.
    """

    term: int = 0
    vote: str | None = None
    commit: int = 0


@dataclass(frozen=True, slots=True)
class SnapshotMeta:
    """Where a snapshot sits in the log and the membership it was taken under.

    Attributes:
        index: last included index.
        term: term of the last included entry.
        membership: the configuration in force at ``index`` (the latest conf-change entry at
            or below it, else the one the log started with).
        checksum: ``snapshot_checksum`` of the whole snapshot's data, set where the snapshot
            is taken (``Raft.compact``) or loaded; a follower installs a snapshot received in
            chunks only when its assembled bytes match it (roles.handle_install_snapshot).
    """

    index: int
    term: int
    membership: Membership
    checksum: int


def snapshot_checksum(data: bytes) -> int:
    """The checksum over a whole snapshot's data that travels in its ``SnapshotMeta``.

    CRC-32: it catches a transfer assembled wrongly (chunks of two snapshots, a lost or
    corrupted chunk); it authenticates nothing (peers are authenticated by the transport).
    The same value as the store's ``data_crc`` of the snapshot record.
    """
    return zlib.crc32(data)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """State machine contents at ``meta.index`` (Raft section 7)."""

    meta: SnapshotMeta
    data: bytes


@dataclass(frozen=True, slots=True)
class PersistedState:
    """What a node had on disk when it (re)starts.

    Attributes:
        hard_state: the last persisted HardState.
        snapshot: the latest snapshot on disk, or None.
        entries: the stored log after the snapshot, in index order and contiguous.
        catch_up_index: nonzero after the node's log was wiped by a repair: the last index the
            log had before. Until its stored log reaches it again, or it holds a committed
            entry of a term above ``catch_up_term``, the member neither votes nor campaigns
            (see ``Raft.catch_up_index``).
        catch_up_term: the member's term when the repair wiped its log (it acknowledged
            nothing of a later term). None when unknown (a store written before it was
            recorded): the core then takes the persisted term, which is at least as high,
            so the rule only gets stricter.
    """

    hard_state: HardState = HardState()
    snapshot: Snapshot | None = None
    entries: list[Entry] = field(default_factory=list)
    catch_up_index: int = 0
    catch_up_term: int | None = None


class MessageType(IntEnum):
    """Every message kind peers exchange. The wire value is the integer."""

    REQUEST_VOTE = 1
    REQUEST_VOTE_RESPONSE = 2
    PRE_VOTE = 3
    PRE_VOTE_RESPONSE = 4
    APPEND_ENTRIES = 5
    APPEND_ENTRIES_RESPONSE = 6
    HEARTBEAT = 7
    HEARTBEAT_RESPONSE = 8
    INSTALL_SNAPSHOT = 9
    INSTALL_SNAPSHOT_RESPONSE = 10
    PROPOSE = 11
    READ_INDEX = 12
    READ_INDEX_RESPONSE = 13
    TIMEOUT_NOW = 14


@dataclass(frozen=True, slots=True)
class Message:
    """One message between members; fields unused by a kind keep their defaults.

    Field use by kind:

    - REQUEST_VOTE / PRE_VOTE: ``index``/``log_term`` are the candidate's last log index and
      term (Raft section 5.4.1); ``context`` is ``CAMPAIGN_TRANSFER`` when a leadership
      transfer forces the election past the check-quorum lease.
    - *_VOTE_RESPONSE: ``reject`` is False when the vote is granted.
    - APPEND_ENTRIES: ``index``/``log_term`` are prev_log_index/prev_log_term, ``entries``
      the new entries, ``commit`` the leader_commit.
    - APPEND_ENTRIES_RESPONSE: accepted: ``index`` is the follower's last index matching the
      leader. Rejected: ``index`` is the rejected prev_log_index, ``reject_hint`` and
      ``log_term`` the follower's conflict index and term (fast backtracking).
    - HEARTBEAT: ``commit`` is min(follower match, leader commit); ``index`` is the leader's
      read sequence (ReadIndex), echoed in HEARTBEAT_RESPONSE.
    - INSTALL_SNAPSHOT: ``snapshot_meta`` of the snapshot, ``offset`` and ``data`` of one
      chunk, ``done`` on the last chunk. The response's ``index`` is the next offset wanted,
      or on ``done`` the follower's commit index (all of it matches the leader).
    - PROPOSE: ``entries`` forwarded to the leader (term 0: not a term-bearing message).
    - READ_INDEX: ``context`` of a read forwarded to the leader (term 0); the response carries
      the read's ``index`` and ``context``.
    - TIMEOUT_NOW: the target of a leadership transfer starts an election at once.
    """

    type: MessageType
    to: str
    sender: str
    term: int = 0
    log_term: int = 0
    index: int = 0
    entries: tuple[Entry, ...] = ()
    commit: int = 0
    reject: bool = False
    reject_hint: int = 0
    context: bytes = b""
    snapshot_meta: SnapshotMeta | None = None
    offset: int = 0
    data: bytes = b""
    done: bool = False


CAMPAIGN_TRANSFER = b"transfer"


@dataclass(frozen=True, slots=True)
class SoftState:
    """Volatile state the node may show: who leads, and this member's role."""

    leader_id: str | None
    role: Role


@dataclass(frozen=True, slots=True)
class ReadState:
    """A linearizable read may be served once the state machine has applied ``index``."""

    index: int
    context: bytes


@dataclass(frozen=True, slots=True)
class Ready:
    """Output of the core, handled by the node in the order ``ready_plan.plan_ready`` gives
    (see docs/internals.md 1; the simulator drives the same function):

    1. send the plan's early messages (a leader whose term and vote are stored: its
       AppendEntries and heartbeats, thesis 10.2.1); that leader may also apply
       ``committed_entries`` now: they are stored on a majority already, and its own new
       entries count toward commit only from ``advance`` on;
    2. persist ``snapshot``, ``entries`` and ``hard_state`` in one synced write, unless the
       Ready only moves the commit index (volatile in Raft figure 2: it goes with the next
       write);
    3. send the other ``messages``: no vote or append response leaves before what it promises
       is on disk (figure 2);
    4. restore ``snapshot`` into the state machine, apply ``committed_entries`` (unless done in
       step 1), serve ``read_states`` whose index is applied;
    5. call ``advance(ready)``.

    ``membership`` is the configuration in force when it changed in this Ready (thesis 4.1:
    it takes effect when appended, not when committed).
    """

    soft_state: SoftState | None = None
    hard_state: HardState | None = None
    entries: tuple[Entry, ...] = ()
    snapshot: Snapshot | None = None
    committed_entries: tuple[Entry, ...] = ()
    messages: tuple[Message, ...] = ()
    read_states: tuple[ReadState, ...] = ()
    # The configuration in force, when it changed since the last Ready (an entry appended or
    # truncated, a snapshot installed): the node connects to and drops peers by it.
    membership: Membership | None = None


class ProgressState(StrEnum):
    """How the leader replicates to one follower (etcd-io/raft's progress states)."""

    PROBE = "probe"  # one AppendEntries at a time until the match index is found
    REPLICATE = "replicate"  # pipelined, at most max_inflight_msgs in flight
    SNAPSHOT = "snapshot"  # an InstallSnapshot transfer is under way


@dataclass(frozen=True, slots=True)
class PeerStatus:
    """The leader's view of one follower."""

    match_index: int
    next_index: int
    state: ProgressState
    recent_active: bool


@dataclass(frozen=True, slots=True)
class Status:
    """A read-only picture of one member, for health pages and tests."""

    id: str
    role: Role
    term: int
    vote: str | None
    leader_id: str | None
    commit: int
    applied: int
    last_index: int
    snapshot_index: int
    progress: dict[str, PeerStatus] = field(default_factory=dict)
    lead_transferee: str | None = None
    catch_up_index: int = 0
    membership: Membership = Membership(())
    removed: bool = False
