"""What a new user meets first: commands that answer without importing torch, refusals that say
what to do, a run's table that fits a terminal, Ctrl-C that says how to resume, failed cells that
say where their traceback is, settings whose bounds are their own."""
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import synthetic_records as sr
from bench.execution.store import ResultStore
from bench.planning import validate
from bench.planning.profiles import resolve_profile
from bench.report import main as report_main
from bench.reporting.frames import cells_frame
from bench.reporting.tables import RUN_TABLE_WIDTH, run_table
from bench.run import main as run_main
from bench.status import main as status_main
from methods import METHODS, GenerativePlugin, MethodRegistrationError, register_method, setting
from methods.core.registry import declare_method

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ["--streams", "mini", "--seeds", "0", "--profile", "smoke", "--no-progress", "--workers", "1"]

NO_TORCH_PROBE = """
import sys
from bench.run import main as run
from bench.report import main as report
from bench.check import main as check
from bench.status import main as status
results = sys.argv[1]
codes = [run(["--list"]), run(["--methods", "nope"]), run(["--set", "reservoir.budget=0"]),
         run(["--seeds", "-1"]), run(["--set", "epoch=2"]), run(["--streams", "split-mnist", "--data-dir", results]),
         report([results + "/nowhere"]), report([results, "--out", results]), report([results]),
         report([results, "--metric", "forgetting", "--format", "latex"]),
         status([results + "/nowhere"]), status([results]),
         check([results, "--reference", "x.csv", "--tolerance", "nl=2"]), check([results + "/nowhere", "--reference", "x.csv"])]
print(codes)
print(sorted(m for m in ("torch", "avalanche", "torchvision", "matplotlib") if m in sys.modules))
"""


