"""Which differences are real: paired t-tests against each column's best, ≈ marks, average ranks."""
import numpy as np
import pytest
from scipy import stats

from bench.report import main as report_main
from bench.reporting.frames import COLUMNS, select_cells
from bench.reporting.significance import average_ranks, paired_p_value, paired_tests
from bench.reporting.tables import build_report


def record(method, stream, seed, nll, profile="smoke", memory=50, components=1, fid=None):
    r = {"status": "done", "profile_name": profile, "harness_version": "0.1.0", "stream": stream,
         "method": method, "seed": seed, "needs_task_boundaries": False, "nll": nll,
         "nll_best_component": nll - 1, "forgetting_nll": nll / 100, "bwt_nll": -nll / 100,
         "memory": memory, "components": components, "parameters": 1, "train_seconds": 1.0,
         "eval_seconds": 1.0, "profile": {"eval_k": 16, "eval_test_per_task": 64},
         "nll_matrix": [[nll, nll + 10], [nll + 2, nll]]}
    if fid is not None:
        r["fid"] = fid
    return r


# 5 seeds x 2 streams. mini: ocm best, first-k within noise of it, reservoir clearly worse (about
# +10 nats every seed), finetune far worse. split-mnist: first-k best, ocm within noise, reservoir
# and finetune tied (identical values) and clearly worse.
NLL = {
    ("ocm", "mini"): [90.0, 91.0, 89.5, 90.5, 90.2],
    ("first-k", "mini"): [90.8, 90.2, 90.9, 89.9, 90.6],
    ("reservoir", "mini"): [100.0, 101.2, 99.8, 100.5, 100.1],
    ("finetune", "mini"): [120.0, 121.0, 119.0, 120.5, 119.5],
    ("first-k", "split-mnist"): [80.0, 81.0, 79.5, 80.4, 80.1],
    ("ocm", "split-mnist"): [80.6, 80.3, 80.5, 79.9, 80.9],
    ("reservoir", "split-mnist"): [95.0, 96.0, 94.0, 95.5, 94.5],
    ("finetune", "split-mnist"): [95.0, 96.0, 94.0, 95.5, 94.5],
}
RECORDS = [record(m, s, seed, v) for (m, s), values in NLL.items() for seed, v in enumerate(values)]


def line_of(table, method):
    return next(line for line in table.splitlines() if line.lstrip("| ").startswith(method + " ")
                or line.lstrip("| ").startswith(method + "|"))


def test_p_values_are_scipys_paired_t_test():
    tests = paired_tests(select_cells(RECORDS, None), COLUMNS["nll"]).set_index(["stream", "method"])
    for stream, best in (("mini", "ocm"), ("split-mnist", "first-k")):
        assert tests.loc[(stream, best), "status"] == "best"
        for method in ("ocm", "first-k", "reservoir", "finetune"):
            if method == best:
                continue
            a, b = np.array(NLL[(method, stream)]), np.array(NLL[(best, stream)])
            d = a - b   # by hand: t = mean(d) / (sd(d) / sqrt(n)), two-sided, df = n - 1
            t = d.mean() / (d.std(ddof=1) / np.sqrt(len(d)))
            p = 2 * stats.t.sf(abs(t), len(d) - 1)
            row = tests.loc[(stream, method)]
            assert row["best"] == best and row["n_pairs"] == 5 and row["tested"]
            assert row["p_value"] == pytest.approx(p, rel=1e-9)
            assert row["p_value"] == pytest.approx(stats.ttest_rel(a, b).pvalue, rel=1e-12)
            assert row["mean_difference"] == pytest.approx(d.mean())
    assert tests.loc[("mini", "first-k"), "indistinguishable"]          # within noise: p >= 0.05
    assert tests.loc[("split-mnist", "ocm"), "indistinguishable"]
    for key in (("mini", "reservoir"), ("mini", "finetune"), ("split-mnist", "reservoir")):
        assert tests.loc[key, "p_value"] < 0.05 and not tests.loc[key, "indistinguishable"]


