"""Executors and claims: identical records on every executor, dead workers' cells are picked up,
and runners sharing a directory run every cell exactly once."""
import importlib.util
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from bench.execution.claims import claim_path, live_claims, try_claim
from bench.execution.store import ResultStore
from bench.run import main
from bench.status import cell_states

ROOT = Path(__file__).resolve().parent.parent
GRID = ["--methods", "finetune,reservoir", "--streams", "mini", "--seeds", "0", "--profile", "smoke",
        "--no-progress"]


def matrices(out):
    return {(r["method"], r["seed"]): r["nll_matrix"] for r in ResultStore(out).records()}


@pytest.fixture(scope="module")
def local_records(tmp_path_factory):
    out = tmp_path_factory.mktemp("local")
    assert main(GRID + ["--workers", "1", "--out", str(out)]) == 0
    return matrices(out)


@pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="ray not installed")
def test_ray_gives_the_same_records_as_local(tmp_path, local_records):
    assert main(GRID + ["--workers", "2", "--executor", "ray", "--out", str(tmp_path)]) == 0
    assert matrices(tmp_path) == local_records


@pytest.mark.skipif(importlib.util.find_spec("submitit") is None, reason="submitit not installed")
def test_submitit_local_gives_the_same_records_as_local(tmp_path, local_records):
    assert main(GRID + ["--executor", "slurm", "--slurm-cluster", "local", "--out", str(tmp_path)]) == 0
    assert matrices(tmp_path) == local_records


def test_claims_are_exclusive_and_stale_ones_are_taken_over(tmp_path):
    first = try_claim(tmp_path, "cell")
    assert first is not None and try_claim(tmp_path, "cell") is None
    assert "cell" in live_claims(tmp_path)
    old = time.time() - 3600
    os.utime(claim_path(tmp_path, "cell"), (old, old))     # its worker stopped heart-beating
    assert "cell" not in live_claims(tmp_path)
    second = try_claim(tmp_path, "cell")
    assert second is not None
    second.release()
    assert not claim_path(tmp_path, "cell").exists()


def test_a_live_claim_is_respected_and_status_reports_it(tmp_path, capsys):
    store = ResultStore(tmp_path)
    assert main(GRID + ["--workers", "1", "--out", str(tmp_path), "--seeds", "1"]) == 0
    # another runner holds finetune/seed5 right now
    from bench.planning.grid import expand_grid
    from bench.planning.profiles import resolve_profile
    cell = expand_grid(["finetune"], ["mini"], [5], resolve_profile("smoke"))[0]
    claim = try_claim(store.root, store.path(cell).stem)
    capsys.readouterr()
    assert main(GRID + ["--methods", "finetune", "--seeds", "5", "--workers", "1", "--out", str(tmp_path),
                        "--no-wait"]) == 3   # never 0 while a cell of the grid has no record
    assert "being run by another runner" in capsys.readouterr().err
    states = {r["cell"]: r["state"] for r in cell_states(store)}
    assert states["finetune/mini/seed5"] == "running" and states["finetune/mini/seed1"] == "done"
    claim.release()
    assert {r["cell"]: r["state"] for r in cell_states(store)}["finetune/mini/seed5"] == "pending"


def runner(out, *extra, env=None):
    return subprocess.Popen([sys.executable, "-m", "bench.run", *GRID, "--seeds", "0,1,2",
                             "--workers", "1", "--out", str(out), *extra],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env={**os.environ, **(env or {})}, start_new_session=True)


def test_a_killed_workers_cell_is_picked_up_by_the_next_run(tmp_path):
    proc = runner(tmp_path)
    claims = tmp_path / "claims"
    deadline = time.time() + 120
    while not (claims.exists() and any(claims.glob("*.claim"))) and time.time() < deadline:
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)     # dies holding a claim, mid-cell
    proc.wait()
    dead = [p.name for p in claims.glob("*.claim")]
    assert dead, "the killed runner left no claim"
    time.sleep(1.5)
    done = runner(tmp_path, env={"BENCH_CLAIM_STALE_SECONDS": "1"})
    assert done.wait(timeout=300) == 0, done.stderr.read().decode()[-2000:]
    records = ResultStore(tmp_path).records()
    assert len(records) == 6 and all(r["status"] == "done" for r in records)
    assert not list(claims.glob("*.claim"))


