"""No import cycle anywhere in ``dqueue/``; nothing imports the Raft process but its entry point.

The graph is read from the source with ``ast``, not by importing: an edge A -> B for every
``import B`` or ``from B import x`` in module A (``from P import m`` is an edge to ``P.m`` when
``m`` is a module), relative imports resolved.

Which imports count: every import that runs, at module level and inside functions, methods,
``try`` or ``if`` blocks alike (a cycle hidden in a function still makes the import order
fragile, and still ties the two modules together). Imports under ``if TYPE_CHECKING:`` do not
count for cycles: they never run, and they are how a helper module annotates the class it
serves (``dqueue/raft/roles.py`` takes the ``Raft`` of ``core.py``). They do count for the
second rule: no module imports ``dqueue.node.process``, even for type checking, except
``dqueue/node/__main__.py``. The process is where the node's parts are assembled; a part handed
the whole process (``self.p = process``) is what this rule keeps out (../shared/STYLE.md).
"""

from __future__ import annotations

import ast
import pathlib
from collections.abc import Iterator

ROOT = pathlib.Path(__file__).resolve().parents[2] / "dqueue"
COMPOSITION_ROOT = "dqueue.node.process"
ENTRY_POINTS = {"dqueue.node.__main__"}


def module_names(root: pathlib.Path) -> dict[str, pathlib.Path]:
    """Dotted module name -> file, for every module of the package at ``root``."""
    names = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        names[".".join(parts)] = path
    return names


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST, type_checking: bool = False) -> Iterator[tuple[ast.stmt, bool]]:
    """Every import statement of ``tree``, with whether it sits under ``if TYPE_CHECKING``."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node, type_checking
        elif isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.body:
                yield from _imports(ast.Module(body=[child], type_ignores=[]), True)
            for child in node.orelse:
                yield from _imports(ast.Module(body=[child], type_ignores=[]), type_checking)
        else:
            yield from _imports(node, type_checking)


def import_edges(names: dict[str, pathlib.Path],
                 with_type_checking: bool) -> dict[str, set[str]]:
    """Module -> the modules of ``names`` it imports."""
    graph: dict[str, set[str]] = {}
    for name, path in names.items():
        package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        targets: set[str] = set()
        for stmt, type_checking in _imports(ast.parse(path.read_text(), filename=str(path))):
            if type_checking and not with_type_checking:
                continue
            if isinstance(stmt, ast.Import):
                targets.update(alias.name for alias in stmt.names if alias.name in names)
                continue
            assert isinstance(stmt, ast.ImportFrom)
            if stmt.level:
                base = package[:len(package) - stmt.level + 1]
                module = ".".join([*base, *([stmt.module] if stmt.module else [])])
            else:
                module = stmt.module or ""
            for alias in stmt.names:
                if f"{module}.{alias.name}" in names:
                    targets.add(f"{module}.{alias.name}")
                elif module in names:
                    targets.add(module)
        targets.discard(name)
        graph[name] = targets
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (``[a, b, ..., a]``) per strongly connected component of more than one
    module (Tarjan's algorithm, iterative; nodes and edges visited in sorted order)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    components.append(sorted(component))
    return [_cycle_through(graph, set(component), component[0]) for component in components]


def _cycle_through(graph: dict[str, set[str]], component: set[str], start: str) -> list[str]:
    """The shortest path from ``start`` back to itself inside ``component`` (breadth first)."""
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for child in sorted(graph[node] & component):
                if child == start:
                    return [*paths[node], start]
                if child not in paths:
                    paths[child] = [*paths[node], child]
                    following.append(child)
        frontier = following
    raise AssertionError(f"no cycle through {start}")


def test_no_import_cycle_in_dqueue():
    graph = import_edges(module_names(ROOT), with_type_checking=False)
    assert len(graph) > 100  # the whole package was read
    cycles = find_cycles(graph)
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_nothing_imports_the_raft_process_but_its_entry_point():
    graph = import_edges(module_names(ROOT), with_type_checking=True)
    importers = sorted(name for name, targets in graph.items()
                       if COMPOSITION_ROOT in targets and name not in ENTRY_POINTS)
    assert not importers, f"{', '.join(importers)} import {COMPOSITION_ROOT}"


def test_the_walk_finds_cycles_in_functions_and_through_relative_imports(tmp_path):
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("")
    (package / "a.py").write_text("def f():\n    from pkg.sub import b\n")
    (package / "sub" / "b.py").write_text("from .. import c\n")
    (package / "c.py").write_text("import pkg.a\n")
    (package / "d.py").write_text("from typing import TYPE_CHECKING\n"
                                  "if TYPE_CHECKING:\n    from pkg import e\n")
    (package / "e.py").write_text("from pkg import d\n")
    names = module_names(package)
    assert find_cycles(import_edges(names, with_type_checking=False)) == [
        ["pkg.a", "pkg.sub.b", "pkg.c", "pkg.a"]]
    assert find_cycles(import_edges(names, with_type_checking=True)) == [
        ["pkg.a", "pkg.sub.b", "pkg.c", "pkg.a"], ["pkg.d", "pkg.e", "pkg.d"]]
