"""Who holds a TCP port: the message of a node that cannot bind one of its addresses.

Best effort, Linux only: the listening socket's inode from ``/proc/net/tcp`` and ``tcp6``, then
the process whose ``/proc/<pid>/fd`` links to it (only processes of this user are readable).
Nothing here raises: a port whose holder cannot be found is reported as "in use".
"""

from __future__ import annotations

import os

_LISTEN = "0A"  # TCP_LISTEN in /proc/net/tcp's st column
_MAX_CMDLINE_CHARS = 120


def _listening_inodes(port: int) -> set[str]:
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                lines = f.readlines()[1:]
        except OSError:
            continue
        for line in lines:
            cols = line.split()
            if len(cols) < 10 or cols[3] != _LISTEN:
                continue
            _, _, port_hex = cols[1].rpartition(":")
            try:
                if int(port_hex, 16) == port and cols[9] != "0":
                    inodes.add(cols[9])
            except ValueError:
                continue
    return inodes


def _pid_of(inodes: set[str]) -> int | None:
    links = {f"socket:[{inode}]" for inode in inodes}
    try:
        pids = [name for name in os.listdir("/proc") if name.isdigit()]
    except OSError:
        return None
    for pid in pids:
        fd_dir = f"/proc/{pid}/fd"
        try:
            fds = os.listdir(fd_dir)
        except OSError:
            continue  # another user's process, or gone
        for fd in fds:
            try:
                if os.readlink(f"{fd_dir}/{fd}") in links:
                    return int(pid)
            except OSError:
                continue
    return None


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            raw = f.read()
    except OSError:
        return "?"
    text = raw.replace(b"\0", b" ").decode(errors="replace").strip()
    return text[:_MAX_CMDLINE_CHARS] + ("..." if len(text) > _MAX_CMDLINE_CHARS else "")


def port_holder(port: int) -> str:
    """Describe what listens on TCP ``port``: ``pid 123 (cmdline)``, or why it is unknown."""
    try:
        inodes = _listening_inodes(port)
        if not inodes:
            return "in use (no listener found in /proc/net/tcp)"
        pid = _pid_of(inodes)
        if pid is None:
            return "in use by a process of another user"
        return f"held by pid {pid} ({_cmdline(pid)})"
    except Exception:  # best effort only: the bind error itself is what matters
        return "in use"


def bind_failure_message(role: str, addr: str, error: str) -> str:
    """The one-line message of a failed bind of ``addr`` (``host:port``) for ``role``."""
    _, _, port_text = addr.rpartition(":")
    holder = port_holder(int(port_text)) if port_text.isdigit() and int(port_text) else ""
    return f"cannot bind the {role} address {addr}: {error}" + (f"; {holder}" if holder else "")
