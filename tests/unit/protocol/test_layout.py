"""The layers of ../shared/DESIGN.md section 2 that the protocol package makes visible: the API,
the client and the worker reach the node only through ``dqueue.protocol`` (over IPC or ZeroMQ),
never by importing ``dqueue.node``; and the protocol imports none of the packages that use it."""

from __future__ import annotations

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[3] / "dqueue"


def imported_modules(path: pathlib.Path, root: pathlib.Path) -> list[tuple[int, str]]:
    """Every module a source file imports, at any level (function bodies and
    ``TYPE_CHECKING`` blocks included), as ``(line, dotted name)``; ``from a import b`` yields
    both ``a`` and ``a.b`` (``b`` may be a module)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                package = path.relative_to(root.parent).with_suffix("").parts[:-node.level]
                base = ".".join((*package, node.module) if node.module else package)
            else:
                base = node.module or ""
            found.append((node.lineno, base))
            found.extend((node.lineno, f"{base}.{alias.name}") for alias in node.names)
    return found


def offenders(package: str, banned: tuple[str, ...], root: pathlib.Path = ROOT) -> list[str]:
    """The imports of any module under ``dqueue/<package>`` of a banned package."""
    files = sorted((root / package).rglob("*.py"))
    assert files, f"dqueue/{package} has no modules"
    bad = []
    for path in files:
        lines = sorted({line for line, name in imported_modules(path, root)
                        if any(name == b or name.startswith(b + ".") for b in banned)})
        bad.extend(f"{path.relative_to(root.parent)}:{line}" for line in lines)
    return bad


@pytest.mark.parametrize("package", ["api", "client", "worker"])
def test_api_client_and_worker_never_import_the_node(package):
    assert offenders(package, ("dqueue.node",)) == []


def test_protocol_imports_none_of_its_users():
    assert offenders("protocol", ("dqueue.node", "dqueue.api", "dqueue.client",
                                  "dqueue.worker")) == []


def test_the_walk_sees_every_form_of_import(tmp_path):
    # The check itself can fail: each form of import of the node is found.
    fake_root = tmp_path / "dqueue"
    (fake_root / "api").mkdir(parents=True)
    (fake_root / "api" / "bad.py").write_text(
        "import dqueue.node.store\n"
        "from dqueue import node\n"
        "from dqueue.node.ipc_server import IpcServer\n"
        "from ..node import router\n"
        "def f():\n"
        "    from dqueue.node import views\n"
        "from dqueue.nodes import other\n"  # a different package: allowed
    )
    found = offenders("api", ("dqueue.node",), fake_root)
    assert [entry.rpartition(":")[2] for entry in found] == ["1", "2", "3", "4", "6"]
