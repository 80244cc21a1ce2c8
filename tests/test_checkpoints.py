"""Cells that survive preemption (bench/evaluation/checkpoint.py): a cell stopped mid-task or at a
task boundary and resumed from its checkpoint gives the record of the uninterrupted cell, for
every shipped method; a runner killed with -9 mid-cell resumes it; SIGTERM leaves a checkpoint and
exit 143; a kept model draws samples without training."""
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.evaluation.cell import run_cell
from bench.evaluation.checkpoint import CheckpointPolicy, Preempted
from bench.planning.grid import METHODS, expand_grid
from bench.planning.profiles import resolve_profile

ROOT = Path(__file__).resolve().parents[1]
# what may differ between an uninterrupted cell and a resumed one: when it ran, how long it took
TIMES = {"train_seconds", "eval_seconds", "wall_seconds", "finished_at", "fid_seconds", "sample_quality_seconds",
         "resumed_from"}


def numbers(record) -> dict:
    """The record as JSON reads it back, without its times."""
    as_json = json.loads(json.dumps(dict(record), default=str))
    return {k: v for k, v in as_json.items() if k not in TIMES}


def small_cell(method: str):
    profile = dataclasses.replace(resolve_profile("smoke"), max_train_per_task=128)   # 2 batches a task
    return expand_grid([method], ["mini"], [0], profile)[0]


@pytest.mark.parametrize("method", list(METHODS))
def test_a_resumed_cell_is_the_uninterrupted_cell(method, tmp_path):
    """Stopped after task 2's first incoming batch (a task-free method; one that trains on whole
    tasks is checkpointed at boundaries only, so it resumes after task 2), and after task 3's
    boundary: each resumed record equals the uninterrupted one in every number and matrix, and
    says where it resumed."""
    cell = small_cell(method)
    plain = numbers(run_cell(cell))
    for stop, resumes_at in (((1, 0), {"task": 2, "batch": 1}), ((2, None), {"task": 4, "batch": 0})):
        path = tmp_path / f"{stop[0]}.pt"
        task_free = not METHODS[method].needs_task_boundaries
        try:
            run_cell(cell, checkpoint=CheckpointPolicy(path, every_seconds=float("inf"), stop_at=stop))
        except Preempted:
            assert task_free or stop[1] is None
        else:
            assert not task_free and stop[1] is not None   # a whole-task method ran on: its last boundary stands
            resumes_at = {"task": 5, "batch": 0}
        resumed = run_cell(cell, checkpoint=CheckpointPolicy(path, every_seconds=float("inf")))
        assert resumed["status"] == "done", resumed.get("traceback")
        assert numbers(resumed) == plain
        assert [{k: r[k] for k in ("task", "batch")} for r in resumed["resumed_from"]] == [resumes_at]


def test_a_foreign_or_torn_checkpoint_is_set_aside(tmp_path, capsys):
    cell = small_cell("reservoir")
    path = tmp_path / "c.pt"
    path.write_bytes(b"not a checkpoint")
    record = run_cell(cell, checkpoint=CheckpointPolicy(path))
    assert record["status"] == "done" and "resumed_from" not in record
    assert (tmp_path / "c.bad").read_bytes() == b"not a checkpoint" and "unreadable" in capsys.readouterr().err


def grid(out: Path, method: str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "bench.run", "--methods", method, "--streams", "mini", "--seeds", "0",
            "--profile", "smoke", "--set", "max_train_per_task=384", "--out", str(out), "--no-progress", *extra]


