"""Fault injection: break the harness on purpose and count what was lost.

`python -m bench.faults --trials 20 --out reports/reliability.md` runs every experiment and writes
the report; the test suite runs the same experiments with fewer trials (tests/test_reliability.py).

- kill -9 of a runner at a random moment of a small grid, then a rerun: records lost, duplicated
  or corrupt (all must be 0), the rerun's exit status and time, and whether the final table equals
  that of an uninterrupted run;
- two runners on one directory, one of them killed: every cell must end with exactly one saved
  record, with no rerun;
- kill -9 of a runner on the Ray executor: no Ray process may stay alive, and a rerun on the
  local executor completes the grid;
- a record write that fails part-way (an OSError, as a full disk gives): no partial record, the
  cell reported failed and rerun by the next run;
- a worker killed by the kernel: its cell fails naming the signal, the rest of the grid finishes;
- corrupt record files: every command goes on, the file is moved aside, its cell is rerun;
- bad inputs: each refused before any cell runs, with exit status 2 and one line (bench.run's
  own table; then bench.check's, bench.report's and bench.status's);
- silently wrong: the cases that once gave a wrong number that looked right (a user's stream
  changed under its name, a setting spelt two ways, a copied record, a record without its NLL, a
  newer schema's record, a tampered cached classifier, a broken grid manifest), each a trial.
"""
from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from bench import REPO_ROOT
from bench.execution.store import ResultStore
from bench.metrics import primary_metric

GRID = ["--methods", "finetune,reservoir,ocm", "--streams", "mini", "--seeds", "0,1", "--profile", "smoke",
        "--no-progress", "--workers", "2"]
GRID_CELLS = 6
PRIMARY = primary_metric().name   # the number the audits compare


def runner(out: Path, grid: list[str] = GRID) -> subprocess.Popen:
    """`python -m bench.run GRID --out out` in its own process (stdout/stderr kept in out/../)."""
    log = open(f"{out}.log", "ab")
    return subprocess.Popen([sys.executable, "-m", "bench.run", *grid, "--out", str(out)], cwd=REPO_ROOT,
                            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


@dataclass
class Audit:
    """What a results directory holds after a fault and its recovery."""
    done: int = 0
    lost: int = 0            # cells of the grid without a finished record
    duplicated: int = 0      # cells whose record was saved more than once
    corrupt: int = 0         # record files that do not read as JSON records
    table: dict = field(default_factory=dict)   # (method, seed) -> NLL


def audit(out: Path, cells: int = GRID_CELLS) -> Audit:
    result = Audit()
    records = []
    for path in sorted((out / "records").glob("*.json")):
        try:
            records.append(json.loads(path.read_text()))
        except (ValueError, UnicodeDecodeError):
            result.corrupt += 1
    done = [r for r in records if r.get("status") == "done"]
    result.done = len(done)
    result.lost = cells - len({r["key"] for r in done})
    log = ResultStore(out).executions()
    saved = Counter(line.split()[0] for line in log if line.endswith(" saved"))
    result.duplicated = sum(n - 1 for n in saved.values() if n > 1)
    result.table = {(r["method"], r["seed"]): r[PRIMARY] for r in done}
    return result


def baseline(folder: Path) -> tuple[dict, float]:
    """The uninterrupted grid's table and wall time."""
    start = time.time()
    proc = runner(folder / "baseline")
    if proc.wait() != 0:
        raise RuntimeError(f"the uninterrupted grid failed; see {folder / 'baseline'}.log")
    return audit(folder / "baseline").table, time.time() - start


def kill_trial(folder: Path, index: int, at: float, reference: dict) -> dict:
    """Start the grid, kill -9 the runner `at` seconds in, rerun it; what the rerun left."""
    out = folder / f"kill-{index}"
    proc = runner(out)
    time.sleep(at)
    killed = proc.poll() is None
    if killed:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    before = audit(out)
    start = time.time()
    rerun = runner(out)
    status = rerun.wait()
    after = audit(out)
    return {"trial": index, "kill_at_s": round(at, 2), "killed_mid_grid": killed,
            "done_at_kill": before.done, "rerun_status": status, "rerun_s": round(time.time() - start, 1),
            "lost": after.lost, "duplicated": after.duplicated, "corrupt": after.corrupt + before.corrupt,
            "table_identical": after.table == reference}


def two_runner_trial(folder: Path, index: int, at: float, reference: dict) -> dict:
    """Two runners on one directory; one killed `at` seconds in; the other must finish the grid."""
    out = folder / f"two-{index}"
    a, b = runner(out), runner(out)
    time.sleep(at)
    killed = a.poll() is None
    if killed:
        os.kill(a.pid, signal.SIGKILL)
    a.wait()
    status = b.wait()
    after = audit(out)
    log = ResultStore(out).executions()
    saved = Counter(line.split()[0] for line in log if line.endswith(" saved"))
    return {"trial": index, "kill_at_s": round(at, 2), "killed_mid_grid": killed, "survivor_status": status,
            "cells_saved_once": sum(1 for n in saved.values() if n == 1), "lost": after.lost,
            "duplicated": after.duplicated, "corrupt": after.corrupt, "table_identical": after.table == reference}


def ray_processes() -> set[tuple[int, str]]:
    """(pid, start time) of every running Ray process: its binaries and scripts, and the workers
    and agents that retitle themselves `ray::...`."""
    from bench.execution.reaper import process_table

    found = set()
    for pid, (_, start, state) in process_table().items():
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        if state != "Z" and (cmd.startswith(b"ray::") or b"site-packages/ray/" in cmd):
            found.add((pid, start))
    return found


def ray_kill_trial(folder: Path, index: int, after: float, reference: dict, grid: list[str] = GRID,
                   cells: int = GRID_CELLS) -> dict:
    """The grid on the Ray executor; `kill -9` of the runner `after` seconds past its first claim;
    the Ray processes still alive 20 s later; then a rerun on the local executor."""
    out = folder / f"ray-kill-{index}"
    before = ray_processes()
    proc = runner(out, grid + ["--executor", "ray"])
    deadline = time.time() + 180
    while not any((out / "claims").glob("*.claim")) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.1)
    time.sleep(after)
    started = len(ray_processes() - before)
    killed = proc.poll() is None
    if killed:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.time() + 20
    while ray_processes() - before and time.time() < deadline:
        time.sleep(0.2)
    left = ray_processes() - before
    rerun = runner(out, grid)
    status = rerun.wait()
    after_rerun = audit(out, cells)
    return {"trial": index, "kill_after_first_claim_s": round(after, 2), "killed_mid_grid": killed,
            "ray_processes_at_kill": started, "ray_processes_left": len(left), "rerun_status": status,
            "lost": after_rerun.lost, "duplicated": after_rerun.duplicated, "corrupt": after_rerun.corrupt,
            "table_identical": after_rerun.table == reference}


