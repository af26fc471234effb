"""The access keys of the SQS-compatible API, and the key of its receipt handles.

Access keys live in the node's secure folder, ``<secure_dir>/sqs_keys.toml`` (mode 0600), read
once when the API process starts::

    [keys.AKIDEXAMPLE]
    secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    roles = ["produce", "consume", "read"]

With keys, every SQS request must carry a valid SigV4 signature by one of them
(``dqueue.sqs.sigv4``) and the key must hold the action's role. Without the file, the SQS
API follows the port's mode (``dqueue.api.auth``): protected mode serves loopback clients with
any signature, ``--insecure`` serves everyone.

Receipt handles are authenticated with an HMAC key every node must derive alike (a handle from
one node is deleted through another): ``receipt_key`` derives it from the cluster's member ids
and the configured secrets. With access keys the secrets make it unguessable to anyone outside;
without them it is guessable, which is acceptable only because such a node serves loopback or
``--insecure`` clients, who may ack any task through the dqueue API anyway (docs/sqs.md).
"""

from __future__ import annotations

import hashlib
import os
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from dqueue.config import NodeConfig
from dqueue.tokens import ROLES

SQS_KEYS_FILE = "sqs_keys.toml"
_KEY_ID_RE = re.compile(r"[A-Za-z0-9]{16,128}")


class SqsKeysError(ValueError):
    """The access keys file is malformed (the API process refuses to start)."""


@dataclass(frozen=True)
class AccessKey:
    """One access key: its id, its secret, and the roles its requests get."""

    key_id: str
    secret: str
    roles: frozenset[str]


def parse_keys(text: str, where: str) -> dict[str, AccessKey]:
    """Parse the TOML text of an access keys file.

    Raises:
        SqsKeysError: naming the key at fault.
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SqsKeysError(f"{where}: not valid TOML: {exc}") from None
    unknown = set(data) - {"keys"}
    if unknown:
        raise SqsKeysError(f"{where}: unknown table {sorted(unknown)[0]!r}; only [keys.ID]")
    table = data.get("keys", {})
    if not isinstance(table, dict):
        raise SqsKeysError(f"{where}: keys must be a table of [keys.ID] tables")
    keys: dict[str, AccessKey] = {}
    for key_id, entry in table.items():
        name = f"{where}: keys.{key_id}"
        if _KEY_ID_RE.fullmatch(key_id) is None:
            raise SqsKeysError(f"{name}: an id is 16 to 128 letters and digits")
        if not isinstance(entry, dict) or set(entry) - {"secret", "roles"}:
            raise SqsKeysError(f"{name}: a key has secret and roles only")
        secret = entry.get("secret")
        if not isinstance(secret, str) or not 16 <= len(secret) <= 128:
            raise SqsKeysError(f"{name}.secret: a string of 16 to 128 characters")
        roles = entry.get("roles")
        if (not isinstance(roles, list) or not roles
                or any(role not in ROLES for role in roles)):
            raise SqsKeysError(f"{name}.roles: a list of {', '.join(ROLES)}")
        keys[key_id] = AccessKey(key_id, secret, frozenset(roles))
    return keys


def load_keys(config: NodeConfig) -> dict[str, AccessKey] | None:
    """The access keys of the secure folder, or None when there is no keys file.

    Raises:
        SqsKeysError: the file exists and is malformed.
    """
    if not config.secure_dir:
        return None
    path = Path(config.secure_dir) / SQS_KEYS_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise SqsKeysError(f"{path}: cannot be read: {exc}") from None
    if os.stat(path).st_mode & 0o077:
        raise SqsKeysError(f"{path}: readable by others; chmod 600 it")
    return parse_keys(text, str(path))


def receipt_key(config: NodeConfig, keys: dict[str, AccessKey] | None) -> bytes:
    """The HMAC key of receipt handles: the same on every node of a cluster (module docs)."""
    digest = hashlib.sha256(b"dqueue sqs receipt handles\x00")
    for member_id in sorted(config.members()):
        digest.update(member_id.encode() + b"\x00")
    digest.update(config.sqs_account_id.encode() + b"\x00")
    for key_id, key in sorted((keys or {}).items()):
        digest.update(key_id.encode() + b"\x00" + key.secret.encode() + b"\x00")
    return digest.digest()