def wait_for_checkpoint(process, folder: Path, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        if list(folder.glob("checkpoints/*.pt")):
            return
        time.sleep(0.05)
    raise AssertionError(f"no checkpoint appeared (runner exit {process.poll()})")


@pytest.mark.parametrize("method", ["ocm", "cndpm"])
def test_kill_9_mid_cell_then_rerun_gives_the_uninterrupted_record(method, tmp_path):
    """A runner killed with SIGKILL after its cell's first checkpoint (every incoming batch here):
    the rerun resumes the cell, and its record equals a run that was never interrupted."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    subprocess.run(grid(whole, method, "--workers", "1"), check=True, cwd=ROOT, env=env, capture_output=True)
    process = subprocess.Popen(grid(killed, method, "--workers", "1", "--checkpoint-minutes", "0.0001"), cwd=ROOT,
                               env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for_checkpoint(process, killed)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not list((killed / "records").glob("*.json")) if (killed / "records").exists() else True
    subprocess.run(grid(killed, method, "--workers", "1"), check=True, cwd=ROOT, env=env, capture_output=True)
    (a,), (b,) = ([json.loads(p.read_text()) for p in (d / "records").glob("*.json")] for d in (whole, killed))
    assert b["resumed_from"] and numbers(a) == numbers(b)
    assert not list((killed / "checkpoints").glob("*.pt"))   # removed once the record is written


def test_sigterm_leaves_a_checkpoint_and_exit_143_then_the_rerun_resumes(tmp_path):
    """SIGTERM to a runner with worker processes: each worker checkpoints at its next incoming batch
    and exits 75, the runner exits 143 with no record; the rerun finishes from the checkpoint."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = tmp_path / "out"
    cmd = grid(out, "ocm,reservoir", "--workers", "2", "--checkpoint-minutes", "0")
    process = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wait_for_checkpoint(process, out)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 143, err
    log = (out / "executions.log").read_text()
    assert "preempted" in log
    assert list((out / "checkpoints").glob("*.pt"))
    status = subprocess.run([sys.executable, "-m", "bench.status", str(out)], cwd=ROOT, env=env, capture_output=True,
                            text=True)
    assert "pending" in status.stdout and "at task" in status.stdout   # how far the stopped cells got
    finished = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    assert finished.returncode == 0, finished.stderr
    records = [json.loads(p.read_text()) for p in (out / "records").glob("*.json")]
    assert len(records) == 2 and all(r["status"] == "done" for r in records)
    assert any(r.get("resumed_from") for r in records)


def test_a_kept_model_draws_samples_without_training(tmp_path):
    """--keep-models, then `ocm-bench sample` (a grown mixture: ocm-dynamic) and load_model: the
    loaded model's NLL on the record's test images is the record's (the same weights)."""
    import torch

    from bench.models import ModelFileError, load_model
    from bench.sample import main as sample_main

    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run(grid(out, "ocm-dynamic", "--workers", "1", "--keep-models"), check=True, cwd=ROOT, env=env,
                   capture_output=True)
    (record_path,) = (out / "records").glob("*.json")
    record = json.loads(record_path.read_text())
    model = load_model(record_path)
    assert model.num_components == record["components"] >= 2
    from bench.evaluation.nll import nll_row
    from streams.stream import load_stream

    stream = load_stream("mini")
    tests = [stream.test_images(t, record["profile"]["eval_test_per_task"]) for t in range(len(stream.tasks))]
    again = torch.cat(nll_row(model, tests, record["profile"]["eval_k"], torch.Generator().manual_seed(9)).mixture)
    assert abs(float(again.mean()) - record["nll"]) < 1.0   # other IWAE draws; an untrained model is ~540
    assert sample_main([str(record_path), "--n", "16", "--out", str(tmp_path / "grid.png")]) == 0
    assert (tmp_path / "grid.png").read_bytes()[:4] == b"\x89PNG"
    assert sample_main([str(record_path), "--component", "1", "--out", str(tmp_path / "c1.png")]) == 0
    assert sample_main([str(record_path), "--component", "99", "--out", str(tmp_path / "x.png")]) == 2
    saved = torch.load(out / "models" / f"{record_path.stem}.pt", weights_only=True)   # plain data only
    assert set(saved) >= {"state_dict", "method", "components"}
    (out / "models" / f"{record_path.stem}.pt").unlink()
    with pytest.raises(ModelFileError, match="--keep-models"):
        load_model(record_path)


@pytest.mark.parametrize("executor", ["slurm", "ray"])
def test_slurm_and_ray_jobs_resume_from_the_checkpoint(executor, tmp_path):
    """A cell stopped mid-task leaves its checkpoint in the results directory; the job that runs it
    next on submitit's local cluster (as a requeued Slurm job would) or a local Ray cluster (as a
    retried task would) resumes from it, and the record is the uninterrupted one."""
    import importlib.util

    from bench.execution.store import ResultStore
    from bench.run import main

    if importlib.util.find_spec({"slurm": "submitit", "ray": "ray"}[executor]) is None:
        pytest.skip(f"{executor}'s package is not installed")
    out = tmp_path / "out"
    cell = expand_grid(["ocm"], ["mini"], [0], resolve_profile("smoke", ["max_train_per_task=128"]))[0]
    plain = numbers(run_cell(cell))
    with pytest.raises(Preempted):
        run_cell(cell, checkpoint=CheckpointPolicy(ResultStore(out).checkpoint_path(cell), stop_at=(2, 1)))
    flags = {"slurm": ["--executor", "slurm", "--slurm-cluster", "local"], "ray": ["--executor", "ray", "--workers", "1"]}
    assert main(["--methods", "ocm", "--streams", "mini", "--seeds", "0", "--profile", "smoke",
                 "--set", "max_train_per_task=128", "--no-progress", "--out", str(out), *flags[executor]]) == 0
    (record,) = ResultStore(out).records()
    assert record["resumed_from"][0]["task"] == 3 and numbers(record) == plain