def test_marks_in_text_markdown_and_latex():
    text = build_report(RECORDS, "nll", "text")
    assert text.splitlines()[0].split() == ["method", "mini", "split-mnist", "avg", "rank"]
    first_k, ocm, reservoir = line_of(text, "first-k"), line_of(text, "ocm"), line_of(text, "reservoir")
    assert "90.48 ± 0.42 / 50 / 1 ≈" in first_k and "80.20 ± 0.55 / 50 / 1 *" in first_k
    assert "90.24 ± 0.56 / 50 / 1 *" in ocm and "80.44 ± 0.37 / 50 / 1 ≈" in ocm
    assert "≈" not in reservoir and "≈" not in line_of(text, "finetune") and "*" not in reservoir
    assert "two-sided paired t-test" in text and "alpha = 0.05" in text and "paired by seed" in text
    assert "5 pair(s)" in text and "mean ± std over 5 seed(s)" in text

    markdown = build_report(RECORDS, "nll", "markdown")
    assert "| 90.48 ± 0.42 / 50 / 1 ≈" in line_of(markdown, "first-k")
    assert "**90.24 ± 0.56 / 50 / 1**" in line_of(markdown, "ocm")
    assert "≈" not in line_of(markdown, "reservoir")

    latex = build_report(RECORDS, "nll", "latex")
    assert r"first-k & 90.48 $\pm$ 0.42 / 50 / 1 $\approx$ & \textbf{80.20 $\pm$ 0.55 / 50 / 1}" in latex
    assert r"ocm & \textbf{90.24 $\pm$ 0.56 / 50 / 1} & 80.44 $\pm$ 0.37 / 50 / 1 $\approx$" in latex
    assert r"$\approx$" not in line_of(latex, "reservoir") and "≈" not in latex


def test_average_ranks_are_exact_with_ties_and_missing_streams():
    ranks = average_ranks(select_cells(RECORDS, None), COLUMNS["nll"])
    assert list(ranks.index) == ["finetune", "first-k", "reservoir", "ocm"]   # registry order
    assert ranks["mini"].to_dict() == {"finetune": 4.0, "first-k": 2.0, "reservoir": 3.0, "ocm": 1.0}
    assert ranks["split-mnist"].to_dict() == {"finetune": 3.5, "first-k": 1.0, "reservoir": 3.5, "ocm": 2.0}
    assert ranks["avg_rank"].to_dict() == {"finetune": 3.75, "first-k": 1.5, "reservoir": 3.25, "ocm": 1.5}
    text = build_report(RECORDS, "nll", "text")
    assert line_of(text, "finetune").endswith("3.75") and line_of(text, "ocm").endswith("1.50")

    # finetune only on mini: ranked over the one stream it has, and the table says so
    partial = [r for r in RECORDS if not (r["method"] == "finetune" and r["stream"] == "split-mnist")]
    ranks = average_ranks(select_cells(partial, None), COLUMNS["nll"])
    assert ranks.loc["finetune", "avg_rank"] == 4.0 and ranks.loc["finetune", "n_streams"] == 1
    assert ranks.loc["reservoir", "avg_rank"] == 3.0     # now alone in third place on split-mnist
    text = build_report(partial, "nll", "text")
    assert line_of(text, "finetune").endswith("4.00 (1/2)") and "ranked on the k of N streams" in text

    # higher is better (BWT): rank 1 = highest mean
    bwt = average_ranks(select_cells(RECORDS, None), COLUMNS["bwt_nll"])
    assert bwt.loc["ocm", "mini"] == 1.0 and bwt.loc["finetune", "mini"] == 4.0


def test_rank_figure_is_written(tmp_path):
    from bench.reporting.figures import draw_ranks
    written = draw_ranks(select_cells(RECORDS, None), tmp_path, COLUMNS["nll"])
    assert [p.name for p in written] == ["ranks-nll.png"]
    assert written[0].read_bytes()[:4] == b"\x89PNG" and written[0].stat().st_size > 5000

    out = tmp_path / "run"
    (out / "records").mkdir(parents=True)
    import json
    for i, r in enumerate(RECORDS):
        (out / "records" / f"r{i}.json").write_text(json.dumps(r))
    assert report_main([str(out), "--figures"]) == 0
    assert (out / "figures" / "ranks-nll.png").stat().st_size > 5000


