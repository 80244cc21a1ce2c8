"""Reports and the regression gate on hand-made records with known means and stds."""
import json
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest

from bench.check import main as check_main
from bench.report import main as report_main
from bench.reporting.tables import build_report


def record(method, stream, seed, nll, profile="smoke", memory=50, components=1, boundaries=False):
    return {"status": "done", "profile_name": profile, "harness_version": "0.1.0", "stream": stream,
            "method": method, "seed": seed, "needs_task_boundaries": boundaries, "nll": nll,
            "nll_best_component": nll - 1, "forgetting_nll": nll / 100, "bwt_nll": -nll / 100,
            "memory": memory, "components": components, "parameters": 1, "train_seconds": 1.0,
            "eval_seconds": 1.0, "profile": {"eval_k": 16, "eval_test_per_task": 64},
            "nll_matrix": [[nll, nll + 10], [nll + 2, nll]]}


def write(folder, records):
    (folder / "records").mkdir(parents=True, exist_ok=True)
    for i, r in enumerate(records):
        (folder / "records" / f"r{i}_{r['method']}_{r['stream']}_{r['seed']}.json").write_text(json.dumps(r))


RECORDS = [record("reservoir", "mini", 0, 100.0), record("reservoir", "mini", 1, 102.0),
           record("ocm", "mini", 0, 95.0, memory=30), record("ocm", "mini", 1, 99.0, memory=30),
           record("joint", "split-mnist", 0, 90.0, boundaries=True),
           record("joint", "split-mnist", 1, 90.0, boundaries=True)]


def test_table_one_has_exact_means_stds_and_marks_the_best():
    text = build_report(RECORDS, "nll", "text")
    lines = text.splitlines()
    assert lines[0].split() == ["method", "mini", "split-mnist"]
    # registry order: reservoir, joint, ocm; std is the sample std over seeds
    assert "101.00 ± 1.41 / 50 / 1" in lines[2] and lines[2].startswith("reservoir")
    assert "97.00 ± 2.83 / 30 / 1 *" in lines[4] and lines[4].startswith("ocm")
    assert lines[3].startswith("joint†") and "90.00 ± 0.00 / 50 / 1 *" in lines[3]
    assert "mean ± std over 2 seed(s)" in text and "IWAE-16" in text


def test_latex_bolds_the_best_per_column_and_escapes():
    tex = build_report(RECORDS, "nll", "latex")
    assert r"\textbf{97.00 $\pm$ 2.83 / 30 / 1}" in tex
    assert r"\textbf{101.00" not in tex and r"joint$^\dagger$" in tex
    assert r"\toprule" in tex and r"\bottomrule" in tex and r"sum\_c" in tex


def test_forgetting_and_matrix_layouts():
    forgetting = build_report(RECORDS, "forgetting", "markdown")
    assert "**0.97 ± 0.03 / -0.97 ± 0.03**" in forgetting   # ocm: lowest forgetting
    matrix = build_report(RECORDS, "matrix", "text")
    assert "NLL[t, j] (nats, mean over 2 seed(s)): ocm on mini" in matrix
    assert "107.00" in matrix   # ocm's NLL[1, 2] = mean(105, 109)


def test_mixing_profiles_is_refused(tmp_path, capsys):
    write(tmp_path, RECORDS + [record("ocm", "mini", 2, 50.0, profile="quick")])
    assert report_main([str(tmp_path)]) == 2
    assert "never averaged together: quick, smoke; choose one with --profile" in capsys.readouterr().err
    assert report_main([str(tmp_path), "--profile", "smoke"]) == 0


