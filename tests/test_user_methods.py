"""Methods defined outside the harness: `bench.run --import`, $OCM_BENCH_IMPORTS for workers, the
`ocm_bench.methods` entry points, the registry's duplicate check, and the `ocm-bench` command."""
import importlib.metadata
import multiprocessing
import os
from dataclasses import dataclass
from pathlib import Path

import pytest

import bench.cli
from bench.execution.store import ResultStore
from bench.run import main
from methods import METHODS, GenerativePlugin, MethodRegistrationError, get_method, register_method
from methods.core import user_methods
from streams import UnknownNameError

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "my_method.py"
# as the docs write it (relative to the repository root) when the tests run from there
EXAMPLE_ARG = "examples/my_method.py" if Path("examples/my_method.py").resolve() == EXAMPLE else str(EXAMPLE)
SMOKE = ["--streams", "mini", "--seeds", "0", "--profile", "smoke", "--no-progress", "--workers", "1"]

PLUGIN_MODULE = '''
from dataclasses import dataclass
from methods import GenerativePlugin, register_method

@dataclass(frozen=True)
class Config:
    size: int = 3

@register_method("{name}", Config, "a test method")
class Plugin(GenerativePlugin):
    pass
'''


def write_module(folder: Path, module: str, method: str) -> Path:
    path = folder / f"{module}.py"
    path.write_text(PLUGIN_MODULE.format(name=method))
    return path


def test_example_method_runs_through_bench_run(tmp_path, registry_guard):
    out = tmp_path / "out"
    assert main(["--import", EXAMPLE_ARG, "--methods", "window", "--set", "window.budget=100", "--out", str(out)] + SMOKE) == 0
    [record] = ResultStore(out).records()
    assert record["status"] == "done" and record["method"] == "window"
    assert record["method_config"] == {"budget": 100}
    seen = record["stream_length"]
    assert seen == sum(record["train_sizes"]) == 5 * 256
    assert record["memory"] == min(100, seen) == 100 and record["memory_peak"] == 100
    assert record["window_oldest"] == seen - 100          # the most recent images, not the first
    # E = 1 pass over batch + memory, the memory holding min(budget, images seen before the batch)
    batches = seen // 64
    assert record["images_trained"] == seen + sum(min(100, 64 * i) for i in range(batches))
    assert 100 < record["nll"] < 544
    # workers in spawned processes and on clusters find the module through the environment
    assert str(EXAMPLE) in os.environ[user_methods.ENV_VAR].split(os.pathsep)


def test_import_is_idempotent_and_dotted_names_work(tmp_path, registry_guard, monkeypatch):
    first = user_methods.import_source(str(EXAMPLE))
    assert user_methods.import_source(str(EXAMPLE)) is first and "window" in METHODS
    monkeypatch.syspath_prepend(str(tmp_path))
    write_module(tmp_path, "tmp_ocm_methods_dotted", "tmp-dotted")
    user_methods.import_modules(["tmp_ocm_methods_dotted"])
    assert get_method("tmp-dotted").config_class().size == 3


def test_unknown_name_loads_the_modules_named_in_the_environment(tmp_path, registry_guard, monkeypatch):
    path = write_module(tmp_path, "env_method", "tmp-env-method")
    monkeypatch.setenv(user_methods.ENV_VAR, str(path))
    assert "tmp-env-method" not in METHODS
    spec = get_method("tmp-env-method")
    assert spec.plugin_class.__name__ == "Plugin" and spec.plugin_class.name == "tmp-env-method"
    assert get_method("tmp-env-method") is spec   # loaded once
    with pytest.raises(UnknownNameError, match="unknown method 'nothing'; valid methods: finetune, .*tmp-env-method"):
        get_method("nothing")


def test_unknown_name_says_which_module_did_not_load(tmp_path, registry_guard, monkeypatch):
    monkeypatch.setenv(user_methods.ENV_VAR, str(tmp_path / "missing.py"))
    with pytest.raises(UnknownNameError, match="missing.py': no such file"):
        get_method("tmp-missing")


def _method_in_child(name, queue):
    from methods import get_method as child_get_method
    queue.put(child_get_method(name).plugin_class.__qualname__)