def in_process(args: list[str]) -> tuple[int, str]:
    """bench.run's exit status and stderr, run in this process."""
    from bench.run import main

    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        status = main(args)
    return status, err.getvalue()


def failed_write(folder: Path) -> dict:
    """The record writer fails part-way (half the JSON written, then ENOSPC): no partial record
    stays, the cell is reported failed, and the next run reruns and saves it."""
    import bench.execution.store

    out = folder / "failed-write"
    grid = ["--methods", "finetune", "--streams", "mini", "--seeds", "0", "--profile", "smoke",
            "--no-progress", "--workers", "1", "--out", str(out)]
    real_dump = bench.execution.store.json.dump

    def half_then_full_disk(obj, f, **kwargs):
        if "status" not in obj:                    # only record writes fail
            return real_dump(obj, f, **kwargs)
        text = json.dumps(obj, **kwargs)
        f.write(text[:len(text) // 2])
        f.flush()
        raise OSError(28, "No space left on device")

    bench.execution.store.json.dump = half_then_full_disk
    try:
        status, err = in_process(grid)
    finally:
        bench.execution.store.json.dump = real_dump
    leftovers = [p.name for p in (out / "records").iterdir()] if (out / "records").exists() else []
    rerun, _ = in_process(grid)
    return {"status": status, "message": last_line(err, "finetune"), "files_left": leftovers,
            "rerun_status": rerun, "done_after_rerun": audit(out, 1).done}


def killed_worker(folder: Path) -> dict:
    """One cell's worker is killed by SIGKILL (as the out-of-memory killer does) mid-cell."""
    import bench.evaluation.cell

    out = folder / "killed-worker"
    real = bench.evaluation.cell.train_and_evaluate

    def dies_for_reservoir(cell, *args, **kwargs):
        if cell.method == "reservoir":
            os.kill(os.getpid(), signal.SIGKILL)
        return real(cell, *args, **kwargs)

    bench.evaluation.cell.train_and_evaluate = dies_for_reservoir   # forked workers inherit it
    try:
        status, err = in_process(["--methods", "finetune,reservoir,ocm", "--streams", "mini", "--seeds", "0",
                                  "--profile", "smoke", "--no-progress", "--workers", "2", "--out", str(out)])
    finally:
        bench.evaluation.cell.train_and_evaluate = real
    return {"status": status, "message": last_line(err, "reservoir/"), "others_done": audit(out, 3).done,
            "claims_left": len(list((out / "claims").glob("*.claim")))}


def corrupt_records(folder: Path) -> list[dict]:
    """A truncated record file, then each command: no traceback, the file moved aside, a warning."""
    from bench.check import main as check_main
    from bench.report import main as report_main
    from bench.run import main as run_main
    from bench.status import main as status_main

    out = folder / "corrupt"
    grid = ["--methods", "finetune,reservoir", "--streams", "mini", "--seeds", "0", "--profile", "smoke",
            "--no-progress", "--workers", "1", "--out", str(out)]
    in_process(grid)
    reference = folder / "corrupt-reference.csv"
    check_main([str(out), "--reference", str(reference), "--update"])
    rows = []
    commands = {"bench.report": lambda: report_main([str(out)]), "bench.status": lambda: status_main([str(out)]),
                "bench.check": lambda: check_main([str(out), "--reference", str(reference)]),
                "bench.run": lambda: run_main(grid)}
    path = next((out / "records").glob("*reservoir*.json"))
    good = path.read_text()
    for name, command in commands.items():
        path.write_text(good[:100])   # truncated, as a full disk leaves it
        err = io.StringIO()
        try:
            with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
                status = command()
            crashed = ""
        except Exception as exc:  # noqa: BLE001 - what we are checking for
            status, crashed = None, f"{type(exc).__name__}: {exc}"
        rows.append({"command": name, "status": status, "crashed": crashed or "no",
                     "warning": last_line(err.getvalue(), "corrupt record"),
                     "moved_aside": len(list((out / "records" / "corrupt").glob("*.json")))})
    for row in rows:
        row["cell_restored_by_this_command"] = False
    rows[-1]["cell_restored_by_this_command"] = audit(out, 2).done == 2   # bench.run reran it
    return rows


BAD_INPUTS = [
    ("negative seed", ["--seeds", "-1"]),
    ("budget below its minimum", ["--set", "reservoir.budget=-5"]),
    ("budget not an integer", ["--set", "reservoir.budget=abc"]),
    ("float setting not a number", ["--set", "ocm.lambda1=x"]),
    ("boolean setting not true/false", ["--set", "first-k.train_incoming=maybe"]),
    ("capacity below its minimum", ["--set", "ocm.stm_capacity=0"]),
    ("sample count below its minimum", ["--set", "eval_k=0"]),
    ("FID sample count below its minimum", ["--set", "fid_samples=1"]),
    ("learning rate not positive", ["--set", "lr=0"]),
    ("workers below 1", ["--workers", "0"]),
    ("unknown FID features (--set)", ["--set", "fid_features=foo"]),
    ("unknown method", ["--methods", "nope"]),
    ("unknown method setting", ["--set", "ocm.nope=1"]),
    ("unknown stream", ["--streams", "nope"]),
    ("unknown profile setting", ["--set", "nope=1"]),
    ("matched budget without a reference", ["--methods", "reservoir[budget=match:ocm]"]),
    ("--out that cannot be created", ["--out", "{file}/results"]),
    ("stream data present but failing its checksum", ["--streams", "split-mnist", "--data-dir", "{baddata}"]),
    ("misspelt method", ["--methods", "ocm-dynamc"]),
    ("a user's method without its --import", ["--methods", "window"]),
    ("misspelt method setting", ["--set", "ocm.lamda1=0.5"]),
    ("choice setting not one of its choices", ["--set", "curl.replay_mix=both"]),
    ("FID samples below the extractor's features", ["--set", "fid_features=classifier", "--set", "fid_samples=100"]),
    ("--import of a file that does not exist", ["--import", "{file}.py"]),
    ("learning rate NaN", ["--set", "lr=nan"]),
    ("learning rate infinite", ["--set", "lr=inf"]),
    ("Adam beta of 1", ["--set", "betas=0.5:1"]),
    ("seed beyond 2^32 - 1", ["--seeds", "4294967296"]),
    ("a budget no memory holds (10^12 images)", ["--methods", "reservoir[budget=1000000000000]"]),
    ("a setting of a method the grid does not run", ["--methods", "finetune", "--set", "reservoir.budget=100"]),
    ("the same key by --set and --sweep", ["--set", "epochs=2", "--sweep", "epochs=1,3"]),
    ("the same key given twice", ["--set", "epochs=2", "--set", "epochs=3"]),
    ("a variant giving a setting twice", ["--methods", "reservoir[budget=100,budget=200]"]),
    ("a sweep value given twice (1 and 01)", ["--sweep", "epochs=1,01"]),
    ("an empty --out", ["--out", ""]),
    ("a budget matched to its own method", ["--methods", "reservoir[budget=match:reservoir]"]),
    ("a stream a --import registers with a name that breaks the rule", ["--import", "{badname}"]),
]

# The other commands' refusals: (command, what, arguments); {results} is a finished grid of
# finetune on seeds 0 and 1, {reference} its reference, {one_seed} the grid without seed 1,
# {no_cell} without finetune's cells, {file} a plain file, {missing} a path that does not exist.
OTHER_BAD_INPUTS = [
    ("bench.check", "tolerance of an unknown metric (a typo)",
     ["{results}", "--reference", "{reference}", "--tolerance", "nl=2"]),
    ("bench.check", "tolerance not a number", ["{results}", "--reference", "{reference}", "--tolerance", "nll=abc"]),
    ("bench.check", "results lacking a seed of the reference", ["{one_seed}", "--reference", "{reference}"]),
    ("bench.check", "results lacking a cell of the reference", ["{no_cell}", "--reference", "{reference}"]),
    ("bench.check", "results directory that does not exist", ["{missing}", "--reference", "{reference}"]),
    ("bench.check", "reference file that does not exist", ["{results}", "--reference", "{missing}.csv"]),
    ("bench.report", "results directory that does not exist", ["{missing}"]),
    ("bench.report", "--out that is a directory", ["{results}", "--out", "{results}"]),
    ("bench.report", "--out's suffix contradicting --format", ["{results}", "--out", "{scratch}/t.tex",
                                                              "--format", "markdown"]),
    ("bench.report", "--out's suffix naming no format", ["{results}", "--out", "{scratch}/t.pdf"]),
    ("bench.status", "results directory that does not exist", ["{missing}"]),
    ("bench.status", "a directory that is not a results directory", ["{scratch}"]),
]


def bad_inputs(folder: Path) -> list[dict]:
    folder.mkdir(parents=True, exist_ok=True)
    blocker = folder / "a-file"
    blocker.write_text("not a directory")
    bad_data = folder / "bad-data"
    write_bad_mnist(bad_data / "mnist")
    bad_name = folder / "careless_names.py"
    bad_name.write_text("from streams import register_stream\nregister_stream('my stream', ['mini'], [[0, 1]])\n")
    rows = []
    for what, extra in BAD_INPUTS:
        out = folder / "bad-input-results"
        args = ["--methods", "reservoir", "--streams", "mini", "--seeds", "0", "--profile", "smoke",
                "--no-progress", "--workers", "1", "--out", str(out)]
        args += [a.format(file=blocker, baddata=bad_data, badname=bad_name) for a in extra]
        status, err = in_process(args)
        ran = (out / "records").exists() and any((out / "records").glob("*.json"))
        rows.append({"input": what, "args": " ".join(extra).format(file="FILE", baddata="DIR", badname="FILE.py"),
                     "status": status, "cells_run": ran, "message": last_line(err, "error:")})
    return rows


def other_bad_inputs(folder: Path) -> list[dict]:
    """OTHER_BAD_INPUTS, each run in this process: exit status, stdout/stderr's last error line."""
    import shutil

    from bench.check import main as check_main
    from bench.report import main as report_main
    from bench.status import main as status_main

    folder.mkdir(parents=True, exist_ok=True)
    results, reference = folder / "grid", folder / "grid-reference.csv"
    in_process(["--methods", "finetune,reservoir", "--streams", "mini", "--seeds", "0,1", "--profile", "smoke",
                "--no-progress", "--workers", "1", "--out", str(results)])
    with contextlib.redirect_stdout(io.StringIO()):
        check_main([str(results), "--reference", str(reference), "--update"])
    places = {"results": results, "reference": reference, "one_seed": folder / "one-seed",
              "no_cell": folder / "no-cell", "file": folder / "a-file", "missing": folder / "not-there",
              "scratch": folder / "scratch"}
    for name, drop in (("one_seed", "__seed1__"), ("no_cell", "__finetune__")):
        shutil.copytree(results, places[name])
        for path in (places[name] / "records").glob(f"*{drop}*.json"):
            path.unlink()
    places["file"].write_text("not a directory")
    places["scratch"].mkdir(exist_ok=True)
    commands = {"bench.check": check_main, "bench.report": report_main, "bench.status": status_main}
    rows = []
    for command, what, args in OTHER_BAD_INPUTS:
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            status = commands[command]([a.format(**places) for a in args])
        shown = " ".join(a.format(**{k: k.upper() for k in places}) for a in args)
        rows.append({"command": command, "input": what, "args": shown, "status": status,
                     "message": last_line(err.getvalue(), "error:")})
    return rows


USER_STREAM = """from streams import register_stream
from streams.datasets import NpzDataset, register_dataset
register_dataset(NpzDataset("faults-data", classes=4, path={path!r}, sha256={sha!r}))
register_stream("faults-stream", ["faults-data"], {tasks!r})
"""


def write_user_stream(folder: Path, seed: int, tasks=((0, 1), (2, 3)), per_class=(40, 10)) -> Path:
    """A user's stream module over a small .npz of its own (seeded grey blobs, 4 classes)."""
    import hashlib

    import numpy as np

    rng = np.random.default_rng(seed)
    arrays = {}
    for split, n in zip(("train", "test"), per_class):
        y = np.repeat(np.arange(4), n)
        arrays[f"x_{split}"] = (rng.random((len(y), 28, 28)) * 255 * (y[:, None, None] % 2 + 1) / 2).astype(np.uint8)
        arrays[f"y_{split}"] = y
    data = folder / f"faults-data-{seed}-{per_class[1]}.npz"
    np.savez(data, **arrays)
    module = folder / "faults_stream.py"
    module.write_text(USER_STREAM.format(path=str(data), sha=hashlib.sha256(data.read_bytes()).hexdigest(),
                                         tasks=[list(t) for t in tasks]))
    return module


def fresh_process(args: list[str], folder: Path) -> tuple[int, str]:
    """`python -m bench.run ARGS` in a new process (a user's module changed between runs)."""
    done = subprocess.run([sys.executable, "-m", "bench.run", *args], cwd=REPO_ROOT, capture_output=True,
                          text=True, env={**os.environ, "BENCH_DATA_DIR": str(folder / "data")})
    return done.returncode, done.stderr


def silently_wrong(folder: Path) -> list[dict]:
    """The cases that once gave a wrong number that looked right, or lost data, each a trial: what
    should happen, what happened. See tests/test_silently_wrong.py for the same cases as tests."""
    from bench.execution.store import ResultStore

    folder.mkdir(parents=True, exist_ok=True)
    rows = []

    def row(case, expected, observed, ok):
        rows.append({"case": case, "expected": expected, "observed": observed, "ok": bool(ok)})

    # 1. a user's stream regenerated under its name
    out = folder / "user-stream"
    base = ["--methods", "finetune", "--streams", "faults-stream", "--seeds", "0", "--profile", "smoke",
            "--no-progress", "--workers", "1", "--out", str(out), "--import", str(folder / "faults_stream.py")]
    nlls = []
    for seed in (0, 1):
        write_user_stream(folder, seed)
        status, err = fresh_process(base, folder)
        nlls.append(sorted(r.metric(PRIMARY) for r in ResultStore(out).records()))
    row("a user's .npz regenerated under the same stream name", "a new cell: trained again, a new NLL",
        f"records {len(nlls[1])}, NLLs {[round(x, 2) for x in nlls[1]]}", len(nlls[1]) == 2 and len(set(nlls[1])) == 2)
    # 2. a task whose class has no test image
    write_user_stream(folder, 2, per_class=(40, 0))
    status, err = fresh_process([*base[:-1], str(folder / "faults_stream.py"), "--out", str(folder / "holes")], folder)
    row("a stream whose tasks have no test image", "exit 2 before any cell, one line",
        f"exit {status}: {last_line(err, 'error:')[:90]}", status == 2 and "Traceback" not in err)
    # 3. the same setting spelt two ways
    out = folder / "spelling"
    grid = ["--methods", "finetune", "--streams", "mini", "--seeds", "0", "--profile", "smoke", "--no-progress",
            "--workers", "1", "--out", str(out)]
    in_process([*grid, "--set", "epochs=01"])
    status, err = in_process([*grid, "--set", "epochs=1"])
    row("epochs=01, then epochs=1", "one cell: the second run finds it done", last_line(err, "cells ("),
        "(1 already done)" in err)
    # 4. a seed-0 record copied to seed 1's name; a finished record without its NLL
    out = folder / "copied"
    grid = ["--methods", "finetune", "--streams", "mini", "--seeds", "0,1", "--profile", "smoke", "--no-progress",
            "--workers", "1", "--out", str(out)]
    in_process(grid)
    seed0, seed1 = (next((out / "records").glob(f"*__seed{s}__*.json")) for s in (0, 1))
    seed1.write_text(seed0.read_text())
    status, err = in_process(grid)
    fresh = json.loads(seed1.read_text())
    row("a seed-0 record copied to seed 1's file name", "moved aside; seed 1 trained again",
        f"seed in its file {fresh['seed']}; {last_line(err, 'moved to')[:60]}...", fresh["seed"] == 1)
    data = json.loads(seed0.read_text())
    seed0.write_text(json.dumps({k: v for k, v in data.items() if k != PRIMARY}))
    status, err = in_process(grid)
    row("a finished record without its NLL", "moved aside; the cell trained again",
        f"NLL back: {json.loads(seed0.read_text()).get(PRIMARY) == data[PRIMARY]}",
        json.loads(seed0.read_text()).get(PRIMARY) == data[PRIMARY])
    # 5. a record of a newer schema where a cell's record goes
    newer = {**data, "schema_version": 99}
    seed0.write_text(json.dumps(newer))
    in_process(grid)
    kept = list((out / "records" / "newer").glob("*.json"))
    row("a newer harness's record in a cell's place", "kept in records/newer/, not overwritten",
        f"{len(kept)} kept", len(kept) == 1 and json.loads(kept[0].read_text())["schema_version"] == 99)
    # 6. a tampered cached FID classifier
    row(*tampered_classifier(folder))
    # 7. a broken grid manifest
    from bench.status import main as status_main

    (out / "grid.json").write_text("[]")
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()) as printed:
        status = status_main([str(out)])
    row("grid.json holding []", "rebuilt from the records and claims, no traceback",
        f"exit {status}: {printed.getvalue().splitlines()[0]}", status == 0 and "rebuilt" in err.getvalue())
    return rows


def tampered_classifier(folder: Path) -> tuple:
    """A classifier cached for a user's stream, one byte of its weights flipped: refused, rebuilt."""
    import torch

    from bench.evaluation.features import ClassifierRecipe, classifier_cache_path, classifier_features
    from methods.core.user_methods import import_source
    from streams.stream import load_stream

    write_user_stream(folder, 3, per_class=(300, 150))
    import_source(str(folder / "faults_stream.py"))
    stream = load_stream("faults-stream", folder / "data")
    recipe = ClassifierRecipe(steps=20)
    first = classifier_features(stream, folder / "cache", recipe)
    path = classifier_cache_path(stream, folder / "cache", recipe)
    saved = torch.load(path, weights_only=True)
    weights = saved["state_dict"]["fc.weight"]
    weights.view(-1)[0] = -weights.view(-1)[0] + 1
    torch.save(saved, path)
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        again = classifier_features(stream, folder / "cache", recipe)
    same = again.info["weights_sha256"] == first.info["weights_sha256"]
    return ("a cached FID classifier with one weight changed", "refused (its hash), rebuilt the same",
            f"{last_line(err.getvalue(), 'cannot be used')[:70]}...; rebuilt identical: {same}",
            "cannot be used" in err.getvalue() and same)


def write_bad_mnist(folder: Path) -> None:
    """MNIST-format files of the right names and shapes whose content is not MNIST's (so their
    checksums fail)."""
    import numpy as np

    from streams.idx import write_idx

    folder.mkdir(parents=True, exist_ok=True)
    labels = np.repeat(np.arange(10, dtype=np.uint8), 3)
    for prefix in ("train", "t10k"):
        write_idx(folder / f"{prefix}-images-idx3-ubyte", np.zeros((30, 28, 28), dtype=np.uint8))
        write_idx(folder / f"{prefix}-labels-idx1-ubyte", labels)


def last_line(text: str, containing: str) -> str:
    lines = [line.strip() for line in text.splitlines() if containing in line]
    return lines[-1] if lines else ""


# A cell long enough to be killed inside, with tasks longer than the checkpoint interval (`mini`,
# smoke, 800 images a task, E = 4: ~15 s on a core for ocm), checkpointed every
# RESUME_INTERVAL_MINUTES at an incoming-batch boundary (and after every task). The kill trials
# take the shipped methods in turn, one method per trial.
RESUME_CELL = ["--streams", "mini", "--seeds", "0", "--profile", "smoke", "--set", "max_train_per_task=800",
               "--set", "epochs=4", "--no-progress", "--workers", "1"]


def resume_grid(method: str) -> list[str]:
    return ["--methods", method, *RESUME_CELL]



RESUME_INTERVAL_MINUTES = 0.02   # 1.2 s
SIGTERM_GRID = ["--methods", "ocm,reservoir", "--streams", "mini", "--seeds", "0", "--profile", "smoke",
                "--set", "max_train_per_task=800", "--set", "epochs=4", "--no-progress", "--workers", "2"]
RESUME_TIMES = ("train_seconds", "eval_seconds", "wall_seconds", "finished_at", "resumed_from")


def cell_numbers(out: Path) -> dict:
    """{record name: the record without its times}: what a resumed record must equal."""
    return {p.stem: {k: v for k, v in json.loads(p.read_text()).items() if k not in RESUME_TIMES}
            for p in sorted((out / "records").glob("*.json"))}


def cell_started(proc, out: Path, timeout: float = 300.0) -> float | None:
    """When a worker of `proc` began a cell (its 'started' line in executions.log), waiting for it;
    None if the runner ended first."""
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        started = [float(line.split()[-2]) for line in ResultStore(out).executions() if line.endswith(" started")]
        if started:
            return started[0]
        time.sleep(0.02)
    return None


def cell_seconds(out: Path) -> float:
    """From a cell's 'started' to its 'saved' line in an uninterrupted run's executions.log."""
    times = {line.split()[-1]: float(line.split()[-2]) for line in ResultStore(out).executions()}
    return times["saved"] - times["started"]


def resume_kill_trial(folder: Path, index: int, method: str, at: float, whole: tuple[float, dict]) -> dict:
    """kill -9 the runner `at` seconds after its one cell (of `method`) started, rerun: the compute
    thrown away (from the last checkpoint's write, or the cell's start, to the kill), and whether
    the record equals the uninterrupted one (`whole`: its seconds and numbers)."""
    out = folder / f"resume-kill-{index}"
    grid = [*resume_grid(method), "--checkpoint-minutes", str(RESUME_INTERVAL_MINUTES)]
    seconds, reference = whole
    proc = runner(out, grid)
    started = cell_started(proc, out) or time.time()
    time.sleep(max(0.0, started + at - time.time()))
    alive = proc.poll() is None
    if alive:
        os.kill(proc.pid, signal.SIGKILL)
    killed_at = time.time()
    proc.wait()
    # inside the cell: killed before its record was written (a runner printing its table is not)
    killed = alive and not list((out / "records").glob("*.json"))
    checkpoints = list((out / "checkpoints").glob("*.pt"))
    last = max((p.stat().st_mtime for p in checkpoints), default=None)
    thrown = killed_at - (last if last is not None else started) if killed else 0.0
    rerun = runner(out, grid)
    status = rerun.wait()
    records = [json.loads(p.read_text()) for p in (out / "records").glob("*.json")]
    after = audit(out, cells=1)
    return {"trial": index, "method": method, "cell_s": round(seconds, 1), "kill_at_s_in_cell": round(at, 2),
            "killed_in_cell": killed,
            "checkpoint_at_kill": bool(checkpoints), "thrown_away_s": round(thrown, 2), "rerun_status": status,
            "resumed": bool(records and records[0].get("resumed_from")), "lost": after.lost,
            "duplicated": after.duplicated, "corrupt": after.corrupt, "record_identical": cell_numbers(out) == reference}


def sigterm_trial(folder: Path, index: int, at: float, reference: dict) -> dict:
    """SIGTERM to a runner with two workers `at` seconds in: exit 143, each running cell checkpointed;
    the rerun finishes them, records equal the uninterrupted ones."""
    out = folder / f"sigterm-{index}"
    grid = [*SIGTERM_GRID, "--checkpoint-minutes", "0"]
    proc = runner(out, grid)
    started = cell_started(proc, out) or time.time()
    time.sleep(max(0.0, started + at - time.time()))
    running = proc.poll() is None
    if running:
        proc.send_signal(signal.SIGTERM)
    status = proc.wait()
    preempted = sum(line.endswith(" preempted") for line in ResultStore(out).executions())
    rerun = runner(out, grid)
    rerun_status = rerun.wait()
    after = audit(out, cells=2)
    return {"trial": index, "sigterm_at_s_in_cell": round(at, 2), "runner_status": status, "cells_preempted": preempted,
            "rerun_status": rerun_status, "lost": after.lost, "duplicated": after.duplicated,
            "corrupt": after.corrupt, "records_identical": cell_numbers(out) == reference}


def checkpoint_sizes(folder: Path) -> list[dict]:
    """Each shipped method's checkpoint after task 2 of `mini` (smoke profile, 800 images a task),
    in kB: what a checkpoint costs on disk (memories of images dominate)."""
    import dataclasses

    from bench.evaluation.cell import run_cell
    from bench.evaluation.checkpoint import CheckpointPolicy, Preempted
    from bench.planning.grid import METHODS, expand_grid
    from bench.planning.profiles import resolve_profile

    profile = dataclasses.replace(resolve_profile("smoke"), max_train_per_task=800)
    rows = []
    for method in METHODS:
        path = folder / "sizes" / f"{method}.pt"
        try:
            run_cell(expand_grid([method], ["mini"], [0], profile)[0],
                     checkpoint=CheckpointPolicy(path, every_seconds=float("inf"), stop_at=(1, None)))
        except Preempted:
            pass
        rows.append({"method": method, "checkpoint_kB": round(path.stat().st_size / 1e3) if path.exists() else None})
    return rows


def resume(folder: Path, trials: int = 20, seed: int = 0) -> dict:
    """The resume section: kill -9 inside a cell (`trials`), SIGTERM (trials / 4), checkpoint sizes."""
    from bench.planning.grid import METHODS

    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    wholes: dict[str, tuple[float, dict]] = {}

    def whole(method: str) -> tuple[float, dict]:
        """The method's uninterrupted cell: its seconds and numbers, run once."""
        if method not in wholes:
            out = folder / f"resume-whole-{method}"
            if runner(out, resume_grid(method)).wait() != 0:
                raise RuntimeError(f"the uninterrupted {method} cell failed; see {out}.log")
            wholes[method] = (cell_seconds(out), cell_numbers(out))
        return wholes[method]

    methods = list(METHODS)
    kills = []
    for i in range(trials):
        method = methods[i % len(methods)]
        kills.append(resume_kill_trial(folder, i, method, rng.uniform(0.0, whole(method)[0]), whole(method)))
    seconds = whole("ocm")[0]
    if runner(folder / "sigterm-whole", SIGTERM_GRID).wait() != 0:
        raise RuntimeError(f"the uninterrupted grid failed; see {folder / 'sigterm-whole'}.log")
    sigterm_reference = cell_numbers(folder / "sigterm-whole")
    terms = [sigterm_trial(folder, i, rng.uniform(0.0, seconds), sigterm_reference) for i in range(max(1, trials // 4))]
    return {"interval_s": RESUME_INTERVAL_MINUTES * 60, "kill_trials": kills,
            "sigterm_trials": terms, "checkpoint_sizes": checkpoint_sizes(folder)}


def run_all(trials: int, folder: Path, seed: int = 0) -> dict:
    rng = random.Random(seed)
    reference, seconds = baseline(folder)
    kills = [kill_trial(folder, i, rng.uniform(0.5, seconds), reference) for i in range(trials)]
    pairs = [two_runner_trial(folder, i, rng.uniform(0.5, seconds), reference) for i in range(max(1, trials // 4))]
    rays = ([ray_kill_trial(folder, i, rng.uniform(0.0, 3.0), reference) for i in range(max(1, trials // 5))]
            if importlib.util.find_spec("ray") is not None else [])
    return {"folder": str(folder), "baseline_seconds": round(seconds, 1), "kill_trials": kills,
            "two_runner_trials": pairs, "ray_kill_trials": rays,
            "failed_write": failed_write(folder), "killed_worker": killed_worker(folder),
            "corrupt_records": corrupt_records(folder), "bad_inputs": bad_inputs(folder),
            "silently_wrong": silently_wrong(folder / "silently-wrong"),
            "other_bad_inputs": other_bad_inputs(folder / "other-bad-inputs"),
            "resume": resume(folder / "resume", trials, seed)}


# The sections `--only` can rerun on their own (the kill trials need the whole run).
SECTIONS = {"failed_write": failed_write, "killed_worker": killed_worker, "corrupt_records": corrupt_records,
            "bad_inputs": bad_inputs, "silently_wrong": lambda folder: silently_wrong(folder / "silently-wrong"),
            "other_bad_inputs": lambda folder: other_bad_inputs(folder / "other-bad-inputs"),
            "resume": lambda folder: resume(folder / "resume")}


def rerun_sections(names: list[str], out: Path) -> int:
    """Rerun `names` into the results of the report's .json (kept for the other sections) and
    rewrite the report; each section's harness version and date are recorded in `ran`."""
    from bench import HARNESS_VERSION

    unknown = [n for n in names if n not in SECTIONS]
    if unknown:
        print(f"error: unknown section {', '.join(unknown)}; valid: {', '.join(SECTIONS)}", file=sys.stderr)
        return 2
    saved = out.with_suffix(".json")
    results = json.loads(saved.read_text()) if saved.exists() else {}
    if "kill_trials" not in results:
        print(f"error: {saved} holds no full run to keep: run without --only first", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="bench-faults-") as folder:
        for name in names:
            results[name] = SECTIONS[name](Path(folder))
            results.setdefault("ran", {})[name] = f"harness {HARNESS_VERSION}, {time.strftime('%Y-%m-%d')}"
            results[name] = json.loads(json.dumps(results[name], default=str).replace(folder, "DIR"))
    write_keeping_reproducibility(out, markdown(results, len(results["kill_trials"])))
    saved.write_text(json.dumps(results, indent=1, default=str))
    print(f"wrote {out}", file=sys.stderr)
    return 1 if any(not r["ok"] for r in results.get("silently_wrong", [])) else 0


def markdown(results: dict, trials: int) -> str:
    from tabulate import tabulate

    kills, pairs = results["kill_trials"], results["two_runner_trials"]

    def table(rows):
        return tabulate([list(r.values()) for r in rows], headers=list(rows[0]), tablefmt="github")

    def total(rows, key):
        return sum(r[key] for r in rows)

    lines = [
        "# Reliability: fault injection", "",
        f"Made by `python -m bench.faults --trials {trials} --out reports/reliability.md` on the 2-core CPU "
        f"machine. The grid is {' '.join(GRID)} ({GRID_CELLS} cells; {results['baseline_seconds']} s "
        "uninterrupted, process start and stream loading included).",
        *(["Sections rerun since with `--only`: "
           + "; ".join(f"{name} ({when})" for name, when in results["ran"].items()) + "."] if results.get("ran") else []),
        "",
        "## kill -9 of the runner, then a rerun", "",
        f"{len(kills)} trials, each killing the runner at a uniformly random moment of the grid's "
        f"uninterrupted duration. Records lost: **{total(kills, 'lost')}**, duplicated: "
        f"**{total(kills, 'duplicated')}**, corrupt: **{total(kills, 'corrupt')}**; reruns exiting 0: "
        f"**{sum(r['rerun_status'] == 0 for r in kills)}/{len(kills)}**; final table identical to the "
        f"uninterrupted run's: **{sum(r['table_identical'] for r in kills)}/{len(kills)}**. The workers die "
        "with their runner and the rerun takes their claims over at once (no 60 s wait).", "",
        table(kills), "",
        "## Two runners on one directory, one killed", "",
        f"{len(pairs)} trials. Cells saved exactly once: "
        f"**{total(pairs, 'cells_saved_once')}/{GRID_CELLS * len(pairs)}**; the survivor finished the grid "
        f"(exit 0) in **{sum(r['survivor_status'] == 0 for r in pairs)}/{len(pairs)}** trials.", "",
        table(pairs), "",
        *ray_section(results.get("ray_kill_trials", [])),
        "## A record write that fails part-way (ENOSPC after half the JSON)", "",
        table([results["failed_write"]]), "",
        "## A worker killed by SIGKILL mid-cell", "",
        table([results["killed_worker"]]), "",
        "## A corrupt (truncated) record file, then each command", "",
        "The record is truncated again before each command. None crashes; each moves the file aside "
        "with one warning. bench.status then exits 1 (the moved record's cell is pending) and "
        "bench.check 2 (the cell is missing against the reference: the results cannot be checked), "
        "as they should; bench.run reruns it.", "",
        table(results["corrupt_records"]), "",
        "## Bad inputs (each refused before any cell runs)", "",
        table(results["bad_inputs"]), "",
        *(["## Silently wrong: cases that once gave a wrong number that looked right", "",
           f"Each case is a trial: what should happen, what happened. All as expected: "
           f"**{sum(r['ok'] for r in results['silently_wrong'])}/{len(results['silently_wrong'])}** "
           "(the same cases and more are tests: tests/test_silently_wrong.py).", "",
           table(results["silently_wrong"]), ""] if results.get("silently_wrong") else []),
        *resume_section(results.get("resume")),
        *(["## Bad inputs of bench.check, bench.report and bench.status", "",
           "Each refused with exit status 2 and one line saying what to do (a regression is exit 1).", "",
           table(results["other_bad_inputs"]), ""] if results.get("other_bad_inputs") else []),
    ]
    return "\n".join(lines).replace(results.get("folder", "\0"), "DIR")   # the run's scratch folder


def resume_section(results: dict | None) -> list[str]:
    """Cells that survive preemption: the kill and SIGTERM trials, the checkpoints' sizes."""
    from tabulate import tabulate

    if not results:
        return []
    kills, terms = results["kill_trials"], results["sigterm_trials"]
    thrown = [r["thrown_away_s"] for r in kills if r["killed_in_cell"]]

    def table(rows):
        return tabulate([list(r.values()) for r in rows], headers=list(rows[0]), tablefmt="github")

    return ["## Cells that survive preemption: kill -9 and SIGTERM inside a cell", "",
            f"{len(kills)} trials taking the shipped methods in registry order, one method per trial, each one cell (--methods METHOD "
            f"{' '.join(RESUME_CELL)}; cell_s: from its start to its record, uninterrupted) checkpointed every "
            f"{results['interval_s']:.1f} s at an incoming-batch boundary (task-free methods) and after every task; "
            "each trial kills the runner with -9 at a uniformly random moment of the cell (after its worker started "
            "it) and reruns. Resumed from a checkpoint: "
            f"**{sum(r['resumed'] for r in kills)}/{sum(r['killed_in_cell'] for r in kills)}** kills; records lost "
            f"**{sum(r['lost'] for r in kills)}**, duplicated **{sum(r['duplicated'] for r in kills)}**; every "
            "resumed record equal to the uninterrupted one in every number and matrix: "
            f"**{sum(r['record_identical'] for r in kills)}/{len(kills)}**. Compute thrown away per kill (from the "
            f"last checkpoint's write, or the cell's start, to the kill): mean **{sum(thrown) / max(1, len(thrown)):.2f} "
            f"s**, max **{max(thrown, default=0):.2f} s**, against the {results['interval_s']:.1f} s interval (before "
            "the first checkpoint, the cell's set-up and first segment are lost; a task's evaluation, during which "
            "none is written, adds to it; a method that trains on whole tasks is checkpointed at task boundaries "
            "only, and loses up to a task).", "",
            table(kills), "",
            f"SIGTERM ({' '.join(SIGTERM_GRID)}, checkpoints at task boundaries and on the signal): the runner "
            f"exits 143 in **{sum(r['runner_status'] == 143 for r in terms)}/{len(terms)}** trials (a signal that "
            "arrives after the grid's last record, while the runner exits, ends it as SIGTERM does: -15), its "
            f"workers checkpoint at their next incoming batch and exit 75 ({sum(r['cells_preempted'] for r in terms)} "
            "cells preempted in all); the reruns finish with records equal to the uninterrupted ones in "
            f"**{sum(r['records_identical'] for r in terms)}/{len(terms)}**.", "",
            table(terms), "",
            "Disk: each method's checkpoint after task 2 of mini (smoke profile, 800 images a task), in kB. The "
            "paper's VAE and Adam's two moments are 5.2 MB (0.43M parameters x 3 x 4 bytes); each mixture "
            "component, expert or teacher copy adds its own; stored images add N x 3.1 kB (float32 28 x 28), so "
            "OCM's full LTM (2,560) adds about 8 MB and a 3,000-image reservoir about 9.4 MB at the Table-1 "
            "setting.", "",
            table(results["checkpoint_sizes"]), ""]


def ray_section(rays: list[dict]) -> list[str]:
    from tabulate import tabulate

    if not rays:
        return ["## kill -9 of a Ray-executor runner", "", "Not run: ray is not installed.", ""]
    return ["## kill -9 of a Ray-executor runner, then a rerun on the local executor", "",
            f"{len(rays)} trials, each killing the runner (its pid alone, as `kill -9 PID` does) a random "
            "0-3 s after its first cell started. A local Ray's processes outlive such a kill (its two "
            "agents, about 90 MB each, did before the watchdog, bench/execution/reaper.py); the watchdog "
            "the runner started kills them. Ray processes left 20 s after the kill: "
            f"**{sum(r['ray_processes_left'] for r in rays)}**; reruns exiting 0: "
            f"**{sum(r['rerun_status'] == 0 for r in rays)}/{len(rays)}**; records lost "
            f"**{sum(r['lost'] for r in rays)}**, duplicated **{sum(r['duplicated'] for r in rays)}**.", "",
            tabulate([list(r.values()) for r in rays], headers=list(rays[0]), tablefmt="github"), ""]


def write_keeping_reproducibility(path: Path, text: str) -> None:
    """The report, keeping the section `python -m bench.reproduce` wrote into it."""
    from bench.reproduce import END, START

    old = path.read_text() if path.exists() else ""
    kept = old[old.index(START):old.index(END) + len(END)] if START in old and END in old else ""
    path.write_text(text.rstrip("\n") + ("\n\n" + kept + "\n" if kept else "\n"))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.faults", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--trials", type=int, default=20, help="kill -9 trials (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="seed of the kill moments")
    p.add_argument("--out", default="reports/reliability.md")
    p.add_argument("--render", metavar="JSON", default=None,
                   help="only rewrite the report from the results of an earlier run (its .json)")
    p.add_argument("--only", default=None, metavar="SECTION,...",
                   help=f"rerun only these sections ({', '.join(SECTIONS)}) and keep the others' results "
                        "from the report's .json (the report says which sections ran when)")
    args = p.parse_args(argv)
    if args.render:
        results = json.loads(Path(args.render).read_text())
        write_keeping_reproducibility(Path(args.out), markdown(results, len(results["kill_trials"])))
        return 0
    if args.only:
        return rerun_sections(args.only.split(","), Path(args.out))
    with tempfile.TemporaryDirectory(prefix="bench-faults-") as folder:
        results = run_all(args.trials, Path(folder), args.seed)
    write_keeping_reproducibility(Path(args.out), markdown(results, args.trials))
    Path(args.out).with_suffix(".json").write_text(json.dumps(results, indent=1, default=str))
    print(f"wrote {args.out}", file=sys.stderr)
    trials_run = results["kill_trials"] + results["two_runner_trials"] + results["ray_kill_trials"]
    bad = sum(r["lost"] + r["duplicated"] + r["corrupt"] for r in trials_run)
    bad += sum(not r["ok"] for r in results["silently_wrong"])
    bad += sum(r["ray_processes_left"] for r in results["ray_kill_trials"])
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
