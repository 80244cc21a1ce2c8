"""`python -m bench.report DIR`: paper tables from a results directory.

Layouts (`--metric`):
- nll / nll_best_component: the paper's Table 1: rows = methods, columns = streams, each cell
  "NLL / memory / components", NLL as mean ± std over seeds; best per column bold (LaTeX,
  Markdown) or marked * (text); † marks methods that need task boundaries.
- forgetting: NLL forgetting and BWT per stream.
- matrix: the per-task NLL[t, j] matrix (mean over seeds), one table per stream and method.
`--figures` also draws heatmaps and curves (bench/reporting/figures.py) into DIR/figures/.
Formats: text, markdown, csv (numbers, long form), latex (booktabs; compiles standalone with
\\usepackage{booktabs}). Records of different profiles or harness versions are never averaged
together: pick one with --profile, or the report refuses.
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from tabulate import tabulate

from bench.execution.store import ResultStore
from bench.reporting.sweep import SweepError, sweep_frame, sweep_summary, sweep_table
from bench.reporting.tables import BOUNDARY_MARK, budget_notes, cells_frame, mean_std, registry_rank, summary_frame

BEST_MARK = "*"


class ReportError(ValueError):
    pass


@dataclass(frozen=True)
class Metric:
    column: str
    label: str
    lower_is_better: bool


METRICS = {
    "nll": Metric("nll", "NLL (nats)", True),
    "nll_best_component": Metric("nll_best_component", "best-component NLL (nats)", True),
    "forgetting_nll": Metric("forgetting_nll", "NLL forgetting (nats)", True),
    "bwt_nll": Metric("bwt_nll", "NLL BWT (nats)", False),
    "fid": Metric("fid", "FID", True),
    "forgetting_fid": Metric("forgetting_fid", "FID forgetting", True),
    "bwt_fid": Metric("bwt_fid", "FID BWT", False),
}
LAYOUTS = ["nll", "nll_best_component", "fid", "forgetting", "matrix"]


# ----------------------------------------------------------------------------- selection
def select_cells(records: list[dict], profile: str | None) -> pd.DataFrame:
    cells = cells_frame(records)
    if cells.empty:
        raise ReportError("no finished records in this directory")
    if profile is not None:
        cells = cells[cells["profile_name"] == profile]
        if cells.empty:
            raise ReportError(f"no records of profile '{profile}'")
    groups = sorted({f"{p} (harness {v})" for p, v in zip(cells["profile_name"], cells["harness_version"])})
    if len(groups) > 1:
        raise ReportError("records from different profiles or harness versions are never averaged "
                          f"together: {', '.join(groups)}; choose one with --profile")
    return cells.sort_values(["stream", "method", "seed"], key=lambda c: c.map(registry_rank),
                             kind="stable")


# ----------------------------------------------------------------------------- formatting
def latex_escape(text: str) -> str:
    for a, b in (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("$", r"\$"),
                 ("#", r"\#"), ("_", r"\_"), ("{", r"\{"), ("}", r"\}"), ("~", r"\textasciitilde{}"),
                 ("^", r"\textasciicircum{}"), ("†", r"$^\dagger$"), ("±", r"$\pm$")):
        text = text.replace(a, b)
    return text


def emphasise(text: str, fmt_name: str) -> str:
    """The cell's text escaped for the format, and marked as best."""
    if fmt_name == "latex":
        return f"\\textbf{{{latex_escape(text)}}}"
    return f"**{text}**" if fmt_name == "markdown" else f"{text} {BEST_MARK}"


def plain(text: str, fmt_name: str) -> str:
    return latex_escape(text) if fmt_name == "latex" else text


def method_label(method: str, needs_boundaries: bool) -> str:
    return method + (BOUNDARY_MARK if needs_boundaries else "")


def best_methods(summary: pd.DataFrame, metric: Metric) -> dict[str, str]:
    """Per stream, the method with the best mean."""
    best = {}
    for stream, group in summary.groupby("stream", sort=False):
        values = group[f"{metric.column}_mean"]
        if values.notna().any():
            idx = values.idxmin() if metric.lower_is_better else values.idxmax()
            best[stream] = group.loc[idx, "method"]
    return best


def grid_table(summary: pd.DataFrame, cell_text, fmt_name: str, best: dict[str, str]):
    """Rows = methods, columns = streams, cells from `cell_text(row)`; best cells emphasised."""
    streams = list(dict.fromkeys(summary["stream"]))
    methods = sorted(dict.fromkeys(summary["method"]), key=registry_rank)
    rows = []
    for method in methods:
        entries = summary[summary["method"] == method].set_index("stream")
        label = method_label(method, bool(entries["needs_task_boundaries"].iloc[0]))
        row = [plain(label, fmt_name)]
        for stream in streams:
            if stream not in entries.index:
                row.append("-")
                continue
            text = cell_text(entries.loc[stream])
            row.append(emphasise(text, fmt_name) if best.get(stream) == method else plain(text, fmt_name))
        rows.append(row)
    return [plain(h, fmt_name) for h in ("method", *streams)], rows


