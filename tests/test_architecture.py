"""The layers depend only downward (docs/architecture.md): every import in every module, at the
top or inside a function, is checked against the table below. A new import that points up a
layer (a planner importing the executor, a method importing the harness) fails here."""
import ast
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


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return {name for name in found if name.split(".")[0] in ("bench", "methods", "streams")}


def violations() -> list[str]:
    bad = []
    for package in ("bench", "methods", "streams"):
        for path in sorted((ROOT / package).rglob("*.py")):
            name = module_name(path)
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


def test_the_check_catches_an_upward_import(tmp_path, monkeypatch):
    """The checker itself: a planner module that imports the executor is reported."""
    fake = ROOT / "bench" / "planning" / "_upward_import_probe.py"
    fake.write_text("from bench.execution.executor import run_cells\n")
    try:
        assert violations() == ["bench.planning._upward_import_probe (bench.planning) imports "
                                "bench.execution.executor (bench.execution)"]
    finally:
        fake.unlink()


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
