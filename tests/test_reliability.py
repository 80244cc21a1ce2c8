"""Faults injected on purpose (bench.faults): nothing lost, nothing run twice, no traceback, every
bad input refused before any cell runs."""
import json
import os
import socket
import subprocess
import sys
import threading
import time

import pytest

from bench import faults
from bench.execution.claims import claim_path, live_claims, try_claim
from bench.execution.store import ResultStore
from bench.planning.grid import expand_grid
from bench.planning.profiles import resolve_profile
from bench.run import main

SMOKE = ["--streams", "mini", "--seeds", "0", "--profile", "smoke", "--no-progress", "--workers", "1"]


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def plant_claim(root, cell, host, pid, age=0.0):
    store = ResultStore(root)
    path = claim_path(store.root, store.path(cell).stem)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"host": host, "pid": pid, "since": time.time()}))
    os.utime(path, (time.time() - age, time.time() - age))
    return path


def finetune_cell():
    return expand_grid(["finetune"], ["mini"], [0], resolve_profile("smoke"))[0]


def test_a_claim_of_a_dead_process_on_this_host_is_taken_over_at_once(tmp_path):
    cell = finetune_cell()
    stem = ResultStore(tmp_path).path(cell).stem
    plant_claim(tmp_path, cell, socket.gethostname(), dead_pid())
    assert stem not in live_claims(tmp_path)
    claim = try_claim(tmp_path, stem)
    assert claim is not None
    claim.release()
    # a live process of this host keeps its claim, however old the file is not (yet)
    plant_claim(tmp_path, cell, socket.gethostname(), os.getpid())
    assert try_claim(tmp_path, stem) is None and stem in live_claims(tmp_path)


def test_a_cell_held_elsewhere_exits_3_with_no_wait_and_is_waited_for_by_default(tmp_path, capsys):
    cell = finetune_cell()
    path = plant_claim(tmp_path, cell, "other-host", 4242)
    assert main(SMOKE + ["--methods", "finetune", "--out", str(tmp_path), "--no-wait"]) == 3
    err = capsys.readouterr().err
    assert "1 cell(s) not done, being run by another runner" in err
    assert "finetune/mini/seed0: pid 4242 on other-host" in err
    # by default it waits, says for what, and runs the cell once the other runner lets go of it
    threading.Timer(1.5, path.unlink).start()
    assert main(SMOKE + ["--methods", "finetune", "--out", str(tmp_path)]) == 0
    err = capsys.readouterr().err
    assert "waiting for 1 cell(s) run by another runner: finetune/mini/seed0 (pid 4242 on other-host)" in err
    assert ResultStore(tmp_path).is_done(cell)


def test_corrupt_records_are_moved_aside_by_every_command(tmp_path):
    rows = faults.corrupt_records(tmp_path)
    assert [r["command"] for r in rows] == ["bench.report", "bench.status", "bench.check", "bench.run"]
    for number, row in enumerate(rows, start=1):
        assert row["crashed"] == "no" and row["status"] is not None
        assert row["warning"].startswith("warning: corrupt record") and row["moved_aside"] == number
    assert rows[-1]["status"] == 0 and rows[-1]["cell_restored_by_this_command"]   # bench.run reran it


def test_every_bad_input_is_refused_before_any_cell_runs(tmp_path):
    rows = faults.bad_inputs(tmp_path)
    assert len(rows) == len(faults.BAD_INPUTS)
    for row in rows:
        assert row["status"] == 2, row
        assert not row["cells_run"], row
        assert row["message"].startswith("error: ") and len(row["message"].splitlines()) == 1, row
    messages = {r["input"]: r["message"] for r in rows}
    assert "reservoir.budget must be an integer, not 'abc'" in messages["budget not an integer"]
    assert "ocm.lambda1 must be a number, not 'x'" in messages["float setting not a number"]
    assert "cannot write results" in messages["--out that cannot be created"]
    assert "MD5" in messages["stream data present but failing its checksum"] or \
        "checksum" in messages["stream data present but failing its checksum"].lower()
    assert messages["misspelt method"].endswith("did you mean 'ocm-dynamic'?")
    assert messages["a user's method without its --import"].endswith(
        "examples/my_method.py registers it: add --import examples/my_method.py")
    assert "curl.replay_mix must be one of alternate, join, not 'both'" in messages["choice setting not one of its choices"]


