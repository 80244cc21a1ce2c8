"""The grid runner end to end on the smoke profile: records, resume, determinism, failures."""
import json

import pytest

import bench.evaluation.cell
from bench.execution.store import ResultStore
from bench.run import main

SMOKE = ["--streams", "mini", "--seeds", "0", "--profile", "smoke", "--no-progress"]


def records(out):
    return {(r["method"], r["seed"]): r for r in ResultStore(out).records()}


def test_smoke_grid_end_to_end_resume_and_determinism(tmp_path, capsys, monkeypatch):
    args = SMOKE + ["--methods", "finetune,reservoir,joint", "--workers", "1"]
    assert main(args + ["--out", str(tmp_path / "a")]) == 0
    table = capsys.readouterr().out
    assert "reservoir" in table and "joint†" in table and "NLL (nats)" in table
    first = records(tmp_path / "a")
    assert {r["status"] for r in first.values()} == {"done"} and len(first) == 3
    for r in first.values():
        assert len(r["nll_matrix"]) == 5 and all(len(row) == 5 for row in r["nll_matrix"])
        assert 100 < r["nll"] < 544  # better than uniform pixels (784 log 2 = 543.4 nats)
    assert first[("reservoir", 0)]["memory"] == 256 and first[("joint", 0)]["memory"] == 5 * 256
    assert (tmp_path / "a" / "summary.csv").exists()

    # rerunning does no training: every cell is already done
    def must_not_run(*_a, **_k):
        raise AssertionError("a finished cell was run again")
    monkeypatch.setattr(bench.evaluation.cell, "train_and_evaluate", must_not_run)
    assert main(args + ["--out", str(tmp_path / "a")]) == 0
    assert "3 cells (3 already done)" in capsys.readouterr().err
    monkeypatch.undo()

    # same seed, same numbers: in a fresh directory and across worker processes
    assert main(SMOKE + ["--methods", "finetune,reservoir,joint", "--workers", "2",
                         "--out", str(tmp_path / "b")]) == 0
    second = records(tmp_path / "b")
    for key, r in first.items():
        assert second[key]["nll_matrix"] == r["nll_matrix"]
        assert second[key]["key"] == r["key"]


def test_force_reruns_and_failed_cells_are_retried(tmp_path):
    out = tmp_path / "r"
    assert main(SMOKE + ["--methods", "finetune", "--workers", "1", "--out", str(out)]) == 0
    path = next((out / "records").glob("*.json"))
    stamp = json.loads(path.read_text())["finished_at"]
    record = json.loads(path.read_text())
    record["status"] = "failed"
    path.write_text(json.dumps(record))
    assert main(SMOKE + ["--methods", "finetune", "--workers", "1", "--out", str(out)]) == 0
    assert json.loads(path.read_text())["status"] == "done"
    assert main(SMOKE + ["--methods", "finetune", "--workers", "1", "--force", "--out", str(out)]) == 0
    assert json.loads(path.read_text())["finished_at"] >= stamp


def test_nan_loss_fails_its_cell_and_the_rest_of_the_grid_finishes(tmp_path, capsys):
    # lr = 1e30 makes the first Adam step blow the weights up: the loss is NaN at iteration 1
    code = main(SMOKE + ["--methods", "finetune", "--seeds", "0,1", "--workers", "1",
                         "--set", "lr=1e30", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 1
    assert "2 cell(s) failed" in err and "NonFiniteLossError" in err and "finetune/mini/seed1" in err
    failed = ResultStore(tmp_path).records()
    assert len(failed) == 2 and all(r["status"] == "failed" for r in failed)
    # a good cell in the same results directory is unaffected
    assert main(SMOKE + ["--methods", "reservoir", "--workers", "1", "--out", str(tmp_path)]) == 0


@pytest.mark.parametrize("flag,value,message", [
    ("--methods", "ocmm", ("unknown method 'ocmm'; valid methods: finetune, first-k, reservoir, joint, ocm, "
                           "ocm-iw50, ocm-dynamic, lgm, curl")),
    ("--streams", "cifar", "unknown stream 'cifar'; valid streams: mini, split-mnist"),
    ("--profile", "fast", "unknown profile 'fast'; valid profiles: smoke, quick, paper"),
    ("--set", "epoch=3", "unknown profile setting 'epoch'"),
])
def test_bad_names_exit_2_with_the_valid_ones(tmp_path, capsys, flag, value, message):
    assert main([flag, value, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_missing_dataset_exits_2_with_the_fetch_command(tmp_path, capsys):
    assert main(["--streams", "split-mnist", "--data-dir", str(tmp_path), "--out", str(tmp_path)]) == 2
    assert f"python -m streams.fetch mnist --data-dir {tmp_path}" in capsys.readouterr().err


def test_list(capsys):
    assert main(["--list"]) == 0
    out = capsys.readouterr().out
    assert "joint" in out and "needs task boundaries" in out and "split-fashion" in out
    # every name in one column, the longest (split-fashion-sorted) included
    entries = [line for line in out.splitlines() if line.startswith("  ")]
    starts = {len(line) - len(line[2:].split("  ", 1)[1].lstrip()) for line in entries}
    assert len(starts) == 1, starts


def test_a_misspelt_profile_gets_a_did_you_mean(capsys):
    assert main(["--profile", "quik"]) == 2
    assert "did you mean 'quick'?" in capsys.readouterr().err


def test_half_written_records_are_ignored(tmp_path):
    store = ResultStore(tmp_path)
    store.records_dir.mkdir(parents=True)
    (store.records_dir / ".tmp-abc.json").write_text('{"status": "do')
    assert store.records() == []


def test_match_names_a_method_not_a_preset(capsys):
    assert main(["--methods", "reservoir[budget=match:cndpm-paper]", "--streams", "mini"]) == 2
    err = capsys.readouterr().err
    assert "not a preset or a variant" in err and "cndpm," in err
