"""The Table-1 report: the paper's claims tested per stream, and the paper's numbers beside ours."""
import subprocess

import numpy as np
import pytest
from scipy import stats

from bench.reporting.claims import CANNOT_TELL, FAILS, HOLDS, NOT_RUN, Claim, claims_frame
from bench.reporting.frames import ReportError, select_cells
from bench.reporting.tables import build_report


def record(method, stream, seed, nll, memory=500, components=1, needs_boundaries=False):
    return {"status": "done", "profile_name": "quick", "harness_version": "0.7.0", "stream": stream,
            "method": method.partition("[")[0], "method_label": method, "seed": seed,
            "needs_task_boundaries": needs_boundaries, "nll": nll, "nll_best_component": nll - 1,
            "forgetting_nll": 1.0, "bwt_nll": -1.0, "memory": memory, "components": components,
            "parameters": 1, "train_seconds": 1.0, "eval_seconds": 1.0,
            "profile": {"eval_k": 100, "eval_test_per_task": 500}, "nll_matrix": [[nll]]}


# split-mnist: ocm-dynamic 5 nats better than ocm every seed (holds); first-k 8 nats better than
# ocm (the claim ocm < first-k fails); ocm-iw50 within noise of ocm (cannot tell).
# split-fashion: the same methods; mnist-fashion: only ocm and ocm-dynamic (others not run).
OCM = {"split-mnist": [125.0, 127.0, 126.0], "split-fashion": [250.0, 252.0, 251.0],
       "mnist-fashion": [220.0, 221.0, 219.0]}
NOISE = [0.9, -1.1, 0.4]


def records():
    out = []
    for stream, base in OCM.items():
        for seed, v in enumerate(base):
            out.append(record("ocm", stream, seed, v))
            out.append(record("ocm-dynamic", stream, seed, v - 5.0 + 0.1 * seed, components=4))
            if stream != "mnist-fashion":
                out.append(record("first-k", stream, seed, v - 8.0 + 0.2 * seed, memory=3000))
                out.append(record("ocm-iw50", stream, seed, v + NOISE[seed]))
    return out


def test_verdicts_hold_fail_and_cannot_tell_with_the_paired_t_test():
    claims = (Claim("ocm-dynamic", "ocm", "paper"), Claim("ocm", "first-k", "paper"),
              Claim("ocm-iw50", "ocm", "paper"), Claim("cndpm-paper", "ocm", "paper"))
    frame = claims_frame(select_cells(records(), None), claims).set_index(["claim", "stream"])
    row = frame.loc[("ocm-dynamic < ocm", "split-mnist")]
    assert row["verdict"] == HOLDS and row["n_pairs"] == 3
    assert row["mean_difference"] == pytest.approx(-4.9)
    d = np.array([-5.0, -4.9, -4.8])
    assert row["p_value"] == pytest.approx(stats.ttest_1samp(d, 0).pvalue)
    assert row["paper_difference"] == pytest.approx(115.89 - 132.07)
    assert frame.loc[("ocm < first-k", "split-fashion"), "verdict"] == FAILS
    assert frame.loc[("ocm < first-k", "split-fashion"), "mean_difference"] == pytest.approx(7.8)
    noise = frame.loc[("ocm-iw50 < ocm", "split-mnist")]
    assert noise["verdict"] == CANNOT_TELL and noise["p_value"] > 0.05
    assert frame.loc[("ocm < first-k", "mnist-fashion"), "verdict"] == NOT_RUN
    assert frame.loc[("cndpm-paper < ocm", "split-mnist"), "verdict"] == NOT_RUN
    # one seed: no test, whatever the difference
    single = claims_frame(select_cells([r for r in records() if r["seed"] == 0], None), claims)
    assert set(single[single["claim"] == "ocm-dynamic < ocm"]["verdict"]) == {CANNOT_TELL}


@pytest.mark.parametrize("fmt", ["text", "markdown", "latex"])
def test_the_table1_layout_with_three_streams_missing_cells_and_the_papers_numbers(fmt):
    text = build_report(records(), "nll", fmt, paper=True)
    assert "132.07 / 1.6K / 1" in text and "115.89 / 1.1K / 5" in text and "150.79 / 3.0K / 1" in text
    assert "247.90 / 1.6K / 1" in text          # ocm-iw50 on split-fashion: the paper's number
    assert "ocm-iw50 (VAE-IWVAE50-OCM)" in text  # the paper's row names beside ours
    assert text.count("paper") >= 3             # one paper column per stream
    iw50 = next(line for line in text.splitlines() if "ocm-iw50" in line and "paper" not in line.lower()[:5])
    assert "-" in iw50                          # no mnist-fashion cell: a dash, not a gap
    claims = build_report(records(), "claims", fmt)
    assert "holds" in claims and "fails" in claims and "cannot tell" in claims and "not run" in claims