def test_fewer_than_two_common_seeds_is_not_tested():
    records = [record("ocm", "mini", 0, 90.0), record("ocm", "mini", 1, 91.0),
               record("reservoir", "mini", 1, 90.5), record("reservoir", "mini", 2, 90.6)]
    tests = paired_tests(select_cells(records, None), COLUMNS["nll"]).set_index("method")
    assert tests.loc["reservoir", "n_pairs"] == 1 and not tests.loc["reservoir", "tested"]
    assert np.isnan(tests.loc["reservoir", "p_value"]) and tests.loc["reservoir", "status"] == "not tested"
    for fmt in ("text", "markdown", "latex"):
        table = build_report(records, "nll", fmt)
        assert "≈" not in line_of(table, "reservoir") and r"$\approx$" not in line_of(table, "reservoir")
        assert "not tested (fewer than 2 seeds in common with the best)" in " ".join(table.split())
    assert "avg rank" not in build_report(records, "nll", "text")   # one stream: no rank column

    # one method tested, another not: the caption names the untested one
    mixed = records + [record("first-k", "mini", 0, 95.0), record("first-k", "mini", 1, 96.0)]
    text = build_report(mixed, "nll", "text")
    assert "not tested (fewer than 2 common seeds): reservoir on mini" in " ".join(text.split())
    assert "≈" not in line_of(text, "first-k")    # constant +5 every seed: distinguishable


def test_identical_values_ties_and_missing_fid():
    # identical per-seed values: p = 1, indistinguishable; constant nonzero offset: p = 0
    assert paired_p_value(np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 3.0])) == 1.0
    assert paired_p_value(np.array([1.5, 2.5, 3.5]), np.array([1.0, 2.0, 3.0])) == 0.0
    # a tie for the best: the first in registry order is the best, the other is marked
    records = [record(m, "mini", s, v) for m in ("first-k", "ocm") for s, v in enumerate([90.0, 92.0, 91.0])]
    records += [record("reservoir", "mini", s, v + 0.25) for s, v in enumerate([90.0, 92.0, 91.0])]
    tests = paired_tests(select_cells(records, None), COLUMNS["nll"]).set_index("method")
    assert tests.loc["first-k", "status"] == "best"
    assert tests.loc["ocm", "p_value"] == 1.0 and tests.loc["ocm", "indistinguishable"]
    assert tests.loc["reservoir", "p_value"] == 0.0 and not tests.loc["reservoir", "indistinguishable"]
    text = build_report(records, "nll", "text")
    assert line_of(text, "ocm").endswith("≈") and "≈" not in line_of(text, "reservoir")

    # FID absent for one method (NaN): no value, no test, no mark; a NaN seed drops its pair
    fids = {"ocm": [10.0, 11.0, 10.5, None], "first-k": [10.4, 10.9, 11.0, 10.6], "reservoir": [None] * 4}
    records = [record(m, "mini", s, 90.0 + s, fid=f) for m, values in fids.items() for s, f in enumerate(values)]
    tests = paired_tests(select_cells(records, None), COLUMNS["fid"]).set_index("method")
    assert tests.loc["ocm", "status"] == "best" and tests.loc["reservoir", "status"] == "no value"
    assert tests.loc["first-k", "n_pairs"] == 3
    assert tests.loc["first-k", "p_value"] == pytest.approx(
        stats.ttest_rel([10.4, 10.9, 11.0], [10.0, 11.0, 10.5]).pvalue)
    table = build_report(records, "fid", "text")
    assert line_of(table, "first-k").endswith("≈") and "≈" not in line_of(table, "reservoir")
    assert np.isnan(average_ranks(select_cells(records, None), COLUMNS["fid"]).loc["reservoir", "avg_rank"])
