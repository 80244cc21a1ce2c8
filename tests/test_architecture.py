"""The layers depend only downward (docs/architecture.md): every import in every module, at the
top or inside a function, is checked against the table below. A new import that points up a
layer (a planner importing the executor, a method importing the harness) fails here."""
import ast
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# layer -> the layers it may import (besides itself). The CLIs (bench.run, bench.report, ...,
# bench.perf, bench.cli) sit on top and may import anything.
BENCH_BASE = {"bench", "bench.metrics", "bench.record"}   # the version, the metric registry, the record type
ALLOWED = {
    "streams": set(),
    "methods.models": {"streams"},
    "methods.core": {"methods.models", "streams"},
    "methods": {"methods.core", "methods.models", "streams"},          # the method modules
    "bench.metrics": {"bench", "streams"},                             # declarations: pure Python
    "bench.record": {"bench", "bench.metrics"},                        # a cell's record, typed
    "bench.planning": BENCH_BASE | {"methods", "methods.core", "methods.models", "streams"},
    "bench.evaluation": BENCH_BASE | {"bench.planning", "methods", "methods.core", "methods.models", "streams"},
    "bench.execution": BENCH_BASE | {"bench.planning", "bench.evaluation", "methods", "methods.core", "streams"},
    "bench.reporting": BENCH_BASE | {"bench.planning", "methods", "streams"},
}
LAYERS = sorted(ALLOWED, key=len, reverse=True)


def layer_of(module: str) -> str | None:
    """The layer a dotted module name belongs to (the longest matching prefix), None for the CLIs
    and for third-party modules."""
    if module == "bench":
        return "bench"
    for layer in LAYERS:
        if module == layer or module.startswith(layer + "."):
            return layer
    return None


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return {name for name in found if name.split(".")[0] in ("bench", "methods", "streams")}


def violations(root: Path = ROOT) -> list[str]:
    bad = []
    for package in ("bench", "methods", "streams"):
        for path in sorted((root / package).rglob("*.py")):
            name = module_name(path, root)
            layer = layer_of(name)
            if layer is None or layer == "bench":
                continue   # a CLI (or bench/__init__, which holds the version only)
            for imported in imports(path):
                target = layer_of(imported)
                if target is None:
                    target = imported.split(".")[0] + "(cli)" if imported.split(".")[0] == "bench" else None
                if target is not None and target != layer and target not in ALLOWED[layer]:
                    bad.append(f"{name} ({layer}) imports {imported} ({target})")
    return sorted(set(bad))


def test_layers_depend_only_downward():
    assert violations() == []


def import_graph(root: Path = ROOT) -> dict[str, set[str]]:
    """{module: the project's modules it imports}, at the top or inside functions ('from a import b'
    counts as importing a, and a.b when that is a module)."""
    paths = {module_name(p, root): p for package in ("bench", "methods", "streams")
             for p in sorted((root / package).rglob("*.py"))}
    graph = {}
    for name, path in paths.items():
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found |= {node.module, *(f"{node.module}.{alias.name}" for alias in node.names)}
        graph[name] = {m for m in found if m in paths and m != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The groups of modules that import each other, directly or through others (Tarjan's strongly
    connected components of more than one module)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while not group or group[-1] != v:
                group.append(stack.pop())
                on_stack.discard(group[-1])
            if len(group) > 1:
                found.append(sorted(group))
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_two_modules_import_each_other():
    """No circle of imports, not even one hidden by imports inside functions (planning/grid.py and
    profiles.py, perf/benchmarks.py and packing.py were one each)."""
    assert cycles(import_graph()) == []
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_the_check_catches_an_upward_import(tmp_path):
    """The checker itself, on a copy of the tree (the repository is never written): a planner
    module that imports the executor is reported, and nothing else."""
    for package in ("bench", "methods", "streams"):
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("*.pt", "__pycache__"))
    (tmp_path / "bench" / "planning" / "_upward_import_probe.py").write_text(
        "from bench.execution.executor import run_cells\n")
    assert violations(tmp_path) == ["bench.planning._upward_import_probe (bench.planning) imports "
                                    "bench.execution.executor (bench.execution)"]


HOOK_PROBE = """
from torch.nn.modules import module as m
def hooks():
    return {n: len(v) for n in dir(m) if n.startswith("_global_") and isinstance(v := getattr(m, n), dict)}
before = hooks()
import methods, methods.core.strategy, bench.evaluation.cell
print(before == hooks(), sum(before.values()))
"""


def test_importing_the_project_installs_no_hooks_on_other_modules():
    """Importing every method and the strategy leaves torch's global module hooks (hooks on every
    module of the process, other people's included) as they were: none is added."""
    out = subprocess.run([sys.executable, "-c", HOOK_PROBE], cwd=ROOT, capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["True", "0"]


# A metric's name is written in its family's declaration (bench/metrics) and in the evaluation
# that computes it; every other layer reads the registry (primary_metric(), headline metrics, a
# provenance's metrics, run-table columns), so that a metric added or renamed is one place.
METRIC_MODULES = ("bench/metrics/", "bench/evaluation/nll.py", "bench/evaluation/fid.py",
                  "bench/evaluation/sample_quality.py")


def metric_name_literals(root: Path = ROOT) -> list[str]:
    from bench.metrics import METRICS, columns

    names = set(METRICS) | set(columns()) | {m.matrix for m in METRICS.values() if m.matrix}
    found = []
    for package in ("bench", "methods", "streams"):
        for path in sorted((root / package).rglob("*.py")):
            relative = str(path.relative_to(root))
            if relative.startswith(METRIC_MODULES):
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in names:
                    found.append(f"{relative}:{node.lineno} {node.value!r}")
    return found


def test_no_metric_name_is_written_outside_its_family(tmp_path):
    assert metric_name_literals() == []
    # a planted literal is found (the check can fail)
    planted = tmp_path / "bench" / "reporting"
    planted.mkdir(parents=True)
    (planted / "table.py").write_text('COLUMNS = ("nll", "fid_matrix")\n')
    assert metric_name_literals(tmp_path) == ["bench/reporting/table.py:1 'nll'", "bench/reporting/table.py:1 'fid_matrix'"]