def test_the_latex_tables_compile(tmp_path):
    import shutil

    if shutil.which("pdflatex") is None:
        pytest.skip("pdflatex not installed (CI installs it)")
    body = (build_report(records(), "nll", "latex", paper=True) + build_report(records(), "claims", "latex")
            + build_report(with_quality(records()), "quality", "latex"))
    (tmp_path / "t.tex").write_text("\\documentclass{article}\\usepackage{booktabs}\\usepackage[margin=1cm,"
                                    "landscape]{geometry}\\begin{document}" + body + "\\end{document}")
    done = subprocess.run(["pdflatex", "-interaction=nonstopmode", "t.tex"], cwd=tmp_path,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-2000:]
    assert "Overfull \\hbox" not in (tmp_path / "t.log").read_text()   # wide tables shrink their font to fit
    assert "ocm-dynamic $<$ ocm" in body                      # a bare < prints as an inverted ! in OT1


def with_quality(rs):
    """The records with sample quality: ocm-dynamic has the lower FID, ocm the higher precision."""
    for r in rs:
        better = r["method"] == "ocm-dynamic"
        r.update(fid=100.0 + r["seed"] if better else 150.0 + r["seed"], kid=10.0, precision=0.8 if better else 0.9,
                 recall=0.5, density=0.7, coverage=0.3)
    return rs


@pytest.mark.parametrize("fmt", ["text", "markdown", "latex"])
def test_sample_quality_is_one_table_per_stream_with_each_columns_own_direction(fmt):
    text = build_report(with_quality(records()), "quality", fmt)
    assert text.count("Sample quality on") == 3             # split-mnist, split-fashion, mnist-fashion
    best = {"text": lambda t: f"{t} *", "markdown": lambda t: f"**{t}**", "latex": lambda t: f"\\textbf{{{t}}}"}[fmt]
    pm = " $\\pm$ " if fmt == "latex" else " ± "
    assert best(f"101.00{pm}1.00") in text                 # ocm-dynamic's FID: lower is better
    assert best(f"0.900{pm}0.000") in text                  # ocm's precision: higher is better
    assert best(f"151.00{pm}1.00") not in text
    with pytest.raises(ReportError, match="no FID/KID/PRDC numbers"):
        build_report(records(), "quality", fmt)


def test_holms_correction_and_the_mark_of_a_verdict_that_survives_it():
    from bench.reporting.claims import HOLM_MARK, holm
    adjusted = holm(np.array([0.01, 0.04, 0.03, np.nan]))
    assert adjusted[:3] == pytest.approx([0.03, 0.06, 0.06]) and np.isnan(adjusted[3])
    frame = claims_frame(select_cells(records(), None)).set_index(["claim", "stream"])
    tested = frame["p_value"].notna()
    assert (frame.loc[tested, "p_holm"] >= frame.loc[tested, "p_value"]).all()
    text = build_report(records(), "claims", "text")
    # ocm-dynamic's 5-nat lead with a 0.1 spread survives the correction; ocm-iw50's noise is no verdict
    assert f"holds{HOLM_MARK}: d = -4.90" in text and f"cannot tell{HOLM_MARK}" not in text


def test_a_long_latex_cell_stacks_at_spaces_outside_math_and_braces():
    from bench.reporting.render import (
        LATEX_CELL_LINE,
        STACK_OPEN,
        latex_cell_width,
        latex_escape,
        latex_stacked,
    )

    cell = latex_escape("holds‡: d = -4.90 [-5.15, -4.65], p < 0.001 (paper -16.18)")
    stacked = latex_stacked(cell)
    assert stacked.startswith(STACK_OPEN) and latex_cell_width(stacked) <= LATEX_CELL_LINE
    lines = stacked.removeprefix(STACK_OPEN).removesuffix(r"\end{tabular}").split(r" \\ ")
    assert " ".join(lines) == cell   # nothing lost, and no line ends inside $...$ or {...}
    assert all(line.count("$") % 2 == 0 and line.count("{") == line.count("}") for line in lines)
    assert latex_stacked("short") == "short" and latex_stacked(r"\textbf{" + "x " * 40 + "}").startswith(r"\textbf")
    escaped = latex_escape("a config {lr: 1e-4} } with " + "word " * 12)   # escaped braces are characters
    assert latex_cell_width(latex_stacked(escaped)) <= LATEX_CELL_LINE


def test_the_power_table_counts_seeds_only_where_the_claim_ran():
    frame = claims_frame(select_cells(records(), None), [Claim("ocm-iw50", "ocm", "paper")])
    from bench.reporting.claims import power_table

    row = next(line for line in power_table(frame, "text").splitlines() if line.startswith("ocm-iw50"))
    assert " 3 " in row and "0/3" not in row and "0," not in row   # mnist-fashion did not run it