def test_spawned_worker_finds_the_imported_method(registry_guard, monkeypatch):
    user_methods.import_modules([str(EXAMPLE)])
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    child = context.Process(target=_method_in_child, args=("window", queue))
    child.start()
    assert queue.get(timeout=120) == "WindowPlugin"
    child.join(30)
    assert child.exitcode == 0


def test_entry_points_register_methods(tmp_path, registry_guard, monkeypatch):
    write_module(tmp_path, "tmp_ocm_methods_ep", "tmp-entry-point")
    monkeypatch.syspath_prepend(str(tmp_path))
    ep = importlib.metadata.EntryPoint("mine", "tmp_ocm_methods_ep", user_methods.ENTRY_POINT_GROUP)
    broken = importlib.metadata.EntryPoint("broken", "tmp_ocm_no_such_module", user_methods.ENTRY_POINT_GROUP)
    monkeypatch.setattr(importlib.metadata, "entry_points",
                        lambda group=None: [ep, broken] if group == user_methods.ENTRY_POINT_GROUP else [])
    monkeypatch.setattr(user_methods, "_entry_points_seen", {})
    assert get_method("tmp-entry-point").config_class().size == 3
    with pytest.raises(UnknownNameError, match="entry point 'broken = tmp_ocm_no_such_module'"):
        get_method("tmp-nothing")


@pytest.mark.parametrize("source,message", [
    ("examples/no_such_file.py", "error: --import 'examples/no_such_file.py': no such file"),
    ("no_such_package.methods", "error: --import 'no_such_package.methods': no module named 'no_such_package'"),
])
def test_bad_import_exits_2(tmp_path, capsys, registry_guard, source, message):
    assert main(["--import", source, "--methods", "finetune", "--out", str(tmp_path)] + SMOKE) == 2
    assert message in capsys.readouterr().err
    assert not list(tmp_path.iterdir())   # refused before anything ran


def test_module_that_fails_to_import_exits_2(tmp_path, capsys, registry_guard):
    bad = tmp_path / "bad_method.py"
    bad.write_text("from methods import register_method\nraise RuntimeError('boom')\n")
    assert main(["--import", str(bad), "--list"]) == 2
    err = capsys.readouterr().err
    assert f"error: --import '{bad}' failed: RuntimeError: boom" in err and "line 2" in err


def test_duplicate_names_raise_unless_the_same_class(registry_guard):
    @dataclass(frozen=True)
    class Config:
        pass

    with pytest.raises(MethodRegistrationError, match="'finetune' is already registered by methods.finetune"):
        @register_method("finetune", Config, "another finetune")
        class Other(GenerativePlugin):
            pass
    assert METHODS["finetune"].plugin_class.__module__ == "methods.finetune"
    # the same class statement run again (a re-imported module) replaces itself
    spec = METHODS["reservoir"]
    register_method("reservoir", spec.config_class, spec.description)(spec.plugin_class)
    assert METHODS["reservoir"].plugin_class is spec.plugin_class


def test_duplicate_name_in_an_imported_module_exits_2(tmp_path, capsys, registry_guard):
    path = write_module(tmp_path, "clash", "reservoir")
    assert main(["--import", str(path), "--list"]) == 2
    assert "method name 'reservoir' is already registered by methods.reservoir.ReservoirPlugin" \
        in capsys.readouterr().err
    assert METHODS["reservoir"].plugin_class.__module__ == "methods.reservoir"


def test_cli_dispatches_subcommands(capsys):
    assert bench.cli.main(["run", "--list"]) == 0
    out = capsys.readouterr().out
    assert "finetune" in out and "reservoir" in out
    assert bench.cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in ("run", "report", "check", "status", "perf", "fetch"))
    assert bench.cli.main(["status", "--help"]) == 0
    assert "usage: python -m bench.status" in capsys.readouterr().out


def test_cli_unknown_subcommand_exits_2(capsys):
    assert bench.cli.main(["runn"]) == 2
    assert ("error: unknown subcommand 'runn'; valid subcommands: run, report, check, status, sample, perf, fetch"
            in capsys.readouterr().err)
    assert bench.cli.main([]) == 2