def caption(cells: pd.DataFrame, what: str) -> str:
    profile = cells["profile_name"].iloc[0]
    k = int(cells["eval_k"].iloc[0])
    per_task = cells["eval_test_per_task"].iloc[0]
    images = "all test images" if per_task is None or pd.isna(per_task) else f"up to {int(per_task)} test images per task"
    seeds = sorted(cells["seed"].unique())
    return (f"{what}. Profile {profile} (harness {cells['harness_version'].iloc[0]}); NLL = IWAE-{k} "
            f"estimate of -log p(x) in nats on {images}, test sets binarized once with a fixed seed "
            f"per stream, training data dynamically binarized; mixtures use -log (1/C) sum_c p_c(x); "
            f"mean ± std over {len(seeds)} seed(s) ({', '.join(map(str, seeds))}); "
            f"{BOUNDARY_MARK} needs task boundaries; best per column in bold/{BEST_MARK}.{fid_protocol(cells)}"
            f"{budget_protocol(cells)}")


def budget_protocol(cells: pd.DataFrame) -> str:
    """The memory budgets (matched ones with their resolved numbers) and the paper's names."""
    budgets, named = budget_notes(summary_frame(cells))
    return (f" Budgets: {budgets}." if budgets else "") + (f" In the OCM paper's tables: {named}." if named else "")


def fid_protocol(cells: pd.DataFrame) -> str:
    if cells["fid"].isna().all():
        return ""
    extractors = ", ".join(sorted({str(e) for e in cells["fid_extractor"].dropna()}))
    samples = ", ".join(sorted({str(int(n)) for n in cells["fid_samples"].dropna()}))
    return (f" FID: Frechet distance (float64) between {extractors} features of N = {samples} "
            "unconditional binarized samples and the binarized test images (per task: each task's "
            "test set; overall: all test sets).")


def render(headers, rows, fmt_name: str, title: str) -> str:
    """Headers and rows come already escaped/emphasised for `fmt_name`."""
    if fmt_name == "latex":
        spec = "l" + "c" * (len(headers) - 1)
        lines = [r"\begin{table}[t]", r"\centering", f"\\caption{{{latex_escape(title)}}}",
                 f"\\begin{{tabular}}{{{spec}}}", r"\toprule", " & ".join(headers) + r" \\",
                 r"\midrule"]
        for row in rows:
            lines.append(" & ".join(row) + r" \\")
        lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
        return "\n".join(lines) + "\n"
    table = tabulate(rows, headers=headers, tablefmt="github" if fmt_name == "markdown" else "simple",
                     disable_numparse=True)
    return f"{table}\n\n{title}\n"


# -------------------------------------------------------------------------------- layouts
def table_one(cells: pd.DataFrame, metric: Metric, fmt_name: str) -> str:
    summary = summary_frame(cells)
    n_values = set(summary["n"])
    def text(r):
        n = "" if len(n_values) == 1 else f" (n={int(r['n'])})"
        return (f"{mean_std(r[metric.column + '_mean'], r[metric.column + '_std'])}{n} / "
                f"{r['memory_mean']:.0f} / {r['components_mean']:.0f}")
    headers, rows = grid_table(summary, text, fmt_name, best_methods(summary, metric))
    return render(headers, rows, fmt_name, caption(cells, f"{metric.label} / memory (samples) / components"))


def forgetting_table(cells: pd.DataFrame, fmt_name: str) -> str:
    summary = summary_frame(cells)
    best = best_methods(summary, METRICS["forgetting_nll"])
    has_fid = bool(cells["fid"].notna().any())
    def text(r):
        nll = (f"{mean_std(r['forgetting_nll_mean'], r['forgetting_nll_std'])} / "
               f"{mean_std(r['bwt_nll_mean'], r['bwt_nll_std'])}")
        if not has_fid:
            return nll
        return (f"{nll}; {mean_std(r['forgetting_fid_mean'], r['forgetting_fid_std'], 1)} / "
                f"{mean_std(r['bwt_fid_mean'], r['bwt_fid_std'], 1)}")
    headers, rows = grid_table(summary, text, fmt_name, best)
    what = ("NLL forgetting (lower is better) / BWT (higher is better), nats, on the NLL[t, j] matrix: "
            "f_j = NLL[T, j] - min_{j<=l<T} NLL[l, j], BWT = mean_j (NLL[j, j] - NLL[T, j])"
            + ("; then the same on the FID[t, j] matrix" if has_fid else "") + "; bold: lowest NLL forgetting")
    return render(headers, rows, fmt_name, caption(cells, what))


