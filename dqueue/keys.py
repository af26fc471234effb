"""CURVE key material of the peer transport: load one node's keys, create a cluster's keys.

One folder per node (``--secure-dir DIR``, TOML ``secure_dir``), in pyzmq's certificate format
(``zmq.auth``)::

    DIR/<own-id>.key_secret     this node's key pair (mode 0600)
    DIR/members/<id>.key        the public key of every member, this one included
    DIR/workers/<id>.key        the public keys of workers (for the worker gateway; may be empty)

``dqueue-cli keys init OUT --members n1,n2,n3 --workers w1`` writes ``OUT/<member>/`` in that
layout for each member, and ``OUT/<worker>/<worker>.key_secret`` plus ``OUT/<worker>/members/``
for each worker (``create_cluster_keys``). Folders are 0700 and secret keys 0600.
"""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import zmq
import zmq.auth

SECRET_SUFFIX = ".key_secret"
PUBLIC_SUFFIX = ".key"
MEMBERS_DIR = "members"
WORKERS_DIR = "workers"
DIR_MODE = 0o700
SECRET_MODE = 0o600
PUBLIC_MODE = 0o644
# A CURVE key in Z85 text: 32 bytes -> 40 characters.
Z85_KEY_CHARS = 40


class PeerKeyError(ValueError):
    """Key material that is missing, unreadable, malformed or too widely readable."""


@dataclass(frozen=True)
class PeerKeys:
    """The CURVE keys one node uses on the peer port (Z85 text, as ``zmq.auth`` loads them).

    Attributes:
        node_id: this node's member id.
        public_key: this node's public key.
        secret_key: this node's secret key.
        members: member id -> public key, for every configured member (this one included).
        workers: worker id -> public key (never admitted on the peer port).
    """

    node_id: str
    public_key: bytes
    secret_key: bytes = field(repr=False)
    members: dict[str, bytes]
    workers: dict[str, bytes]


def _load_public(path: Path) -> bytes:
    try:
        public, _ = zmq.auth.load_certificate(str(path))
    except (OSError, ValueError) as exc:
        raise PeerKeyError(f"{path}: not a readable public key file ({exc})") from None
    if not public or len(public) != Z85_KEY_CHARS:
        raise PeerKeyError(f"{path}: no public key of {Z85_KEY_CHARS} Z85 characters")
    return public


def public_key_arg(value: str) -> str:
    """A ``--public-key`` value: the key of a public key file when ``value`` names one (as
    ``DIR/members/<id>.key``), else ``value`` itself (a Z85 key, checked by the server).

    Raises:
        PeerKeyError: ``value`` names a file that holds no public key.
    """
    path = Path(value)
    return _load_public(path).decode() if path.is_file() else value


def _load_folder(folder: Path) -> dict[str, bytes]:
    """Every ``<id>.key`` in ``folder`` as id -> public key (an absent folder is empty)."""
    if not folder.is_dir():
        return {}
    return {p.name[: -len(PUBLIC_SUFFIX)]: _load_public(p)
            for p in sorted(folder.glob("*" + PUBLIC_SUFFIX))}


def load_peer_keys(secure_dir: str, node_id: str, member_ids: Sequence[str]) -> PeerKeys:
    """Load and check this node's key pair and the public keys it trusts.

    Args:
        secure_dir: the node's key folder.
        node_id: this node's member id.
        member_ids: the configured members (this node included): each needs a public key.

    Raises:
        PeerKeyError: a file is missing or malformed, the secret key can be read by group or
            others, a member has no key, this node's public key differs from its secret key's,
            or two members share a key.
    """
    root = Path(secure_dir)
    if not root.is_dir():
        raise PeerKeyError(f"{root}: no such key folder (create keys with `dqueue-cli keys "
                           "init`)")
    secret_path = root / f"{node_id}{SECRET_SUFFIX}"
    try:
        mode = secret_path.stat().st_mode
    except OSError:
        raise PeerKeyError(f"{secret_path}: this node's secret key is missing") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise PeerKeyError(f"{secret_path}: readable by group or others (mode "
                           f"{stat.S_IMODE(mode):o}); run chmod 600 on it")
    try:
        public, secret = zmq.auth.load_certificate(str(secret_path))
    except (OSError, ValueError) as exc:
        raise PeerKeyError(f"{secret_path}: not a readable key pair ({exc})") from None
    if not secret or len(secret) != Z85_KEY_CHARS or len(public) != Z85_KEY_CHARS:
        raise PeerKeyError(f"{secret_path}: no secret key of {Z85_KEY_CHARS} Z85 characters")
    known = _load_folder(root / MEMBERS_DIR)
    missing = [m for m in sorted(member_ids) if m not in known]
    if missing:
        raise PeerKeyError(f"{root / MEMBERS_DIR}: no public key for member(s) "
                           f"{', '.join(missing)}")
    members = {m: known[m] for m in sorted(member_ids)}
    if members.get(node_id) != public:
        raise PeerKeyError(f"{root / MEMBERS_DIR / (node_id + PUBLIC_SUFFIX)}: differs from "
                           f"the public key in {secret_path}")
    owners: dict[bytes, str] = {}
    for member_id, key in members.items():
        if key in owners:
            raise PeerKeyError(f"members {owners[key]} and {member_id} have the same key")
        owners[key] = member_id
    return PeerKeys(node_id=node_id, public_key=public, secret_key=secret, members=members,
                    workers=_load_folder(root / WORKERS_DIR))


