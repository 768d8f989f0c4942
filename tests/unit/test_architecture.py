"""The project's layers, read from its imports with `ast` (module level and inside functions alike).

docs/design.md, "A bottom layer": names, errors and the trial record depend on nothing else in the project; the
search's shared services (reaching servers, querying and writing MLflow) sit above them; the search, the release
and the report above those; `cluster/` starts servers and imports nothing of the search above the bottom layer.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("search", "trainables", "cluster")

# layer: (its modules, by longest dotted prefix; the layers it may import besides its own).
LAYERS = {
    "bottom": (("search.common.contract", "search.common.errors", "search.common.trials", "search.common.probes"), ()),
    "trainables": (("trainables",), ("bottom",)),
    "cluster": (("cluster",), ("bottom",)),
    "services": (("search.common",), ("bottom",)),
    "search": (
        ("search.searching", "search.releasing", "search.reporting", "search.run", "search.release", "search.report"),
        ("bottom", "trainables", "services"),
    ),
    "packages": (("search",), ()),  # the `__init__` of `search`: a docstring
}
# Tests import the project, never a helper of benchmarks/; a test whose subject is a benchmark imports that benchmark.
BENCHMARK_TESTS = {
    "tests/chaos/test_chaos.py": "benchmarks.chaos",
    "tests/integration/test_startup_benchmark.py": "benchmarks.startup",
    "tests/unit/test_machine_cpu.py": "benchmarks.driver_cost",
    "tests/unit/test_parallel_tpe.py": "benchmarks.parallel_tpe",
}


def module_paths(root: Path = ROOT) -> dict[str, Path]:
    """Every module of the project's packages, by dotted name (a package by its own name)."""
    paths = sorted(p for package in PACKAGES for p in (root / package).rglob("*.py"))
    return {".".join(p.relative_to(root).with_suffix("").parts).removesuffix(".__init__"): p for p in paths}


def imported(path: Path) -> set[str]:
    """Every absolute name `path` imports anywhere in it: `import a.b`, `from a.b import c` (a.b and a.b.c)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.update([node.module, *(f"{node.module}.{a.name}" for a in node.names)])
    return found


def import_graph(root: Path = ROOT) -> dict[str, set[str]]:
    """Each project module and the project modules it imports (a name imported from a module counts as the module)."""
    paths = module_paths(root)

    def owner(name: str) -> str | None:
        while name and name not in paths:
            name = name.rpartition(".")[0]
        return name or None

    graph = {m: {owner(n) for n in imported(p)} - {None, m} for m, p in paths.items()}
    for module, targets in graph.items():  # `from search.common import contract`: the package only when nothing else
        graph[module] = {t for t in targets if not any(o.startswith(t + ".") for o in targets)} or targets
    return graph


def layer_of(module: str) -> str:
    """The layer whose longest prefix names `module`."""
    best = max(
        ((prefix, layer) for layer, (prefixes, _) in LAYERS.items() for prefix in prefixes
         if module == prefix or module.startswith(prefix + ".")),
        key=lambda found: len(found[0]),
        default=(None, None),
    )  # fmt: skip
    assert best[1] is not None, f"{module} is in no layer of test_architecture.LAYERS"
    return best[1]


def layer_breaches(graph: dict[str, set[str]]) -> list[str]:
    """`a -> b (layer -> layer)` for each import a layer may not make."""
    breaches = []
    for module, targets in sorted(graph.items()):
        layer = layer_of(module)
        allowed = {layer, *LAYERS[layer][1]}
        breaches += [
            f"{module} -> {t} ({layer} -> {layer_of(t)})" for t in sorted(targets) if layer_of(t) not in allowed
        ]
    return breaches


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every cycle of imports (one per strongly connected set of two or more modules)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles = []

    def visit(m: str) -> None:  # Tarjan's strongly connected components
        index[m] = low[m] = len(index)
        stack.append(m)
        for n in sorted(graph.get(m, ())):
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


def benchmark_imports(root: Path = ROOT) -> list[str]:
    """`test file: module` for each import of benchmarks/ by a test that is not a test of that benchmark."""
    found = []
    for path in sorted((root / "tests").rglob("*.py")):
        rel = path.relative_to(root).as_posix()
        modules = {".".join(n.split(".")[:2]) for n in imported(path) if n.split(".")[0] == "benchmarks"}
        found += [f"{rel}: {m}" for m in sorted(modules) if m != BENCHMARK_TESTS.get(rel)]
    return found


def write(root: Path, files: dict[str, str]) -> Path:
    for package in PACKAGES:
        (root / package).mkdir(exist_ok=True)
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def test_a_cycle_is_found_through_an_import_inside_a_function(tmp_path):
    write(tmp_path, {"search/a.py": "from search import b\n", "search/b.py": "def f():\n    from search.a import X\n"})
    assert import_cycles(import_graph(tmp_path)) == [["search.a", "search.b"]]


def test_a_breach_of_each_kind_is_found(tmp_path):
    files = {
        "search/common/contract.py": "def f():\n    from search.common import connect\n",  # bottom -> services
        "search/common/connect.py": "import cluster.healthcheck\n",  # services -> cluster
        "search/common/trials.py": "from trainables.space import flat_params\n",  # bottom -> trainables
        "cluster/healthcheck.py": "",
        "cluster/dashboard.py": "from search.searching.journal import NAME\nfrom search.common import errors\n",
        "search/searching/journal.py": "",
        "search/common/errors.py": "",
        "trainables/space.py": "from search.common.contract import MODEL\n",  # allowed: trainables -> bottom
    }
    assert layer_breaches(import_graph(write(tmp_path, files))) == [
        "cluster.dashboard -> search.searching.journal (cluster -> search)",
        "search.common.connect -> cluster.healthcheck (services -> cluster)",
        "search.common.contract -> search.common.connect (bottom -> services)",
        "search.common.trials -> trainables.space (bottom -> trainables)",
    ]


def test_a_test_importing_a_benchmark_helper_is_found(tmp_path):
    files = {
        "tests/unit/test_x.py": "from benchmarks.chaos import kill_hard\n",
        "tests/unit/test_parallel_tpe.py": "def test():\n    import benchmarks.parallel_tpe\n",  # its subject
    }
    assert benchmark_imports(write(tmp_path, files)) == ["tests/unit/test_x.py: benchmarks.chaos"]


def test_no_import_cycles_among_project_modules():
    assert import_cycles(import_graph()) == []


def test_every_layer_imports_only_the_layers_below_it():
    assert layer_breaches(import_graph()) == []


def test_the_bottom_layer_imports_nothing_of_the_project_above_it():
    bottom = {m: t for m, t in import_graph().items() if layer_of(m) == "bottom"}
    assert bottom and all(layer_of(t) == "bottom" for targets in bottom.values() for t in targets), bottom


def test_cluster_imports_nothing_of_the_search_but_its_bottom_layer():
    graph = import_graph()
    searched = {t for m, targets in graph.items() if m.startswith("cluster") for t in targets if t.startswith("search")}
    assert searched and {layer_of(t) for t in searched} == {"bottom"}, searched


def test_tests_take_no_helper_from_benchmarks():
    assert benchmark_imports() == []
