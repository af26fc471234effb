"""A worker's CURVE keys for the worker gateway, and what a failed handshake means.

``dqueue-cli keys init OUT --members n1,n2 --workers w1`` writes the worker's folder
``OUT/w1/``: ``w1.key_secret`` (its key pair) and ``members/<id>.key`` (each node's public key,
the gateway's server key). ``WorkerKeys`` loads them from that folder (``from_secure_dir``) or
from two files (``from_files``: ``--curve-key`` and ``--server-key``).

A gateway refuses a worker during the handshake, so nothing answers its requests; the client
watches its socket's monitor events and turns a failed handshake into ``Unauthorized`` with
``handshake_error``, naming what to fix.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import zmq
import zmq.auth

from dqueue.client.errors import Unauthorized

# The key folder's layout is the one dqueue-cli keys init writes (dqueue/keys.py).
from dqueue.keys import MEMBERS_DIR, PUBLIC_SUFFIX, SECRET_SUFFIX, Z85_KEY_CHARS
from dqueue.protocol.errors import ErrorCode

# Monitor events a client watches: a refused or broken handshake, and a good one.
HANDSHAKE_EVENTS = (zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
                    | zmq.EVENT_HANDSHAKE_FAILED_AUTH | zmq.EVENT_HANDSHAKE_SUCCEEDED
                    | zmq.EVENT_DISCONNECTED)
# A CURVE client whose server key is not the node's sees only disconnections (the server
# cannot read its HELLO and closes): this many before any success count as a refusal.
MAX_SILENT_DISCONNECTS = 2


class WorkerKeyError(ValueError):
    """Key files that are missing or malformed; the message names the file."""


@dataclass(frozen=True)
class WorkerKeys:
    """A worker's key pair and the gateway's public key (Z85 text).

    Attributes:
        public_key: the worker's public key.
        secret_key: the worker's secret key.
        server_key: the node's public key (the gateway's CURVE server key).
        source: where they were loaded from (for messages).
        name: the worker's name, from its key file ``<name>.key_secret`` ("" when the file is
            named otherwise). A gateway with worker keys knows the key by this name and accepts
            only it as the ``worker_id`` of this worker's requests (docs/security.md).
    """

    public_key: bytes
    secret_key: bytes = field(repr=False)
    server_key: bytes
    source: str = ""
    name: str = ""

    @classmethod
    def from_files(cls, secret_file: str, server_key_file: str) -> WorkerKeys:
        """Load the worker's key pair and the node's public key from two certificate files.

        Raises:
            WorkerKeyError: a file is missing or holds no key.
        """
        public, secret = _load(Path(secret_file), need_secret=True)
        server, _ = _load(Path(server_key_file), need_secret=False)
        return cls(public, secret, server, f"{secret_file} and {server_key_file}",
                   _worker_name(Path(secret_file)))

    @classmethod
    def from_secure_dir(cls, folder: str, member_id: str | None = None) -> WorkerKeys:
        """Load a worker folder of ``keys init``: its one ``*.key_secret`` and the server key
        ``members/<member_id>.key`` (the only member's key when ``member_id`` is None).

        Raises:
            WorkerKeyError: the folder does not hold exactly one key pair, or the member key
                is missing or ambiguous.
        """
        root = Path(folder)
        secrets = sorted(root.glob("*" + SECRET_SUFFIX))
        if len(secrets) != 1:
            raise WorkerKeyError(f"{root}: expected one <worker>{SECRET_SUFFIX} file, found "
                                 f"{len(secrets)} (create it with `dqueue-cli keys init OUT "
                                 "--members ... --workers ID`)")
        members = sorted((root / MEMBERS_DIR).glob("*" + PUBLIC_SUFFIX))
        if member_id is not None:
            server_path = root / MEMBERS_DIR / f"{member_id}{PUBLIC_SUFFIX}"
        elif len(members) == 1:
            server_path = members[0]
        else:
            names = ", ".join(p.name[: -len(PUBLIC_SUFFIX)] for p in members) or "none"
            raise WorkerKeyError(f"{root / MEMBERS_DIR}: which node's key? found {names}; "
                                 "name the node in the address (ID=tcp://host:port) or pass "
                                 "--server-key")
        public, secret = _load(secrets[0], need_secret=True)
        server, _ = _load(server_path, need_secret=False)
        return cls(public, secret, server, str(root), _worker_name(secrets[0]))

    def apply(self, socket: zmq.Socket) -> None:
        """Make ``socket`` a CURVE client with these keys (before it connects)."""
        socket.setsockopt(zmq.CURVE_PUBLICKEY, self.public_key)
        socket.setsockopt(zmq.CURVE_SECRETKEY, self.secret_key)
        socket.setsockopt(zmq.CURVE_SERVERKEY, self.server_key)


def _worker_name(secret_file: Path) -> str:
    """The worker's name of a key pair file ``<name>.key_secret`` ("" for another name)."""
    name = secret_file.name
    return name[: -len(SECRET_SUFFIX)] if name.endswith(SECRET_SUFFIX) else ""


def _load(path: Path, need_secret: bool) -> tuple[bytes, bytes]:
    try:
        public, secret = zmq.auth.load_certificate(str(path))
    except (OSError, ValueError) as exc:
        raise WorkerKeyError(f"{path}: not a readable key file ({exc})") from None
    if not public or len(public) != Z85_KEY_CHARS:
        raise WorkerKeyError(f"{path}: no public key of {Z85_KEY_CHARS} Z85 characters")
    if need_secret and (not secret or len(secret) != Z85_KEY_CHARS):
        raise WorkerKeyError(f"{path}: no secret key (use the worker's .key_secret file)")
    return public, secret or b""


def handshake_error(endpoint: str, event: int, curve: bool) -> Unauthorized:
    """The error for a handshake the gateway at ``endpoint`` refused (a monitor ``event``).

    Args:
        endpoint: the gateway address.
        event: ``EVENT_HANDSHAKE_FAILED_*``, or ``EVENT_DISCONNECTED`` repeated before any
            handshake succeeded.
        curve: whether this client offered CURVE keys.
    """
    where = f"the worker gateway at {endpoint}"
    if event == zmq.EVENT_HANDSHAKE_FAILED_AUTH:
        why = (f"{where} refused this worker's key: the node admits only the keys in its "
               "secure folder's workers/ (create one with `dqueue-cli keys init OUT --members "
               "... --workers ID` and copy workers/ID.key to every node)" if curve else
               f"{where} refused the connection: the node is in protected mode (no worker keys "
               "configured: loopback workers only); configure worker keys and pass "
               "--curve-key/--server-key or --secure-dir, or start the node with --insecure")
    elif event == zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL:
        why = (f"{where} does not speak CURVE (the node has no secure folder?): drop the key "
               "options" if curve else
               f"{where} requires CURVE keys: pass --curve-key FILE and --server-key FILE, or "
               "--secure-dir DIR (the worker's folder from `dqueue-cli keys init`)")
    else:
        why = (f"{where} closed the connection during the handshake: the server key "
               "(--server-key, or members/ID.key) is probably not that node's public key"
               if curve else f"{where} closed the connection during the handshake: it "
               "probably requires CURVE keys (--curve-key and --server-key, or --secure-dir)")
    return Unauthorized(why, code=ErrorCode.HANDSHAKE_REFUSED)