def load_member_keys(secure_dir: str) -> dict[str, bytes]:
    """Every member public key in ``secure_dir/members`` as id -> Z85 key (the keys this node
    trusts for members it has no context for: the bootstrap members, docs/security.md).

    Raises:
        PeerKeyError: a key file is malformed.
    """
    return _load_folder(Path(secure_dir) / MEMBERS_DIR)


@dataclass(frozen=True)
class WrittenKey:
    """One file ``create_cluster_keys`` wrote."""

    owner: str
    kind: str  # "secret" (a key pair), "member" or "worker" (a public key)
    key_id: str
    path: str


def _mkdir(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, DIR_MODE)


def create_cluster_keys(out_dir: str, members: Sequence[str], workers: Sequence[str] = (),
                        force: bool = False) -> list[WrittenKey]:
    """Create a key pair per member and per worker and lay out one folder per owner.

    Args:
        out_dir: the folder to write into (``OUT/<id>/`` per member and worker).
        members: member ids.
        workers: worker ids.
        force: replace existing keys (otherwise their presence is refused).

    Returns:
        Every file written, in order.

    Raises:
        PeerKeyError: an id is repeated or empty, or keys exist and ``force`` is off.
    """
    ids = [*members, *workers]
    if not members:
        raise PeerKeyError("at least one member is needed")
    bad = [i for i in ids if not i or "/" in i or i.startswith(".")]
    if bad or len(set(ids)) != len(ids):
        raise PeerKeyError(f"ids must be distinct, non-empty names: {', '.join(ids)}")
    root = Path(out_dir)
    existing = sorted(str(p) for owner in ids for p in (root / owner).glob("**/*.key*"))
    if existing and not force:
        raise PeerKeyError(f"keys exist already ({existing[0]}, ...); pass --force to "
                           "replace them")
    _mkdir(root)
    written: list[WrittenKey] = []
    public_files: dict[str, Path] = {}
    for owner in ids:
        folder = root / owner
        if folder.exists() and force:
            for stale in (folder / MEMBERS_DIR, folder / WORKERS_DIR):
                shutil.rmtree(stale, ignore_errors=True)
        _mkdir(folder)
        public_path, secret_path = zmq.auth.create_certificates(str(folder), owner)
        os.chmod(secret_path, SECRET_MODE)
        os.chmod(public_path, PUBLIC_MODE)
        public_files[owner] = Path(public_path)
        written.append(WrittenKey(owner, "secret", owner, str(secret_path)))
    for owner in ids:
        trusted = [(MEMBERS_DIR, "member", m) for m in members]
        if owner in members:
            trusted += [(WORKERS_DIR, "worker", w) for w in workers]
        for sub, kind, key_id in trusted:
            folder = root / owner / sub
            _mkdir(folder)
            target = folder / f"{key_id}{PUBLIC_SUFFIX}"
            shutil.copyfile(public_files[key_id], target)
            os.chmod(target, PUBLIC_MODE)
            written.append(WrittenKey(owner, kind, key_id, str(target)))
        if owner in members:
            _mkdir(root / owner / WORKERS_DIR)
    return written
