"""Nothing silently wrong: a cell's key holds everything that changes its numbers, inputs that
cannot give a meaningful number are refused before any cell runs (exit 2, one line), and files
are written whole or not at all. Each test is one case a careless or unlucky user met."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from bench.planning.grid import expand_grid
from bench.planning.plan import plan_grid
from bench.planning.profiles import resolve_profile
from bench.run import main
from streams.datasets import DATASETS, NpzDataset, register_dataset, sha256_hex
from streams.registry import STREAMS, StreamRegistrationError, register_stream

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ["--streams", "mini", "--seeds", "0", "--profile", "smoke", "--no-progress", "--workers", "1"]


@pytest.fixture
def user_registry():
    """Streams and datasets registered by a test are gone after it."""
    streams, datasets = dict(STREAMS), dict(DATASETS)
    yield
    STREAMS.clear()
    STREAMS.update(streams)
    DATASETS.clear()
    DATASETS.update(datasets)


def write_npz(path: Path, seed: int, classes=(0, 1, 2, 3), per_class=(40, 10)) -> str:
    """A small user dataset (28x28 grey blobs) as an .npz; its SHA-256."""
    rng = np.random.default_rng(seed)
    parts = {}
    for split, n in zip(("train", "test"), per_class):
        y = np.repeat(np.array(classes), n)
        x = (rng.random((len(y), 28, 28)) * 255 * (y[:, None, None] % 2 + 1) / 2).astype(np.uint8)
        parts[f"x_{split}"], parts[f"y_{split}"] = x, y
    np.savez(path, **parts)
    return sha256_hex(path.read_bytes())


def blob_stream(name: str, path: Path, sha: str, tasks=((0, 1), (2, 3)), seed=None, classes=4):
    DATASETS.pop(name + "-data", None)
    register_dataset(NpzDataset(name + "-data", classes=classes, path=str(path), sha256=sha))
    for key in (name, name + "-sorted"):
        STREAMS.pop(key, None)
    return register_stream(name, [name + "-data"], [list(t) for t in tasks], test_binarization_seed=seed)


def key_of(stream: str, settings=(), method="finetune") -> str:
    return expand_grid([method], [stream], [0], resolve_profile("smoke", list(settings)))[0].key


# -------------------------------------------------------------------------- 1. the cell's key
def test_a_user_stream_changed_under_its_name_gets_new_keys(tmp_path, user_registry):
    """Regenerated data (a new checksum), other tasks, another test binarization seed: each is a
    new cell; the old records are not reused. The same file moved elsewhere keeps its keys."""
    sha = write_npz(tmp_path / "a.npz", seed=0)
    blob_stream("blobs", tmp_path / "a.npz", sha)
    first = key_of("blobs")
    assert key_of("blobs") == first
    changed = write_npz(tmp_path / "b.npz", seed=1)
    blob_stream("blobs", tmp_path / "b.npz", changed)
    assert key_of("blobs") != first
    blob_stream("blobs", tmp_path / "a.npz", sha, tasks=((0, 1), (3, 2)))
    assert key_of("blobs") != first
    blob_stream("blobs", tmp_path / "a.npz", sha, seed=77)
    assert key_of("blobs") != first
    (tmp_path / "moved").mkdir()
    os.replace(tmp_path / "a.npz", tmp_path / "moved" / "a.npz")
    blob_stream("blobs", tmp_path / "moved" / "a.npz", sha)
    assert key_of("blobs") == first


def test_a_regenerated_user_stream_reruns_its_cells(tmp_path, user_registry, capsys):
    out = tmp_path / "results"
    data = tmp_path / "blobs.npz"
    module = tmp_path / "blobs_stream.py"
    template = ("from streams import register_stream\nfrom streams.datasets import NpzDataset, register_dataset\n"
                "register_dataset(NpzDataset('blobs-data', classes=4, path={path!r}, sha256={sha!r}))\n"
                "register_stream('blobs', ['blobs-data'], [[0, 1], [2, 3]])\n")
    args = ["--import", str(module), "--methods", "finetune", "--streams", "blobs", "--seeds", "0",
            "--profile", "smoke", "--no-progress", "--workers", "1", "--out", str(out), "--set", "max_train_per_task=32"]
    nlls = []
    for seed in (0, 1):
        module.write_text(template.format(path=str(data), sha=write_npz(data, seed)))
        for name in [m for m in sys.modules if m.startswith("ocm_user.blobs_stream")]:
            del sys.modules[name]
        for key in ("blobs", "blobs-sorted"):
            STREAMS.pop(key, None)
        DATASETS.pop("blobs-data", None)
        assert main(args) == 0
        nlls.append(sorted(json.loads(p.read_text())["nll"] for p in (out / "records").glob("*.json")))
    err = capsys.readouterr().err
    assert "1 cells (1 already done)" not in err          # the second run trained again
    assert len(nlls[1]) == 2 and nlls[1] != nlls[0] * 2


def test_one_setting_has_one_spelling_and_one_key():
    for a, b in (("epochs=01", "epochs=1"), ("lr=1e-4", "lr=0.0001"), ("eval_k=1_000", "eval_k=1000")):
        assert resolve_profile("smoke", [a]).name == resolve_profile("smoke", [b]).name
        assert key_of("mini", [a]) == key_of("mini", [b])
    variant = expand_grid(["reservoir[budget=0500]"], ["mini"], [0], resolve_profile("smoke"))[0]
    assert variant.variant == "reservoir[budget=500]"
    assert variant.key == expand_grid(["reservoir[budget=500]"], ["mini"], [0], resolve_profile("smoke"))[0].key


# ------------------------------------------------------------ 2. refused before any cell runs
@pytest.mark.parametrize("extra, message", [
    (["--set", "reservoir.budget=100"], "setting 'reservoir.budget' is for method 'reservoir', which this grid does not run"),
    (["--set", "epochs=2", "--sweep", "epochs=1,3"], "epochs is given both by --set and by --sweep"),
    (["--set", "epochs=2", "--set", "epochs=3"], "setting 'epochs' is given twice"),
    (["--sweep", "epochs=1,01"], "gives one value twice"),
    (["--sweep", "epochs=1", "--sweep", "epochs=2"], "--sweep epochs=... is given twice"),
    (["--set", "lr=nan"], "lr must be a finite number"),
    (["--set", "lr=inf"], "lr must be a finite number"),
    (["--set", "betas=0.5:1.0"], "betas must be less than 1.0"),
    (["--seeds", str(2 ** 32)], "seeds must be comma-separated integers from 0 to 4294967295"),
    (["--out", ""], "--out needs a results directory"),
])
def test_contradictory_or_meaningless_settings_exit_2_before_any_cell(tmp_path, capsys, extra, message):
    out = ["--out", str(tmp_path / "results")] if "--out" not in extra else []
    assert main(["--methods", "finetune", *SMOKE, *out, *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "results" / "records").exists()


def test_a_variant_giving_a_setting_twice_and_a_budget_beyond_memory_are_refused(tmp_path, capsys):
    assert main(["--methods", "reservoir[budget=100,budget=200]", *SMOKE, "--out", str(tmp_path)]) == 2
    assert "gives 'budget' twice" in capsys.readouterr().err
    assert main(["--methods", f"reservoir[budget={10 ** 12}]", *SMOKE, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "keep up to 1,000,000,000,000 images in memory" in err and "give a smaller budget" in err
    assert main(["--methods", "reservoir[budget=match:reservoir]", *SMOKE, "--out", str(tmp_path)]) == 2
    assert "matches the method to itself" in capsys.readouterr().err


def test_a_long_grid_says_how_long_before_it_starts(tmp_path, capsys, monkeypatch):
    """epochs=10**9 is a valid number that would run for centuries: the grid says so first."""
    import bench.evaluation.prepare as prepare

    def stop(*args, **kwargs):   # the estimate is printed before the runner starts: stop there
        raise KeyboardInterrupt
    monkeypatch.setattr("bench.execution.runner.GridRunner.run", stop)
    assert main(["--methods", "finetune", *SMOKE, "--out", str(tmp_path), "--set", f"epochs={10 ** 9}"]) == 130
    err = capsys.readouterr().err
    assert "this grid: about" in err and "years of CPU work" in err
    assert prepare.estimate_line([], None, 2) is None


@pytest.mark.parametrize("tasks, message", [
    ([], "has no task"),
    ([[0, 1], [1, 0]], "task 2 repeats an earlier task's classes"),
])
def test_degenerate_streams_are_refused_at_registration(tasks, message, user_registry):
    with pytest.raises(StreamRegistrationError, match=message):
        register_stream("degenerate", ["mini"], tasks)


@pytest.mark.parametrize("per_class, tasks, message", [
    ((40, 10), [[0, 1], [2, 5]], "task 2 (classes 2, 5) has no training image of class 5"),
    ((40, 0), [[0, 1], [2, 3]], "task 1 (classes 0, 1) has no test image of classes 0, 1"),
])
def test_a_stream_whose_tasks_lack_images_is_refused_before_any_cell(
        tmp_path, capsys, user_registry, per_class, tasks, message):
    sha = write_npz(tmp_path / "d.npz", seed=0, per_class=per_class)
    blob_stream("holes", tmp_path / "d.npz", sha, tasks=tasks, classes=6)
    assert main(["--methods", "finetune", "--streams", "holes", "--seeds", "0", "--profile", "smoke",
                 "--no-progress", "--workers", "1", "--out", str(tmp_path / "results")]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "results" / "records").exists()


# --------------------------------------------------------------------- 3. files and records
def test_the_page_is_written_whole_or_not_at_all(tmp_path, monkeypatch):
    from bench.reporting import html

    page = tmp_path / "report.html"
    page.write_text("the good page")
    monkeypatch.setattr(html, "build_page", lambda *a, **k: "x" * 1000)

    def full_disk(self, data):
        with open(self, "wb") as f:
            f.write(data[:10])
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(Path, "write_bytes", full_disk)
    with pytest.raises(OSError):
        html.write_page(tmp_path, [], page, "cmd")
    assert page.read_text() == "the good page" and [p.name for p in tmp_path.iterdir()] == ["report.html"]


@pytest.mark.parametrize("content", ["[]", '{"abc": 5}', '{"0011223344556677": {"label": "x"'])
def test_a_broken_grid_manifest_is_rebuilt_from_the_records_and_claims(tmp_path, capsys, content):
    from bench.status import main as status

    assert main(["--methods", "finetune", *SMOKE, "--out", str(tmp_path)]) == 0
    (tmp_path / "claims").mkdir(exist_ok=True)
    claim = tmp_path / "claims" / "mini__reservoir__seed0__00000000000000aa.claim"
    claim.write_text("{}")
    os.utime(claim, (0, 0))   # a dead worker's claim: its cell is pending
    (tmp_path / "grid.json").write_text(content)
    capsys.readouterr()
    assert status([str(tmp_path), "--all"]) == 1
    out, err = capsys.readouterr()
    assert "1 done" in out and "reservoir/mini/seed0" in out and "rebuilt from 2 record(s) and claim(s)" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("change", [{"nll": "oops"}, {"nll": None}, {"nll_matrix": [[1.0], [2.0, 3.0]]}])
def test_a_record_whose_numbers_are_not_numbers_is_moved_aside_by_every_command(tmp_path, capsys, change):
    """status, report (a table, the matrices, the page) and run each move it aside with a warning
    and go on; run then trains the cell again and gets its number back."""
    from bench.report import main as report
    from bench.status import main as status

    assert main(["--methods", "finetune", *SMOKE, "--out", str(tmp_path)]) == 0
    path = next((tmp_path / "records").glob("*.json"))
    good = json.loads(path.read_text())
    commands = {"status": lambda: status([str(tmp_path)]),
                "report": lambda: report([str(tmp_path), "--metric", "matrix"]),
                "html": lambda: report([str(tmp_path), "--html"]),
                "run": lambda: main(["--methods", "finetune", *SMOKE, "--out", str(tmp_path)])}
    for name, command in commands.items():
        path.write_text(json.dumps({**good, **change}))
        capsys.readouterr()
        code = command()
        err = capsys.readouterr().err
        assert "Traceback" not in err and "moved to" in err, name
        if name == "run":
            assert code == 0 and json.loads(path.read_text())["nll"] == good["nll"]
        else:
            assert not path.exists() and code in (1, 2), name


def test_report_into_a_folder_that_cannot_be_written_says_so(tmp_path, capsys):
    """A page or figures asked for where a file stands in the way of their folder (as a read-only
    folder would, for a user whom permissions stop): exit 2, one line, no traceback."""
    from bench.report import main as report

    assert main(["--methods", "finetune", *SMOKE, "--out", str(tmp_path / "r")]) == 0
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a folder")
    capsys.readouterr()
    assert report([str(tmp_path / "r"), "--html", str(blocker / "page.html")]) == 2
    err = capsys.readouterr().err
    assert "cannot write" in err and "Traceback" not in err
    (tmp_path / "r" / "figures").write_text("a file where the figures' folder goes")
    assert report([str(tmp_path / "r"), "--figures"]) == 2
    err = capsys.readouterr().err
    assert "cannot write the figures" in err and "Traceback" not in err


def test_a_full_disk_during_the_html_report_exits_2_without_a_traceback(tmp_path, capsys, monkeypatch):
    from bench.report import main as report

    assert main(["--methods", "finetune", *SMOKE, "--out", str(tmp_path)]) == 0
    (tmp_path / "report.html").write_text("the good page")

    def full_disk(self, data):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(Path, "write_bytes", full_disk)
    capsys.readouterr()
    assert report([str(tmp_path), "--html"]) == 2
    err = capsys.readouterr().err
    assert "cannot write" in err and "No space left" in err and "Traceback" not in err
    assert (tmp_path / "report.html").read_text() == "the good page"


def test_check_refuses_a_reference_that_is_not_one(tmp_path, capsys):
    from bench.check import main as check

    assert main(["--methods", "finetune", *SMOKE, "--out", str(tmp_path)]) == 0
    bad = tmp_path / "ref.csv"
    bad.write_text("a,b\n1,2\n")
    assert check([str(tmp_path), "--reference", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "not a reference of bench.check (no column profile" in err and "Traceback" not in err


# --------------------------------------------------------------------------- 4. the guards
def test_sigterm_stops_a_run_as_ctrl_c_does_and_leaves_no_claim(tmp_path):
    out = tmp_path / "results"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen([sys.executable, "-m", "bench.run", "--methods", "finetune,reservoir,ocm",
                                "--streams", "mini", "--seeds", "0,1,2", "--profile", "quick",
                                "--fid-features", "none", "--no-progress", "--workers", "2", "--out", str(out)],
                               cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True)
    claims, deadline = out / "claims", time.time() + 120
    while time.time() < deadline and not (claims.is_dir() and any(claims.glob("*.claim"))):
        time.sleep(0.2)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 143
    assert "terminated (SIGTERM):" in err and "rerun the same command to resume" in err and "Traceback" not in err
    assert list((out / "claims").glob("*.claim")) == []


def test_a_claim_whose_pid_was_reused_is_not_honoured(tmp_path):
    """The claim's pid now belongs to a process started after the claim was made (this one):
    its worker is gone, whatever the pid says."""
    import socket

    from bench.execution.claims import claim_path, is_dead

    path = claim_path(tmp_path, "mini__finetune__seed0__0123456789abcdef")
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "since": 1000.0}))
    assert is_dead(path, stale_after=3600)
    path.write_text(json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "since": time.time()}))
    assert not is_dead(path, stale_after=3600)


def test_the_small_test_set_message_names_the_setting_to_change():
    from bench.evaluation.fid import check_feasible

    class Extractor:
        dim = 128
    with pytest.raises(ValueError, match="--set eval_test_per_task=128"):
        check_feasible(Extractor(), 1000, [500, 64])
    with pytest.raises(ValueError, match="--set fid_samples=128"):
        check_feasible(Extractor(), 100, [500, 500])


def test_plan_refuses_the_settings_before_touching_anything():
    with pytest.raises(ValueError, match="is for method 'ocm'"):
        plan_grid("finetune,reservoir", "mini", "0", "smoke", ["ocm.stm_capacity=10"])
    plan = plan_grid("finetune,limix-paper", "mini", "0", "smoke", ["limix-taskfree.threshold=10"])
    assert len(plan.cells) == 2
