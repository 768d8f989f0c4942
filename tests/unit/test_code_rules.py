"""Rules over the project's source, read with `ast`: contract names spelled once, no import cycles."""

from __future__ import annotations

import ast
from pathlib import Path

from search.common import contract

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("search", "trainables", "cluster")


def sources(*packages: str, root: Path = ROOT) -> list[Path]:
    """The project's Python files under `packages`."""
    return sorted(p for package in packages for p in (root / package).rglob("*.py"))


def spelled_names(tree: ast.AST, names: frozenset[str]) -> list[tuple[int, str]]:
    """(line, name) of every string literal in `tree` equal to one of `names`; docstrings and f-string parts aside."""
    skip = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
            skip.add(id(body[0].value))  # a docstring
        if isinstance(node, ast.JoinedStr):
            skip.update(id(v) for v in node.values)
    return [(n.lineno, n.value) for n in ast.walk(tree)
            if isinstance(n, ast.Constant) and n.value in names and id(n) not in skip]  # fmt: skip


def test_spelled_names_are_found():
    tree = ast.parse('"""val_accuracy"""\nrow["val_accuracy"]\nf"x{y}outcome"\nz = "accuracy"\n')
    assert spelled_names(tree, contract.NAMES) == [(2, "val_accuracy")]


def test_contract_names_are_spelled_in_contract_only():
    spelled = []
    for path in sources("search", "trainables"):
        rel = path.relative_to(ROOT).as_posix()
        if rel == "search/common/contract.py":
            continue
        spelled += [
            f"{rel}:{line} {name!r}" for line, name in spelled_names(ast.parse(path.read_text()), contract.NAMES)
        ]
    assert not spelled, "use search.common.contract's names instead of: " + ", ".join(spelled)


def imports_of(path: Path, modules: set[str]) -> set[str]:
    """The project modules `path` imports anywhere in it (top level, functions, TYPE_CHECKING blocks)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
        found.update(n for n in names if n in modules)
    return found


def import_cycles(root: Path = ROOT) -> list[list[str]]:
    """Every cycle of imports among the project's modules (one per strongly connected set of two or more)."""
    paths = {
        ".".join(p.relative_to(root).with_suffix("").parts).removesuffix(".__init__"): p
        for p in sources(*PACKAGES, root=root)
    }
    graph = {m: imports_of(p, set(paths)) - {m} for m, p in paths.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles = []

    def visit(m: str) -> None:  # Tarjan's strongly connected components
        index[m] = low[m] = len(index)
        stack.append(m)
        for n in graph[m]:
            if n not in index:
                visit(n)
                low[m] = min(low[m], low[n])
            elif n in stack:
                low[m] = min(low[m], index[n])
        if low[m] == index[m]:
            group = []
            while (n := stack.pop()) != m:
                group.append(n)
            if group:
                cycles.append(sorted([m, *group]))

    for m in sorted(graph):
        if m not in index:
            visit(m)
    return cycles


def test_a_cycle_is_found(tmp_path):
    (tmp_path / "search").mkdir()
    (tmp_path / "search" / "a.py").write_text("from search import b\n")
    (tmp_path / "search" / "b.py").write_text("def f():\n    from search.a import X\n")
    for package in ("trainables", "cluster"):
        (tmp_path / package).mkdir()
    assert import_cycles(tmp_path) == [["search.a", "search.b"]]


def test_no_import_cycles_among_project_modules():
    assert import_cycles() == []
