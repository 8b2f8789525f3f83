"""Imports only go down: every import inside the package (at module level or in a function) keeps
to the table in docs/ARCHITECTURE.md ("Who may import whom"), and no modules import each other in
a circle. The table is read from the document, so the two cannot drift apart."""
from __future__ import annotations

import ast
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "tensorsmith"


def _table() -> dict[str, set[str]]:
    """unit -> the units it may import, from the markdown table under "## Who may import whom"."""
    text = (ROOT / "docs" / "ARCHITECTURE.md").read_text()
    section = text.split("## Who may import whom", 1)[1].split("\n## ", 1)[0]
    table = {}
    for row in re.findall(r"^\| *`([\w/]+)` *\|([^|]*)\|", section, re.M):
        unit, allowed = row
        table[unit.rstrip("/")] = set(re.findall(r"`([\w/]+)`", allowed)) - {"*"} | \
            ({"*"} if "everything" in allowed else set())
        table[unit.rstrip("/")] = {a.rstrip("/") for a in table[unit.rstrip("/")]}
    return table


def _modules() -> dict[str, pathlib.Path]:
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        modules[name] = path
    return modules


def _type_checking_lines(tree) -> set[int]:
    lines = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return lines


def _imports(name: str, path: pathlib.Path, modules) -> set[str]:
    """The package's modules `name` imports, wherever in the file (type-checking blocks aside)."""
    tree = ast.parse(path.read_text())
    skip = _type_checking_lines(tree)
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found = set()
    for node in ast.walk(tree):
        if getattr(node, "lineno", None) in skip:
            continue
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            # `from pkg import mod` imports the module; `from mod import name` the module itself
            targets = [f"{module}.{a.name}" if f"{module}.{a.name}" in modules else module
                       for a in node.names]
        else:
            continue
        found.update(t for t in targets if t.split(".")[0] == "tensorsmith" and t in modules)
    found.discard(name)
    return found


def _unit(module: str, table) -> str:
    parts = module.split(".")[1:]
    return parts[0] if parts and parts[0] in table else (parts[0] if parts else "tensorsmith")


GRAPH = {name: _imports(name, path, _modules()) for name, path in _modules().items()}


def test_the_table_names_every_unit_and_only_goes_down():
    table = _table()
    units = {_unit(m, table) for m in GRAPH}
    assert units <= set(table), f"units missing from the table: {sorted(units - set(table))}"
    order, done = [], set()

    def visit(unit, path):
        assert unit not in path, f"the table goes round: {' -> '.join(path + [unit])}"
        if unit not in done:
            for lower in table[unit] - {"*"}:
                visit(lower, path + [unit])
            done.add(unit)
    for unit in table:
        visit(unit, [])


@pytest.mark.parametrize("module", sorted(GRAPH))
def test_imports_keep_to_the_table(module):
    table = _table()
    unit = _unit(module, table)
    allowed = table[unit]
    wrong = sorted(t for t in GRAPH[module]
                   if _unit(t, table) != unit and "*" not in allowed and _unit(t, table) not in allowed)
    assert not wrong, f"{module} ({unit}/) imports {wrong}, which the table does not allow {unit} to import"


def test_no_modules_import_each_other_in_a_circle():
    index, low, stack, on_stack, circles = {}, {}, [], set(), []

    def connect(v):  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in GRAPH[v]:
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                circles.append(sorted(component))
    for v in GRAPH:
        if v not in index:
            connect(v)
    assert not circles, f"modules importing each other in a circle: {circles}"
