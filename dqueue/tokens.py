"""HTTP bearer tokens: the tokens file of a node's secure folder, and checking a presented token.

The file is ``<secure_dir>/tokens.json`` (mode 0600), written by ``dqueue-cli tokens add|rm``
and read by the API process::

    {"version": 1, "tokens": [{"name": "ci", "roles": ["produce", "read"],
                               "sha256": "<64 hex digits>", "created_at": "2026-..."}]}

A token is ``dq_`` and 43 base64url characters (256 random bits); only its SHA-256 is stored,
so the file gives nobody a token. A presented token is hashed and compared with every stored
hash by ``hmac.compare_digest``. ``TokenFile`` re-reads the file when its modification time,
size or inode change, checked at most once a second, so a token added or removed takes effect
without a restart; a file that turns malformed meanwhile keeps the last good set (and says so).

This module is stdlib only: the CLI (which writes the file) and the API process share it.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import hmac
import json
import os
import re
import secrets
import stat
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

TOKENS_FILE = "tokens.json"
FILE_VERSION = 1
# The roles a token may hold (docs/security.md, "Roles"); ``admin`` implies no other role.
ROLES = ("produce", "consume", "read", "admin")
TOKEN_PREFIX = "dq_"
TOKEN_BYTES = 32  # 256 random bits
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
# Longest Authorization value looked at (a token is 46 characters).
MAX_TOKEN_CHARS = 256
RELOAD_CHECK_S = 1.0
DIR_MODE = 0o700
FILE_MODE = 0o600
_HEX64 = re.compile(r"[0-9a-f]{64}")


class TokenFileError(ValueError):
    """A tokens file that cannot be read or is malformed; the message names the file and why."""


@dataclass(frozen=True)
class TokenEntry:
    """One stored token: its name, its roles and the SHA-256 of the token (hex)."""

    name: str
    roles: frozenset[str]
    sha256: str
    created_at: str = ""

    def to_json(self) -> dict[str, Any]:
        """The entry as stored in the file."""
        return {"name": self.name, "roles": sorted(self.roles, key=ROLES.index),
                "sha256": self.sha256, "created_at": self.created_at}


def tokens_path(secure_dir: str) -> Path:
    """Where the tokens file of a secure folder is."""
    return Path(secure_dir) / TOKENS_FILE


def new_token() -> str:
    """A fresh token: ``dq_`` and 256 random bits in base64url."""
    return TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_BYTES)


def hash_token(token: str) -> str:
    """The SHA-256 of a token, as stored (hex)."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def parse_roles(text: str | Iterable[str]) -> frozenset[str]:
    """Roles from ``produce,consume`` (or a list); raises ValueError naming an unknown one."""
    items = text.split(",") if isinstance(text, str) else list(text)
    roles = {r.strip() for r in items if isinstance(r, str) and r.strip()}
    unknown = sorted(roles - set(ROLES))
    if unknown or not roles:
        raise ValueError(f"roles must be a comma-separated subset of {','.join(ROLES)}, got "
                         f"{','.join(unknown) if unknown else 'none'}")
    return frozenset(roles)


def parse_tokens(text: str | bytes, where: str) -> tuple[TokenEntry, ...]:
    """Decode a tokens file's content.

    Raises:
        TokenFileError: naming ``where`` and the first thing that is wrong.
    """
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise TokenFileError(f"{where}: not valid JSON ({exc})") from None
    if not isinstance(doc, dict) or doc.get("version") != FILE_VERSION or not isinstance(
            doc.get("tokens"), list):
        raise TokenFileError(f"{where}: expected {{\"version\": {FILE_VERSION}, \"tokens\": "
                             "[...]}} (write it with `dqueue-cli tokens add`)")
    entries: list[TokenEntry] = []
    names: set[str] = set()
    for i, raw in enumerate(doc["tokens"]):
        at = f"{where}: tokens[{i}]"
        if not isinstance(raw, dict):
            raise TokenFileError(f"{at}: not an object")
        name, digest, roles = raw.get("name"), raw.get("sha256"), raw.get("roles")
        if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
            raise TokenFileError(f"{at}.name: 1 to 64 letters, digits, '_', '.' or '-'")
        if name in names:
            raise TokenFileError(f"{at}.name: {name!r} appears twice")
        if not isinstance(digest, str) or not _HEX64.fullmatch(digest):
            raise TokenFileError(f"{at}.sha256: not 64 lowercase hex digits")
        if not isinstance(roles, list):
            raise TokenFileError(f"{at}.roles: not a list")
        try:
            role_set = parse_roles(roles)
        except ValueError as exc:
            raise TokenFileError(f"{at}.roles: {exc}") from None
        created = raw.get("created_at")
        names.add(name)
        entries.append(TokenEntry(name, role_set, digest,
                                  created if isinstance(created, str) else ""))
    return tuple(entries)