def test_two_runners_on_one_directory_run_every_cell_exactly_once(tmp_path):
    a, b = runner(tmp_path), runner(tmp_path)
    assert a.wait(timeout=300) == 0 and b.wait(timeout=300) == 0
    store = ResultStore(tmp_path)
    records = store.records()
    assert len(records) == 6 and all(r["status"] == "done" for r in records)
    runs = Counter(line.split()[0] for line in store.executions() if line.endswith("started"))
    assert sorted(runs.values()) == [1] * 6
    assert len({line.split()[3] for line in store.executions()}) == 2   # both runners did work


@pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="ray not installed")
def test_a_ray_runner_killed_by_sigkill_leaves_no_ray_process(tmp_path):
    """bench.faults' Ray trial: each `kill -9` of a Ray-executor runner left Ray's two agents
    running (about 90 MB each); the runner's watchdog now ends them, and a local rerun finishes."""
    from bench.faults import ray_kill_trial

    grid = ["--methods", "reservoir,ocm", "--streams", "mini", "--seeds", "0", "--profile", "smoke",
            "--no-progress", "--workers", "1"]
    trial = ray_kill_trial(tmp_path, 0, 1.0, reference={}, grid=grid, cells=2)
    assert trial["killed_mid_grid"] and trial["ray_processes_at_kill"] > 0
    assert trial["ray_processes_left"] == 0
    assert trial["rerun_status"] == 0 and trial["lost"] == trial["duplicated"] == trial["corrupt"] == 0


TOY_EXECUTOR = '''
from dataclasses import dataclass

from bench.execution import Executor, register_executor
from methods.core.settings import setting


@dataclass(frozen=True)
class InlineOptions:
    reverse: bool = False                    # run the cells last first
    note: str = setting("inline", choices=("inline", "loud"))


def run(cells, store, common, own, bar):
    from bench.execution.executor import execute_cell

    outcomes = {}
    for cell in (reversed(cells) if own.reverse else cells):
        outcomes[cell.key] = execute_cell(cell, str(store.root), common.data_dir, common.device, common.training_step)
        bar.update()
    return outcomes


register_executor(Executor("inline", f"{__name__}:run", InlineOptions, "every cell in the runner's process",
                           local=True))
'''


def test_an_executor_is_one_registered_file(tmp_path, capsys, registry_guard):
    """A user's executor (one file, given to --import) runs a grid like the built-in ones, its own
    settings typed and bounded by its options dataclass; another executor's flag is refused."""
    from bench.execution import EXECUTORS

    module = tmp_path / "inline_executor.py"
    module.write_text(TOY_EXECUTOR)
    try:
        assert main(["--import", str(module), *GRID, "--seeds", "0,1", "--executor", "inline",
                     "--executor-option", "reverse=true", "--out", str(tmp_path / "r")]) == 0
        records = ResultStore(tmp_path / "r").records()
        assert len(records) == 4 and all(r.done for r in records)
        assert main(["--import", str(module), *GRID, "--executor", "inline", "--executor-option", "note=quiet",
                     "--out", str(tmp_path / "r")]) == 2
        assert "inline.note must be one of inline, loud, not 'quiet'" in capsys.readouterr().err
        assert main(["--import", str(module), *GRID, "--executor", "inline", "--slurm-time", "5",
                     "--out", str(tmp_path / "r")]) == 2
        assert "--slurm-time is not a setting of the inline executor" in capsys.readouterr().err
        assert main([*GRID, "--executor", "nope", "--out", str(tmp_path / "r")]) == 2
        assert "unknown executor 'nope'; valid: local, ray, slurm" in capsys.readouterr().err
    finally:
        EXECUTORS.pop("inline", None)