def test_listing_refusing_and_reporting_never_import_torch(tmp_path):
    """--list, every refusal of bad input, bench.report on records, bench.status and bench.check's
    refusals: none imports torch or Avalanche (which take seconds), in a fresh interpreter."""
    sr.write(tmp_path, sr.grid(["finetune", "ocm", "cndpm"], seeds=(0, 1)))
    out = subprocess.run([sys.executable, "-c", NO_TORCH_PROBE, str(tmp_path)], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout.splitlines()
    assert out[-2] == str([0, 2, 2, 2, 2, 2, 2, 2, 0, 0, 2, 0, 2, 2]), out
    assert out[-1] == "[]"


def test_the_run_table_fits_120_columns_with_15_methods_and_its_caption_is_wrapped():
    cells = cells_frame(sr.grid(sr.FIFTEEN))
    text = run_table(cells)
    widths = [len(line) for line in text.splitlines()]
    assert max(widths) <= RUN_TABLE_WIDTH
    assert text.splitlines()[0].split()[:3] == ["method", "NLL", "(nats)"]   # one stream: named in the caption
    assert "On mini:" in text and "--wide" in text
    for label in sr.FIFTEEN:   # every method has its row
        assert any(line.startswith(label) for line in text.splitlines())
    wide = run_table(cells, wide=True)
    assert max(len(line) for line in wide.splitlines()) > 200   # everything, on one caption line
    for header in ("SE", "KID ↓", "P/R/D/C ↑", "BWT ↑", "images trained", "train s", "eval s"):
        assert header in wide.splitlines()[0] and header not in text.splitlines()[0]
    two_streams = run_table(cells_frame(sr.grid(sr.FIFTEEN, streams=("mini", "split-mnist-sorted"))))
    assert max(len(line) for line in two_streams.splitlines()) <= RUN_TABLE_WIDTH
    assert two_streams.splitlines()[0].startswith("stream")


def test_captions_name_the_mixture_weights_of_the_methods_shown():
    text = run_table(cells_frame(sr.grid(["ocm", "cndpm", "cndpm-paper"])))
    flat = " ".join(text.split())
    assert "(uniform; cndpm, cndpm-paper: proportional to the experts' counts)" in flat
    assert "(uniform here)" in " ".join(run_table(cells_frame(sr.grid(["ocm"]))).split())


def test_report_takes_the_format_from_out_and_refuses_what_cannot_work(tmp_path, capsys):
    results = sr.write(tmp_path / "results", sr.grid(["finetune", "ocm"], seeds=(0, 1)))
    assert report_main([str(results), "--out", str(tmp_path / "t.tex")]) == 0
    assert (tmp_path / "t.tex").read_text().startswith("\\begin{table}")
    assert report_main([str(results), "--out", str(tmp_path / "t.md")]) == 0
    assert (tmp_path / "t.md").read_text().startswith("| method")
    assert report_main([str(results), "--out", str(tmp_path / "sub" / "t.csv")]) == 0
    assert (tmp_path / "sub" / "t.csv").read_text().startswith("profile_name,")
    capsys.readouterr()
    for args, message in ((["--out", str(tmp_path)], "is a directory: give a file name"),
                          (["--out", str(tmp_path / "t.tex"), "--format", "text"], "give --format latex"),
                          (["--out", str(tmp_path / "t.pdf")], "cannot tell the format")):
        assert report_main([str(results), *args]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and message in err and len(err.splitlines()) == 1
    assert report_main([str(tmp_path / "nowhere")]) == 2
    assert "no results directory" in capsys.readouterr().err
    (tmp_path / "empty" / "records").mkdir(parents=True)
    assert report_main([str(tmp_path / "empty")]) == 2
    assert "no finished records" in capsys.readouterr().err


def test_a_failed_cell_says_where_its_traceback_is(tmp_path, capsys, monkeypatch):
    import bench.evaluation.cell

    def breaks(*args, **kwargs):
        raise RuntimeError("Tensors must have same number of dimensions")

    monkeypatch.setattr(bench.evaluation.cell, "train_and_evaluate", breaks)
    assert run_main(SMOKE + ["--methods", "finetune", "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    [line] = [x for x in err.splitlines() if x.startswith("  finetune/mini/seed0")]
    path = Path(line.rpartition("(traceback in ")[2].rstrip(")"))
    assert "RuntimeError: Tensors must have same number of dimensions" in line
    assert "in breaks" in json.loads(path.read_text())["traceback"]
    assert f"python -m bench.status {tmp_path} --tracebacks" in err
    assert status_main([str(tmp_path), "--tracebacks"]) == 1
    out = capsys.readouterr().out
    assert "1 failed" in out and "Traceback (most recent call last)" in out and "in breaks" in out


def test_the_progress_bar_stays_quiet_when_stderr_is_not_a_terminal(tmp_path, capsys):
    assert run_main(["--streams", "mini", "--seeds", "0", "--profile", "smoke", "--workers", "1", "--methods",
                     "finetune", "--out", str(tmp_path)]) == 0
    err = capsys.readouterr().err
    assert "cells (local)" not in err and "\r" not in err


def test_an_import_that_registers_nothing_is_said(tmp_path, capsys):
    helper = tmp_path / "helper_only.py"
    helper.write_text("VALUE = 1\n")
    assert run_main(["--import", str(helper), "--list"]) == 0
    assert f"warning: --import '{helper}' registered nothing (no method, stream, metric, extractor or executor)" in capsys.readouterr().err
    sys.modules.pop("ocm_user.helper_only", None)


@pytest.mark.skipif(not hasattr(os, "killpg"), reason="needs process groups")
def test_ctrl_c_exits_130_with_one_line_and_a_rerun_resumes(tmp_path):
    """SIGINT to the runner's process group (what a terminal's Ctrl-C sends): one line, no
    traceback, exit 130; the same command then finishes the grid."""
    out = tmp_path / "results"
    # 18 smoke cells: a grid that cannot finish in the moment between its first claim and the
    # interrupt (6 cells sometimes did, on an idle machine, and the run exited 0)
    command = [sys.executable, "-m", "bench.run", "--methods", "finetune,reservoir,ocm", "--streams", "mini",
               "--seeds", "0,1,2,3,4,5", "--profile", "smoke", "--workers", "2", "--out", str(out)]
    # SIGINT as a terminal leaves it: a test run started in the background of a non-interactive
    # shell (`make test &`) ignores SIGINT, and a child inherits that (the grid then ran to the end)
    proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 120
    while not any((out / "claims").glob("*.claim")) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)   # the grid has started its cells
    time.sleep(0.3)
    os.killpg(proc.pid, signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr, stderr
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("interrupted (Ctrl-C): ") and last.endswith("rerun the same command to resume")
    rerun = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert len([r for r in ResultStore(out).records() if r["status"] == "done"]) == 18


# ------------------------------------------------------------------------------------- bounds
def test_a_users_setting_has_its_own_bounds_not_another_methods_by_name(registry_guard_plain):
    @dataclasses.dataclass(frozen=True)
    class Declared:
        budget: int = setting(10, min=-5)         # a budget that may be negative, in this method
        gamma: float = setting(0.5, choices=(0.5, 0.9))

    @dataclasses.dataclass(frozen=True)
    class Undeclared:   # declares nothing: its type is checked, no bound by its name
        budget: int = 10

    @register_method("tmp-declared", Declared, "test")
    class A(GenerativePlugin):
        pass

    @register_method("tmp-undeclared", Undeclared, "test")
    class B(GenerativePlugin):
        pass

    assert resolve_profile("smoke", ["tmp-declared.budget=-3"]).methods["tmp-declared"]["budget"] == -3
    with pytest.raises(validate.SettingError, match="tmp-declared.budget must be at least -5, not -6"):
        resolve_profile("smoke", ["tmp-declared.budget=-6"])
    with pytest.raises(validate.SettingError, match="tmp-declared.gamma must be one of 0.5, 0.9, not '0.7'"):
        resolve_profile("smoke", ["tmp-declared.gamma=0.7"])
    with pytest.raises(validate.SettingError, match="tmp-declared.budget must be an integer"):
        resolve_profile("smoke", ["tmp-declared.budget=match:ocm"])   # not declared matchable
    assert resolve_profile("smoke", ["tmp-undeclared.budget=0"]).methods["tmp-undeclared"]["budget"] == 0
    with pytest.raises(validate.SettingError, match="tmp-undeclared.budget must be an integer"):
        resolve_profile("smoke", ["tmp-undeclared.budget=match:ocm"])   # matchable only if declared so


@pytest.fixture
def registry_guard_plain():
    before = dict(METHODS)
    yield
    for name in set(METHODS) - set(before):
        del METHODS[name]
    METHODS.update(before)


def test_a_declared_method_must_be_registered_as_declared(registry_guard_plain):
    @dataclasses.dataclass(frozen=True)
    class Config:
        size: int = setting(1, min=1)

    @dataclasses.dataclass(frozen=True)
    class Other:
        size: int = 1

    declare_method("tmp-lazy", Config, "a declared method", f"{__name__}:LazyPlugin", needs_task_boundaries=True)
    assert not METHODS["tmp-lazy"].loaded and METHODS["tmp-lazy"].needs_task_boundaries
    with pytest.raises(MethodRegistrationError, match="the class says needs_task_boundaries=False"):
        register_method("tmp-lazy", Config)(LazyPlugin)
    with pytest.raises(MethodRegistrationError, match="declared with Config"):
        LazyPlugin.needs_task_boundaries = True
        register_method("tmp-lazy", Other)(LazyPlugin)
    spec = METHODS["tmp-lazy"]
    assert spec.plugin_class is LazyPlugin and METHODS["tmp-lazy"].loaded   # found in its module, registered
    assert METHODS["tmp-lazy"].description == "a declared method" and LazyPlugin.name == "tmp-lazy"


class LazyPlugin(GenerativePlugin):
    pass


# ------------------------------------------------------------------------------------ figures
def test_figures_scale_to_15_methods(tmp_path):
    """Every method its own colour and marker (in every figure), the NLL matrices in a grid of
    at most 5 panels a row, no ranks figure for one stream, integer ticks for integer settings."""
    from bench.reporting import figures
    from bench.reporting.frames import COLUMNS, select_cells
    from bench.reporting.sweep import sweep_frame

    styles = figures.method_styles(sr.FIFTEEN)
    assert len({s["color"] for s in styles.values()}) == 15 and len({s["marker"] for s in styles.values()}) == 15
    assert figures.method_styles(reversed(sr.FIFTEEN)) == styles   # by registry order, not arrival

    drawn_axes = []
    real_save = figures.save_figure

    def keep(fig, path):
        drawn_axes.append((Path(path).name, [ax for ax in fig.axes if ax.get_visible()]))
        return real_save(fig, path)

    figures.save_figure = keep
    try:
        one_stream = select_cells(sr.grid(sr.FIFTEEN), None)
        written = figures.draw_figures(one_stream, tmp_path)
        assert figures.draw_ranks(one_stream, tmp_path, COLUMNS["nll"]) == []
        sweep = [sr.record(m, "mini", 0, sweep={"epochs": e}) for m in sr.FIFTEEN[:4] for e in (1, 2, 3, 4, 5)]
        written += figures.draw_sweep(sweep_frame(sweep, "epochs"), "epochs", tmp_path)
    finally:
        figures.save_figure = real_save
    assert sorted(p.name for p in written) == ["mini-fid-curve.png", "mini-nll-curve.png", "mini-nll-matrix.png",
                                                "sweep-epochs-mini.png"]
    axes = dict(drawn_axes)
    panels = [ax for ax in axes["mini-nll-matrix.png"] if ax.get_images()]
    assert len(panels) == 15
    rows = {round(ax.get_position().y0, 3) for ax in panels}
    assert len(rows) == 3   # 3 rows of 5, not one row of 15
    [curve] = axes["mini-nll-curve.png"]
    looks = {(line.get_color(), line.get_marker()) for line in curve.get_lines()}
    assert len(looks) == 15
    assert [t.get_text() for t in curve.get_xticklabels()] == ["1", "2", "3", "4", "5"]
    [sweep_ax] = axes["sweep-epochs-mini.png"]
    assert [t.get_text() for t in sweep_ax.get_xticklabels()] == ["1", "2", "3", "4", "5"]


def test_the_reports_fast_argument_lists_match_the_layouts():
    """bench.report lists its layouts without importing the reporting layer (pandas, scipy): the
    same list as the layer's."""
    import bench.report
    from bench.reporting.tables import LAYOUTS

    assert bench.report.LAYOUTS == tuple(LAYOUTS)