def read_tokens(path: Path) -> tuple[TokenEntry, ...] | None:
    """The tokens of the file at ``path``; None when there is no such file.

    Raises:
        TokenFileError: the file is unreadable or malformed.
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise TokenFileError(f"{path}: cannot read ({exc.strerror})") from None
    return parse_tokens(data, str(path))


def match_token(entries: Iterable[TokenEntry], token: str) -> TokenEntry | None:
    """The entry whose hash is the presented token's, or None.

    Every entry is compared (``hmac.compare_digest``), so the time taken does not depend on
    which entry matched or how much of a hash did.
    """
    digest = hash_token(token)
    found = None
    for entry in entries:
        if hmac.compare_digest(entry.sha256, digest):
            found = entry
    return found


class TokenFile:
    """The tokens of one file, re-read when it changes (checked at most once a second).

    Thread-safe: serving threads call ``entries`` concurrently.

    Args:
        path: the tokens file.
        clock: monotonic seconds (replaceable in tests).
        on_reload: called with ``(entries or None, error or None)`` after each re-read.

    Raises:
        TokenFileError: at construction, when the file exists and is malformed.
    """

    def __init__(self, path: Path, clock: Callable[[], float] = time.monotonic,
                 on_reload: Callable[[tuple[TokenEntry, ...] | None, str | None], None]
                 | None = None) -> None:
        self.path = path
        self._clock = clock
        self._on_reload = on_reload
        self._lock = threading.Lock()
        self._stamp = self._file_stamp()
        self._entries = read_tokens(path)
        self._next_check = clock() + RELOAD_CHECK_S

    def _file_stamp(self) -> tuple[int, int, int] | None:
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return st.st_mtime_ns, st.st_size, st.st_ino

    def entries(self) -> tuple[TokenEntry, ...] | None:
        """The current tokens (None while there is no file)."""
        if self._clock() >= self._next_check:
            self._maybe_reload()
        return self._entries

    def _maybe_reload(self) -> None:
        with self._lock:
            now = self._clock()
            if now < self._next_check:
                return
            self._next_check = now + RELOAD_CHECK_S
            stamp = self._file_stamp()
            if stamp == self._stamp:
                return
            self._stamp = stamp
            try:
                self._entries = read_tokens(self.path)
            except TokenFileError as exc:
                # Keep the last good set: a half-edited file must not lock everyone out.
                if self._on_reload is not None:
                    self._on_reload(self._entries, str(exc))
                return
            if self._on_reload is not None:
                self._on_reload(self._entries, None)


# -- writing (dqueue-cli tokens) --------------------------------------------------------


@contextlib.contextmanager
def _locked(path: Path) -> Any:
    """An exclusive lock on ``<path>.lock`` for one read-modify-write of the file."""
    lock_path = path.with_name(path.name + ".lock")
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, FILE_MODE)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _write(path: Path, entries: Iterable[TokenEntry]) -> None:
    """Replace the file atomically (a reader sees the old or the new file, never a part)."""
    doc = {"version": FILE_VERSION, "tokens": [e.to_json() for e in entries]}
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    with os.fdopen(fd, "w") as fh:
        json.dump(doc, fh, indent=1)
        fh.write("\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _ensure_dir(secure_dir: str) -> Path:
    root = Path(secure_dir)
    if not root.exists():
        root.mkdir(parents=True, mode=DIR_MODE)
    elif not root.is_dir():
        raise TokenFileError(f"{root}: not a folder")
    return tokens_path(secure_dir)


def add_token(secure_dir: str, name: str, roles: frozenset[str]) -> tuple[str, TokenEntry]:
    """Create a token named ``name`` with ``roles``; return the token (shown once) and entry.

    Raises:
        TokenFileError: the name is taken or malformed, or the file is malformed.
    """
    if not NAME_PATTERN.fullmatch(name):
        raise TokenFileError(f"name {name!r}: 1 to 64 letters, digits, '_', '.' or '-'")
    path = _ensure_dir(secure_dir)
    with _locked(path):
        entries = list(read_tokens(path) or ())
        if any(e.name == name for e in entries):
            raise TokenFileError(f"{path}: a token named {name!r} exists already (remove it "
                                 "first with `dqueue-cli tokens rm`)")
        token = new_token()
        created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        entry = TokenEntry(name, roles, hash_token(token), created)
        _write(path, [*entries, entry])
    return token, entry


def remove_token(secure_dir: str, name: str) -> TokenEntry:
    """Remove the token named ``name``; return its entry.

    Raises:
        TokenFileError: no such token, or the file is malformed.
    """
    path = tokens_path(secure_dir)
    if not path.parent.is_dir():
        raise TokenFileError(f"{path.parent}: no such folder")
    with _locked(path):
        entries = list(read_tokens(path) or ())
        gone = [e for e in entries if e.name == name]
        if not gone:
            raise TokenFileError(f"{path}: no token named {name!r}")
        _write(path, [e for e in entries if e.name != name])
    return gone[0]


def list_tokens(secure_dir: str) -> tuple[TokenEntry, ...]:
    """The tokens of a secure folder (empty when it has no tokens file).

    Raises:
        TokenFileError: the file is malformed.
    """
    return read_tokens(tokens_path(secure_dir)) or ()


def is_private(path: Path) -> bool:
    """Whether only the owner may read ``path`` (no group or other permission bits)."""
    try:
        return not os.stat(path).st_mode & (stat.S_IRWXG | stat.S_IRWXO)
    except OSError:
        return True
