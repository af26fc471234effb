"""The pure cores import no I/O, clock, threads or uuid (docs/internals.md sections 1 and 2)."""

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2] / "dqueue"
# gc: the collector policy (pauses, freezing) is the node's (dqueue/node/gcpause.py).
BANNED = {"zmq", "lmdb", "msgpack", "time", "os", "socket", "threading", "uuid", "datetime",
          "asyncio", "subprocess", "select", "signal", "multiprocessing", "secrets", "gc"}
#: Calendar arithmetic of cron schedules needs ``datetime`` and ``zoneinfo`` (wall time in a
#: zone); that one module may import datetime, and no core module may read a clock (below).
CALENDAR_MODULES = {"queue/cron.py": {"datetime"}}
#: Attributes that read the wall clock, whatever module they are reached through.
CLOCK_READS = {"now", "utcnow", "today", "time", "time_ns", "monotonic", "monotonic_ns",
               "perf_counter", "perf_counter_ns"}


def _imports(path: pathlib.Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def _module_level_random(path: pathlib.Path) -> list[str]:
    """Calls like random.random() at any level: randomness must come from an injected Random."""
    tree = ast.parse(path.read_text(), filename=str(path))
    bad = []
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                and node.value.id == "random" and node.attr != "Random"):
            bad.append(f"{path.name}:{node.lineno} random.{node.attr}")
    return bad


@pytest.mark.parametrize("package", ["raft", "queue"])
def test_core_imports_no_io(package):
    files = sorted((ROOT / package).rglob("*.py"))
    assert files, f"dqueue/{package} has no modules"
    for path in files:
        allowed = CALENDAR_MODULES.get(str(path.relative_to(ROOT)), set())
        bad = _imports(path) & (BANNED - allowed)
        assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"
        assert not _module_level_random(path)


def _clock_reads(path: pathlib.Path) -> list[str]:
    """Calls like datetime.now() or x.today(): the cores take time only from commands."""
    tree = ast.parse(path.read_text(), filename=str(path))
    return [f"{path.name}:{node.lineno} .{node.func.attr}()" for node in ast.walk(tree)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and node.func.attr in CLOCK_READS]


@pytest.mark.parametrize("package", ["raft", "queue"])
def test_core_reads_no_clock(package):
    for path in sorted((ROOT / package).rglob("*.py")):
        assert not _clock_reads(path), _clock_reads(path)
