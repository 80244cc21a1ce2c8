"""The code's digest (bench/planning/code_digest.py): it follows every file of the packages; a worker whose
code on disk is not the runner's refuses its cell (nothing claimed, nothing written); a checkpoint
of other code is set aside, not resumed; every record says which code made it."""
import dataclasses
import shutil

from bench.evaluation.cell import run_cell
from bench.evaluation.checkpoint import CheckpointPolicy, Preempted
from bench.execution import Keeping
from bench.execution.executor import execute_cell
from bench.execution.store import ResultStore
from bench.planning.code_digest import PACKAGES, code_digest, code_files, file_hash
from bench.planning.grid import expand_grid
from bench.planning.profiles import resolve_profile
from bench.run import build_parser, run_options


def small_cell(method="reservoir"):
    profile = dataclasses.replace(resolve_profile("smoke"), max_train_per_task=128)
    return expand_grid([method], ["mini"], [0], profile)[0]


def test_the_digest_follows_every_file_of_the_packages(tmp_path):
    for package in PACKAGES:
        (tmp_path / package / "sub").mkdir(parents=True)
        (tmp_path / package / "sub" / "a.py").write_text("x = 1\n")
    (tmp_path / "notes.py").write_text("outside the packages\n")
    before = code_digest(tmp_path)
    assert set(code_files(tmp_path)) == {f"{p}/sub/a.py" for p in PACKAGES}
    (tmp_path / "notes.py").write_text("changed, but not code of the harness\n")
    assert code_digest(tmp_path) == before
    (tmp_path / "methods" / "sub" / "a.py").write_text("x = 2\n")   # one byte of one file
    assert code_digest(tmp_path) != before
    (tmp_path / "methods" / "sub" / "a.py").write_text("x = 1\n")
    shutil.move(tmp_path / "methods" / "sub" / "a.py", tmp_path / "methods" / "sub" / "b.py")   # a rename
    assert code_digest(tmp_path) != before and len(code_digest(tmp_path)) == 16


def test_a_worker_refuses_a_cell_when_the_code_changed_since_the_runner_started(tmp_path):
    cell = small_cell()
    outcome = execute_cell(cell, str(tmp_path), keeping=Keeping(code_digest="0" * 16))
    assert outcome["status"] == "failed" and "changed on disk since this grid started" in outcome["error"]
    store = ResultStore(tmp_path)
    assert not store.path(cell).exists() and not store.executions()   # not claimed, not started: rerun runs it
    assert execute_cell(cell, str(tmp_path), keeping=Keeping(code_digest=code_digest()))["status"] == "done"
    assert store.load(cell).code_digest == code_digest()


def test_the_command_hands_its_digest_to_the_workers():
    args = build_parser().parse_args(["--methods", "ocm", "--streams", "mini"])
    assert run_options(args).keeping.code_digest == code_digest()


def test_a_checkpoint_of_other_code_is_set_aside_not_resumed(tmp_path, capsys):
    cell = small_cell()
    path = tmp_path / "c.pt"
    try:
        run_cell(cell, checkpoint=CheckpointPolicy(path, every_seconds=float("inf"), stop_at=(1, 0), code="a" * 16))
    except Preempted:
        pass
    assert path.exists()
    record = run_cell(cell, checkpoint=CheckpointPolicy(path, code="b" * 16))
    assert record["status"] == "done" and "resumed_from" not in record
    assert (tmp_path / "c.bad").exists() and "written by other code" in capsys.readouterr().err


def test_the_digest_skips_caches_and_lock_files_and_counts_an_unreadable_file(tmp_path):
    (tmp_path / "bench" / "__pycache__").mkdir(parents=True)
    (tmp_path / "bench" / "a.py").write_text("x = 1\n")
    (tmp_path / "bench" / "kernel.c").write_text("int f(void);\n")   # not Python, still code
    before = code_files(tmp_path)
    assert set(before) == {"bench/a.py", "bench/kernel.c"}
    (tmp_path / "bench" / "__pycache__" / "a.cpython-311.pyc").write_bytes(b"\0")
    (tmp_path / "bench" / ".#a.py").symlink_to(tmp_path / "nowhere")   # an editor's lock: a dangling link
    assert code_files(tmp_path) == before
    assert file_hash(tmp_path / "bench" / "vanished.py") == "unreadable"   # listed, then gone mid-pull


def test_a_user_method_file_is_part_of_the_digest(tmp_path, monkeypatch):
    from methods.core.user_methods import ENV_VAR

    mine = tmp_path / "my_method.py"
    mine.write_text("x = 1\n")
    monkeypatch.setenv(ENV_VAR, str(mine))
    before = code_digest()
    assert str(mine) in code_files()
    mine.write_text("x = 2\n")
    assert code_digest() != before
