"""The pure Raft core: consensus with no I/O, clock, threads or global randomness.

See docs/internals.md section 1 for the contract and docs/raft.md for the design.
"""

from dqueue.raft.codec import message_from_plain, message_to_plain
from dqueue.raft.core import Raft
from dqueue.raft.membership import (
    ConfChange,
    ConfChangeKind,
    apply_conf_change,
    decode_conf_change,
    encode_conf_change,
)
from dqueue.raft.types import (
    CAMPAIGN_TRANSFER,
    MAX_RAFT_INT,
    Entry,
    EntryType,
    HardState,
    Membership,
    Message,
    MessageType,
    PeerStatus,
    PersistedState,
    ProgressState,
    ProposalDropped,
    RaftConfig,
    ReadState,
    Ready,
    Role,
    Snapshot,
    SnapshotMeta,
    SnapshotRefusal,
    SoftState,
    Status,
    snapshot_checksum,
)

__all__ = [
    "CAMPAIGN_TRANSFER",
    "MAX_RAFT_INT",
    "ConfChange",
    "ConfChangeKind",
    "Entry",
    "EntryType",
    "HardState",
    "Membership",
    "Message",
    "MessageType",
    "PeerStatus",
    "PersistedState",
    "ProgressState",
    "ProposalDropped",
    "Raft",
    "RaftConfig",
    "ReadState",
    "Ready",
    "Role",
    "Snapshot",
    "SnapshotMeta",
    "SnapshotRefusal",
    "SoftState",
    "Status",
    "apply_conf_change",
    "decode_conf_change",
    "encode_conf_change",
    "message_from_plain",
    "message_to_plain",
    "snapshot_checksum",
]