def test_the_other_commands_refuse_bad_input_with_exit_2_and_one_line(tmp_path):
    rows = faults.other_bad_inputs(tmp_path)
    assert len(rows) == len(faults.OTHER_BAD_INPUTS)
    for row in rows:
        assert row["status"] == 2, row
        assert row["message"].startswith("error: ") and len(row["message"].splitlines()) == 1, row
    messages = {(r["command"], r["input"]): r["message"] for r in rows}
    assert "unknown metric 'nl' (did you mean 'nll'?)" in messages["bench.check", "tolerance of an unknown metric (a typo)"]
    assert "lack seeds of 2 cell(s) of the reference" in messages["bench.check", "results lacking a seed of the reference"]
    assert "lack 1 cell(s) of the reference" in messages["bench.check", "results lacking a cell of the reference"]
    assert "is a directory: give a file name" in messages["bench.report", "--out that is a directory"]
    assert "give --format latex" in messages["bench.report", "--out's suffix contradicting --format"]
    assert "no results directory" in messages["bench.status", "results directory that does not exist"]


def test_a_record_write_that_fails_part_way_leaves_nothing_and_the_cell_is_rerun(tmp_path):
    result = faults.failed_write(tmp_path)
    assert result["status"] == 1 and "No space left on device" in result["message"]
    assert result["files_left"] == []
    assert result["rerun_status"] == 0 and result["done_after_rerun"] == 1


def test_a_worker_killed_by_the_kernel_fails_its_cell_naming_the_signal(tmp_path):
    result = faults.killed_worker(tmp_path)
    assert result["status"] == 1
    assert "killed by signal SIGKILL" in result["message"]
    assert result["others_done"] == 2 and result["claims_left"] == 0


def test_kill_9_of_the_runner_loses_nothing_and_a_second_runner_finishes(tmp_path):
    reference, seconds = faults.baseline(tmp_path)
    assert len(reference) == faults.GRID_CELLS
    for index, at in enumerate((0.3 * seconds, 0.7 * seconds)):
        trial = faults.kill_trial(tmp_path, index, at, reference)
        assert trial["rerun_status"] == 0, trial
        assert (trial["lost"], trial["duplicated"], trial["corrupt"]) == (0, 0, 0), trial
        assert trial["table_identical"], trial
    pair = faults.two_runner_trial(tmp_path, 0, 0.5 * seconds, reference)
    assert pair["survivor_status"] == 0 and pair["cells_saved_once"] == faults.GRID_CELLS, pair
    assert (pair["lost"], pair["duplicated"], pair["corrupt"]) == (0, 0, 0) and pair["table_identical"]


def test_atomic_path_replaces_whole_or_not_at_all(tmp_path):
    """streams.files.atomic_path: the target changes only when the block succeeds, and no
    temporary file is left either way."""
    from streams.files import atomic_path

    target = tmp_path / "sub" / "out.json"
    with atomic_path(target, suffix=".json", durable=True) as tmp:
        assert tmp.parent == target.parent and tmp != target
        tmp.write_text("first")
    assert target.read_text() == "first"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("crash while writing")
    assert target.read_text() == "first"
    assert sorted(p.name for p in target.parent.iterdir()) == ["out.json"]


def test_every_silently_wrong_case_is_now_refused_or_recomputed(tmp_path):
    """bench.faults' trials of the cases that once gave a wrong number that looked right."""
    rows = faults.silently_wrong(tmp_path)
    assert len(rows) == 8
    failed = [r for r in rows if not r["ok"]]
    assert failed == [], failed
