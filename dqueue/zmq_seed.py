"""Make libzmq's ROUTER routing ids unpredictable: seed libc's ``rand()`` once per process.

A ROUTER names a peer that sets no routing id of its own ``b"\\x00"`` + a 4-byte counter that
starts at a value drawn from libc's ``rand()``, and libzmq never seeds ``rand()`` (libzmq issue
#4633, "zmq::seed_random() is never called"): in every fresh process the counter starts at the
same value (glibc: ``0x6b8b4567`` for the first ROUTER). libzmq 4.3.5 does not check that a
generated id is free, so a peer that connects with its own id set to the next generated one
makes the ROUTER abort the whole process (``Assertion failed: ok (src/socket_base.cpp:...)``)
when the next peer without an id connects, which every worker and IPC client is.

Seeding ``rand()`` with 32 secret random bits before the first ROUTER is created takes the
prediction away: the attacker must then guess among 2**32 starting values (``docs/security.md``,
"Known limitations", says what that still leaves). Call ``seed_libc_random`` first thing in a
process's entry point; a ROUTER made before it keeps its predictable counter.
"""

from __future__ import annotations

import ctypes
import secrets

# srand takes an unsigned int: 32 bits on every platform dqueue runs on.
SEED_BITS = 32


def seed_libc_random() -> bool:
    """Seed libc's ``rand()`` (the generator libzmq draws routing-id counters from) with a
    secret random value; return False when libc's ``srand`` cannot be found (nothing done)."""
    try:
        libc = ctypes.CDLL(None)  # this process's own symbols: the libc that libzmq calls
        srand = libc.srand
    except (OSError, AttributeError):
        return False
    srand.argtypes = [ctypes.c_uint]
    srand.restype = None
    srand(secrets.randbits(SEED_BITS))
    return True