def mean_matrix(group: pd.DataFrame, column: str) -> np.ndarray | None:
    """The per-seed matrices of `column` averaged over seeds (None where a record lacks it)."""
    values = group[column].tolist()
    if any(v is None or (isinstance(v, float) and np.isnan(v)) for v in values):
        return None
    return np.mean(np.array(values, dtype=float), axis=0)


def matrix_tables(cells: pd.DataFrame, fmt_name: str) -> str:
    out = []
    for (stream, method), group in cells.groupby(["stream", "method"], sort=False):
        for column, name, unit in (("nll_matrix", "NLL", "nats"), ("fid_matrix", "FID", "")):
            matrix = mean_matrix(group, column)
            if matrix is None:
                continue
            headers = [plain(h, fmt_name) for h in ["after task", *[f"task {j + 1}" for j in range(matrix.shape[1])]]]
            rows = [[str(t + 1), *[f"{v:.2f}" for v in row]] for t, row in enumerate(matrix)]
            what = f"{name}[t, j] ({unit + ', ' if unit else ''}mean over {len(group)} seed(s)): {method} on {stream}"
            out.append(render(headers, rows, fmt_name, caption(cells, what)))
    return "\n".join(out)


def csv_table(cells: pd.DataFrame) -> str:
    return summary_frame(cells).to_csv(index=False)


def build_report(records: list[dict], layout: str = "nll", fmt_name: str = "text",
                 profile: str | None = None) -> str:
    cells = select_cells(records, profile)
    if fmt_name == "csv":
        return csv_table(cells)
    if layout in ("nll", "nll_best_component", "fid"):
        if layout == "fid" and cells["fid"].isna().all():
            raise ReportError("these records have no FID (run with --fid-features classifier|inception)")
        return table_one(cells, METRICS[layout], fmt_name)
    if layout == "forgetting":
        return forgetting_table(cells, fmt_name)
    return matrix_tables(cells, fmt_name)


def sweep_report(records: list[dict], key: str, layout: str, fmt_name: str, figures: Path | None) -> str:
    """The sweep over `key` as a table (rows = methods, columns = values) and, with `figures`, the
    metric against the value."""
    metric = METRICS.get(layout)
    if metric is None:
        raise ReportError(f"a sweep is laid out for one metric: {', '.join(METRICS)}, not '{layout}'")
    cells = sweep_frame(records, key)
    if fmt_name == "csv":
        return sweep_summary(cells, metric.column).to_csv(index=False)
    headers, rows = sweep_table(cells, metric.column)
    if figures is not None:
        from bench.reporting.figures import draw_sweep

        for path in draw_sweep(cells, key, figures, metric.column):
            print(f"wrote {path}", file=sys.stderr)
    rows = [[plain(c, fmt_name) for c in row] for row in rows]
    what = f"{metric.label} against {key} ({'lower' if metric.lower_is_better else 'higher'} is better)"
    return render([plain(h, fmt_name) for h in headers], rows, fmt_name, caption(cells, what))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.report", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("results", help="results directory (as written by bench.run --out)")
    p.add_argument("--format", choices=["text", "markdown", "csv", "latex"], default="text")
    p.add_argument("--metric", choices=LAYOUTS, default="nll")
    p.add_argument("--profile", default=None, help="only records of this profile")
    p.add_argument("--out", default=None, help="write to this file instead of stdout")
    p.add_argument("--figures", action="store_true",
                   help="also draw NLL heatmaps, NLL/FID curves and memory/component timelines per "
                        "stream (with --sweep: the metric against the swept setting) into DIR/figures/")
    p.add_argument("--sweep", default=None, metavar="KEY",
                   help="lay out the records of a sweep over KEY (bench.run --sweep KEY=...): rows = "
                        "methods (and other settings that vary), columns = KEY's values")
    args = p.parse_args(argv)
    records = ResultStore(args.results).records()
    try:
        if args.sweep:
            text = sweep_report(records, args.sweep, args.metric, args.format,
                                Path(args.results) / "figures" if args.figures else None)
        else:
            if args.figures:
                from bench.reporting.figures import draw_figures, draw_timelines

                cells = select_cells(records, args.profile)
                chosen = [r for r in records if r.get("profile_name") in set(cells["profile_name"])]
                for path in (draw_figures(cells, Path(args.results) / "figures")
                             + draw_timelines(chosen, Path(args.results) / "figures")):
                    print(f"wrote {path}", file=sys.stderr)
            text = build_report(records, args.metric, args.format, args.profile)
    except (ReportError, SweepError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text)
    else:
        print(text, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