def test_one_row_never_mixes_versions_of_its_numbers_but_rows_may_differ(tmp_path, capsys):
    """A release that changed one baseline reruns that baseline only: its rows carry the new
    version, the others keep theirs (the caption says which), but one row never averages two."""
    newer = [{**r, "numbers_version": "0.8.0"} for r in RECORDS if r["method"] == "ocm"]
    rows = [r for r in RECORDS if r["method"] != "ocm"] + newer
    text = build_report(rows)
    assert "(harness 0.1.0; ocm: 0.8.0)" in " ".join(text.split())   # the caption, unwrapped
    mixed = RECORDS + [{**record("ocm", "mini", 7, 50.0), "numbers_version": "0.8.0"}]
    write(tmp_path, mixed)
    assert report_main([str(tmp_path)]) == 2
    assert "ocm on mini has records of harness versions 0.1.0, 0.8.0" in capsys.readouterr().err


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex not installed (CI installs it)")
def test_latex_compiles(tmp_path):
    body = build_report(RECORDS, "nll", "latex") + build_report(RECORDS, "forgetting", "latex")
    doc = ("\\documentclass{article}\\usepackage{booktabs}\\usepackage[utf8]{inputenc}\n"
           "\\begin{document}\n" + body + "\\end{document}\n")
    (tmp_path / "t.tex").write_text(doc)
    run = subprocess.run(check=False, args=["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "t.tex"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout[-2000:]
    assert (tmp_path / "t.pdf").stat().st_size > 1000


def test_check_flags_a_regression_passes_an_improvement_and_reports_missing(tmp_path, capsys):
    base, ref = tmp_path / "base", tmp_path / "ref.csv"
    write(base, RECORDS)
    assert check_main([str(base), "--reference", str(ref), "--update"]) == 0
    assert check_main([str(base), "--reference", str(ref)]) == 0

    worse = tmp_path / "worse"   # ocm's NLL up by 3 nats: beyond the 2-nat tolerance
    write(worse, [dict(r, nll=r["nll"] + 3) if r["method"] == "ocm" else r for r in RECORDS])
    capsys.readouterr()
    assert check_main([str(worse), "--reference", str(ref)]) == 1
    err = capsys.readouterr().err
    assert "ocm on mini, nll: worse by 3.00 > tolerance 2.0" in err and "reservoir" not in err
    assert check_main([str(worse), "--reference", str(ref), "--tolerance", "nll=3.5"]) == 0

    better = tmp_path / "better"
    write(better, [dict(r, nll=r["nll"] - 10) for r in RECORDS])
    assert check_main([str(better), "--reference", str(ref)]) == 0

    missing = tmp_path / "missing"
    write(missing, [r for r in RECORDS if r["method"] != "joint"])
    capsys.readouterr()
    assert check_main([str(missing), "--reference", str(ref)]) == 2   # cannot be checked: bad input, not a regression
    err = capsys.readouterr().err
    assert "joint on split-mnist: missing from the results" in err
    assert err.splitlines()[-1].startswith("error: the results lack 1 cell(s) of the reference")

    one_seed = tmp_path / "one-seed"   # seed 1 of ocm lost: named, not judged, and the gate fails
    write(one_seed, [r for r in RECORDS if not (r["method"] == "ocm" and r["seed"] == 1)])
    capsys.readouterr()
    assert check_main([str(one_seed), "--reference", str(ref)]) == 2
    captured = capsys.readouterr()
    assert "FEWER SEEDS" in captured.out and "ok" in captured.out
    assert "ocm on mini: seed(s) 1 missing (has 0, the reference 0 1)" in captured.err


def test_figures_are_drawn(tmp_path):
    from bench.reporting.figures import draw_figures, seen_average
    from bench.reporting.frames import select_cells
    records = [dict(r, fid=10.0, fid_matrix=[[5.0, 9.0], [7.0, 3.0]]) for r in RECORDS]
    written = draw_figures(select_cells(records, None), tmp_path)
    names = sorted(p.name for p in written)
    assert names == ["mini-fid-curve.png", "mini-nll-curve.png", "mini-nll-matrix.png",
                     "split-mnist-fid-curve.png", "split-mnist-nll-curve.png", "split-mnist-nll-matrix.png"]
    assert all(p.read_bytes()[:4] == b"\x89PNG" and p.stat().st_size > 5000 for p in written)
    assert seen_average(np.array([[5.0, 9.0], [7.0, 3.0]])).tolist() == [5.0, 5.0]


def test_records_of_one_method_with_different_settings_are_never_averaged():
    """A default changed between two runs into one directory: two configs under one label (or two
    records of one seed) refuse to make a table, naming the method."""
    import copy

    from bench.reporting.frames import ReportError

    changed = copy.deepcopy(RECORDS)
    extra = copy.deepcopy(next(r for r in changed if r["method"] == "ocm"))
    extra["method_config"] = {"lambda1": 0.5}
    extra["seed"] = 99
    with pytest.raises(ReportError, match="ocm on .*different settings"):
        build_report(changed + [extra], "nll", "text")
    twice = copy.deepcopy(next(r for r in changed if r["method"] == "ocm"))
    with pytest.raises(ReportError, match="seed .*two records"):
        build_report(changed + [twice], "nll", "text")


def test_a_matched_budget_that_differs_by_seed_is_one_experiment():
    """reservoir[budget=match:ocm] gets ocm's peak memory of each seed: budgets that differ by seed
    are one row, not 'different settings'."""
    matched = [dict(record("reservoir", "mini", seed, 100.0 + seed), method_label="reservoir[budget=match:ocm]",
                    method_config={"budget": 700 + seed}, matched={"budget": "ocm"}) for seed in (0, 1)]
    text = build_report(RECORDS + matched, "nll", "text")
    assert "reservoir[budget=match:ocm]" in text and "100.50 ± 0.71" in text


def test_a_matched_budget_names_its_stream_where_the_streams_resolve_it_differently():
    """One entry per method in the caption, its resolved numbers per stream: 'reservoir[...]:
    budget = ocm's peak memory (1088)' and '(1578)' side by side would not say which is which."""
    from bench.reporting.captions import budget_protocol
    from bench.reporting.frames import select_cells

    def matched(stream, budget):
        return [dict(record("reservoir", stream, seed, 100.0 + seed), method_label="reservoir[budget=match:ocm]",
                     method_config={"budget": budget}, matched={"budget": "ocm"}) for seed in (0, 1)]

    text = budget_protocol(select_cells(matched("mini", 1088) + matched("split-mnist", 1578), None))
    assert text.count("reservoir[budget=match:ocm]: budget = ocm's peak memory") == 1
    assert "(mini 1088; split-mnist 1578)" in text
    same = budget_protocol(select_cells(matched("mini", 1088) + matched("split-mnist", 1088), None))
    assert "ocm's peak memory (1088)" in same


def test_numbers_computed_differently_are_never_put_side_by_side():
    """Provenance: a record whose FID used other classifier weights, or whose NLL another test
    binarization, refuses to share a table (the message names what differs); a record that only
    lacks newer provenance fields does not."""
    import copy

    from bench.reporting.frames import ReportError

    base = copy.deepcopy(RECORDS)
    for r in base:
        r["fid_info"] = {"extractor": "classifier", "weights_sha256": "aaa", "samples": 1000}
    other = copy.deepcopy(base)
    other[0]["fid_info"]["weights_sha256"] = "bbb"
    with pytest.raises(ReportError, match="FID/KID/PRDC numbers on mini were computed differently .*weights_sha256"):
        build_report(other, "nll", "text")
    newer = copy.deepcopy(base)
    newer[0]["fid_info"]["kid"] = {"subsets": 100}     # a newer record names more: no conflict
    build_report(newer, "nll", "text")
    seeds = copy.deepcopy(base)
    seeds[0]["nll_info"] = {"estimator": "IWAE-16", "test_images": None, "binarization_seed": 7, "dtype": "float32"}
    with pytest.raises(ReportError, match="NLL numbers on mini .*binarization_seed"):
        build_report(seeds, "nll", "text")


def test_the_gate_refuses_a_reference_computed_differently(tmp_path, capsys):
    """bench.check: a reference whose NLL came from another test binarization is bad input (exit
    2, naming what differs), not a regression; the same provenance passes."""
    write(tmp_path / "results", RECORDS)
    reference = tmp_path / "reference.csv"
    assert check_main([str(tmp_path / "results"), "--reference", str(reference), "--update"]) == 0
    frame = pd.read_csv(reference)
    assert frame["provenance"].notna().all()
    assert check_main([str(tmp_path / "results"), "--reference", str(reference)]) == 0
    frame["provenance"] = frame["provenance"].str.replace('"binarization_seed": 1001', '"binarization_seed": 5')
    frame.to_csv(reference, index=False)
    assert check_main([str(tmp_path / "results"), "--reference", str(reference)]) == 2
    assert "computed differently from the reference (binarization_seed" in capsys.readouterr().err


def test_a_method_far_off_the_others_scale_is_an_arrow_not_a_squashed_panel():
    from bench.reporting.figures import off_scale_fences
    # Table-1 mnist-fashion means: first-k as coded (683) is 450 nats beyond the rest
    means = [271.4, 683.3, 228.1, 182.2, 186.8, 171.7, 202.3, 199.6, 213.9, 208.2, 287.4, 189.8, 200.3]
    low, high = off_scale_fences(means)
    assert [m for m in means if not low <= m <= high] == [683.3]
    low, high = off_scale_fences([182.9, 180.9, 137.9, 105.1, 112.8, 100.3, 126.4, 123.5, 147.7])
    assert low < 100.3 and high > 182.9                    # split-mnist: nothing off the scale


@pytest.mark.parametrize("layout", ["nll", "nll_best_component", "fid", "kid", "forgetting", "clog", "matrix",
                                    "quality", "claims", "versus", "paper"])
def test_every_text_layout_of_the_table1_study_fits_a_terminal_and_wide_keeps_one_piece(layout, capsys):
    """The committed study (13 rows, 3 streams) is the widest report we ship: each layout fits 120
    columns, split into column groups led by the row label where it must; --wide keeps one table."""
    from bench import REPO_ROOT

    argv = {"versus": ["--versus", "ocm"], "paper": ["--paper"]}.get(layout, ["--metric", layout])
    assert report_main([str(REPO_ROOT / "reports" / "table1"), *argv]) == 0
    narrow = capsys.readouterr().out
    assert max(map(len, narrow.splitlines())) <= 120
    assert "reservoir[budget=match:ocm]" in narrow
    assert report_main([str(REPO_ROOT / "reports" / "table1"), *argv, "--wide"]) == 0
    wide = capsys.readouterr().out
    if layout in ("clog", "forgetting", "claims", "fid"):   # wider than a terminal in one piece
        assert max(map(len, wide.splitlines())) > 120
        # the same rows, each once per table: fewer tables in one piece than in groups
        assert wide.count("reservoir[budget=match:ocm]") < narrow.count("reservoir[budget=match:ocm]")
