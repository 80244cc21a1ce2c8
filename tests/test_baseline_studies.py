"""A method of one's own beside a committed study: `bench.run --baseline DIR` runs only the cells
the study does not have (its profile taken from it), writes nothing into it, and `bench.report
--baseline DIR` reports both, saying which rows came from where; `--versus METHOD` tests a row
against every other."""
import json

from bench.report import main as report
from bench.run import main as run

SMOKE = ["--streams", "mini", "--seeds", "0,1", "--no-progress", "--workers", "1"]


def snapshot(folder):
    return sorted((str(p.relative_to(folder)), p.stat().st_mtime_ns) for p in folder.rglob("*") if p.is_file())


def test_a_run_beside_a_baseline_runs_only_its_own_cells_and_writes_nothing_there(tmp_path, capsys):
    study, mine = tmp_path / "study", tmp_path / "mine"
    assert run(["--methods", "finetune,reservoir", *SMOKE, "--profile", "smoke", "--set", "eval_k=8",
                "--out", str(study)]) == 0
    before = snapshot(study)
    capsys.readouterr()
    # no --profile: the study's own, smoke[eval_k=8], so that its cells' keys are the study's
    assert run(["--methods", "finetune,reservoir,ocm", *SMOKE, "--baseline", str(study), "--out", str(mine)]) == 0
    err = capsys.readouterr().err
    assert "6 cells (4 already done, 4 of them in the baseline), profile smoke[eval_k=8]" in err
    assert sorted(json.loads(p.read_text())["method"] for p in (mine / "records").glob("*.json")) == ["ocm", "ocm"]
    assert snapshot(study) == before   # nothing written, moved or touched there
    capsys.readouterr()
    assert report([str(mine), "--baseline", str(study)]) == 0
    out = capsys.readouterr().out
    assert "finetune" in out and "reservoir" in out and "ocm" in out
    flat = " ".join(out.split())   # the line is wrapped to 120 columns
    assert f"Rows from the baseline {study} (harness 0.7.0" in flat and "): finetune, reservoir." in flat
    assert report([str(mine), "--baseline", str(study), "--versus", "ocm"]) == 0
    out = capsys.readouterr().out
    assert out.count("ocm against every other row on mini") == 1 and "finetune" in out
    assert max(len(line) for line in out.splitlines()) <= 120


def test_a_baseline_of_several_profiles_needs_one_chosen(tmp_path, capsys):
    study = tmp_path / "study"
    for eval_k in (8, 9):
        assert run(["--methods", "finetune", "--streams", "mini", "--seeds", "0", "--no-progress", "--workers", "1",
                    "--profile", "smoke", "--set", f"eval_k={eval_k}", "--out", str(study)]) == 0
    capsys.readouterr()
    assert run(["--methods", "finetune", *SMOKE, "--baseline", str(study), "--out", str(tmp_path / "m")]) == 2
    assert "the baselines hold several profiles" in capsys.readouterr().err
    assert run(["--methods", "finetune", *SMOKE, "--baseline", str(tmp_path / "nothing"), "--out", str(tmp_path / "m")]) == 2
    assert "no records/ folder" in capsys.readouterr().err
