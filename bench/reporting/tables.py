"""The tables: the run's table (bench.run) and the report's layouts (bench.report), all drawn by
the one renderer (render.py) with the one caption source (captions.py).

Report layouts (`--metric`):
- nll / nll_best_component / fid: the paper's Table 1: rows = methods, columns = streams, each cell
  "metric / memory / components", the metric as mean ± std over seeds; best per column bold
  (LaTeX, Markdown) or marked * (text); ≈ marks methods not distinguishable from the column's best
  (paired t-test over seeds, significance.py); † marks methods that need task boundaries; an
  "avg rank" column (rank per stream by mean, averaged) once some method is on 2+ streams.
- forgetting: NLL forgetting and BWT per stream; clog: the CLoG benchmark's AIQ / AFQ / FR (the
  summary layouts of bench/metrics, drawn by one function).
- matrix: the per-task NLL[t, j] matrix (mean over seeds), one table per stream and method.
- claims: the OCM paper's claims per stream (claims.py): holds / fails / cannot tell, with the
  mean paired difference and the paired t-test's p over seeds.
- `paper=True` (bench.report --paper): the nll layouts show the paper's Table-1 number beside
  each stream's column (paper.py).
- a sweep: rows = methods, columns = the swept setting's values.
Formats: text, markdown, csv (numbers, long form), latex (booktabs).
"""
from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from bench.metrics import LAYOUTS as SUMMARY_LAYOUTS
from bench.metrics import METRICS as REGISTERED
from bench.metrics import (
    SUMMARIES,
    SummaryLayout,
    metric_layouts,
    paper_metrics,
    primary_metric,
    provenance_layouts,
    provenance_metrics,
    report_layouts,
    run_table_columns,
)
from bench.reporting.captions import caption, ranks_note, significance_note
from bench.reporting.claims import claims_frame, claims_table
from bench.reporting.frames import (
    COLUMNS,
    Column,
    ReportError,
    best_methods,
    cells_frame,
    mean_matrix,
    registry_rank,
    select_cells,
    summary_frame,
)
from bench.reporting.paper import paper_text
from bench.reporting.render import (
    budget_text,
    emphasise,
    mark_same,
    mean_std,
    method_label,
    plain,
    render,
    stream_heading,
)
from bench.reporting.significance import (
    ALPHA,
    TEST_NAME,
    average_ranks,
    indistinguishable_pairs,
    paired_tests,
    shows_ranks,
)
from bench.reporting.sweep import sweep_frame, sweep_summary, sweep_table
from methods import paper_name
from streams.files import write_atomic

LAYOUTS = report_layouts()   # each metric's Table 1, the summary layouts, matrix, claims (bench/metrics)
PAPER_METRICS = [m.name for m in paper_metrics()]   # the paper's Table 1 is in log-likelihoods


def with_budget(row, numbers: bool = True) -> str:
    """The method's label, with the resolved numbers of a matched budget (one per seed)."""
    label = method_label(row["method"], row["needs_task_boundaries"])
    return label + (f" = {row['matched_budget']}" if numbers and isinstance(row.get("matched_budget"), str) else "")


RUN_TABLE_WIDTH = 120   # the run's table and its caption fit this many columns (unless --wide)


def run_table(cells: pd.DataFrame, wide: bool = False, width: int = RUN_TABLE_WIDTH, fmt_name: str = "text") -> str:
    """The run's table, one row per (profile, stream, method) in grid order: the metrics and
    summaries the registry places in it (bench/metrics: each metric's `run_table`), then the
    budgets (memory at the end and at its peak, gradient steps, components). A column shows when
    some row has a value (FID only with FID features; the best-component NLL, labelled, only with a
    mixture); the primary NLL is always the proper mixture likelihood. By default it fits `width`
    columns, its caption wrapped to it, leaving out the registry's droppable columns first;
    `wide`: every column, the wide ones included (every column is in the run's summary.csv either
    way). `fmt_name`: text (bench.run) or html (the page of bench.report --html, which shows the
    wide form: a page has room)."""
    summary = summary_frame(cells)
    several_profiles = summary["profile_name"].nunique() > 1
    streams = list(dict.fromkeys(summary["stream"]))
    rows = [r for _, r in summary.iterrows()]
    columns: dict[str, list[str]] = {}   # header -> one text per row
    droppable: list[tuple[int, str]] = []   # (rank, header) of the columns a narrow table may leave out

    def column(header: str, values, shown: bool = True) -> None:
        if shown:
            columns[header] = list(values)

    column("profile", (r["profile_name"] for r in rows), several_profiles)
    column("stream", (r["stream"] for r in rows), wide or len(streams) > 1)   # one stream: in the caption
    column("method", (with_budget(r) for r in rows))
    registered = run_table_columns(wide)
    for header, group in registered_columns(registered, wide).items():
        if not any(summary[f"{c.column}_mean"].notna().any() for c in group):
            continue
        shown_when = REGISTERED[group[0].metric].shown_when
        if shown_when is not None and not shown_when(summary):
            continue
        if len(group) == 1:
            c = group[0]
            column(header, (mean_std(r[f"{c.column}_mean"], r[f"{c.column}_std"],
                                     decimals_for(r[f"{c.column}_mean"], c.digits)) for r in rows))
        else:   # a group: the means, joined
            column(header, ("/".join("-" if pd.isna(r[f"{c.column}_mean"]) else
                                     f"{r[f'{c.column}_mean']:.{decimals_for(r[f'{c.column}_mean'], c.digits)}f}"
                                     for c in group) for r in rows))
        if group[0].run_table.drop is not None:
            droppable.append((group[0].run_table.drop, header))
    column("memory end/peak" if wide else "memory", (f"{budget_text(r['memory_mean'])}/{budget_text(r['memory_peak_mean'])}"
                               for r in rows))
    column("steps", (budget_text(r["gradient_steps_mean"]) for r in rows))
    column("images trained", (budget_text(r["images_trained_mean"]) for r in rows), wide)
    column("comp." if not wide else "components", (f"{r['components_mean']:.0f}" for r in rows))
    column("n", (str(int(r["n"])) for r in rows), wide)
    column("train s", (f"{r['train_seconds_mean']:.1f}" for r in rows), wide)
    column("eval s", (f"{r['eval_seconds_mean']:.1f}" for r in rows), wide)
    droppable = [(0, "steps"), (1, "memory"), *droppable]   # the budgets go first
    left_out = []
    if not wide and table_width(columns) > width:   # a matched budget's numbers: in the caption too
        columns["method"] = [with_budget(r, numbers=False) for r in rows]
    for _, header in sorted(droppable):   # long labels: drop the least needed columns
        if wide or table_width(columns) <= width:
            break
        if header in columns:
            left_out.append(header)
            del columns[header]
    headers = list(columns)
    table_rows = [list(values) for values in zip(*columns.values())]
    what = ("" if wide or len(streams) > 1 else f"On {streams[0]}: ") + (
            "NLL on the union of all test sets after the last task (± std over seeds"
            + ("; SE = its standard error over the test images, std/sqrt(images), mean over seeds" if wide else "")
            + "); forgetting" + ("/BWT" if wide else "") + " on the NLL[t, j] matrix"
            + ("; memory = samples stored at the end / at most" if any(h.startswith("memory") for h in headers) else "")
            + ("; steps = gradient steps" if "steps" in headers else "")
            + ("; images trained = rows in all training minibatches (replayed and generated included)" if wide
               else "; comp. = mixture components"))
    if not wide:
        wide_only = [c for c in run_table_columns(True)
                     if c.run_table.place == "wide" and summary[f"{c.column}_mean"].notna().any()]
        names = dict.fromkeys(c.run_table.hidden_as or c.run_table.group or c.run_table.header for c in wide_only)
        hidden = [*left_out, *names, "images trained", "seeds", "seconds"]
        what += f". Also in summary.csv and with --wide: {', '.join(hidden)}"
    if fmt_name != "text":
        return render([plain(h, fmt_name) for h in headers], [[plain(c, fmt_name) for c in row] for row in table_rows],
                      fmt_name, caption(cells, what, best_marked=False))
    return render(headers, table_rows, "text", caption(cells, what, best_marked=False),
                  width=None if wide else width)


def registered_columns(registered, wide: bool) -> dict[str, list]:
    """{header with its direction's arrow: the columns under it}: one column per metric or summary,
    one per group (P/R/D/C)."""
    out: dict[str, list] = {}
    for c in registered:
        spec = c.run_table
        name = spec.group or ((spec.wide_header or spec.header) if wide else spec.header)
        out.setdefault(f"{name} {'↓' if c.lower_is_better else '↑'}", []).append(c)
    return out


def run_summary(records, folder, wide: bool = False) -> str:
    """bench.run's summary of its grid: the run's table (returned), and every cell's numbers and their
    aggregates in `folder`/cells.csv and summary.csv; '' when no cell has finished."""
    cells = cells_frame(records)
    if not len(cells):
        return ""
    text = run_table(cells, wide=wide)
    write_atomic(Path(folder) / "cells.csv", cells.to_csv(index=False))
    write_atomic(Path(folder) / "summary.csv", summary_frame(cells).to_csv(index=False))
    return text


def table_width(columns: dict[str, list[str]]) -> int:
    """The width of a text table of these columns (tabulate's 'simple' format: headers padded by 2,
    2 spaces between columns)."""
    return sum(max(len(h) + 2, *(len(v) for v in values)) for h, values in columns.items()) + 2 * (len(columns) - 1)


def grid_table(summary: pd.DataFrame, cell_text, fmt_name: str, best: dict[str, str],
               same: set[tuple[str, str]] = frozenset(), extra: dict[str, dict[str, str]] | None = None,
               beside=None):
    """Rows = methods, columns = streams, cells from `cell_text(row)`; best cells emphasised,
    (stream, method) in `same` marked ≈; `extra` = {header: {method: text}} adds columns;
    `beside(method, stream)` (e.g. the paper's number) adds a column after each stream's."""
    streams = list(dict.fromkeys(summary["stream"]))
    methods = sorted(dict.fromkeys(summary["method"]), key=registry_rank)
    extra = extra or {}
    rows = []
    for method in methods:
        entries = summary[summary["method"] == method].set_index("stream")
        label = method_label(method, bool(entries["needs_task_boundaries"].iloc[0]))
        if beside is not None and paper_name(method):   # the paper's layout: its row names too
            label += f" ({paper_name(method)})"
        row = [plain(label, fmt_name)]
        for stream in streams:
            if stream not in entries.index:
                row.append("-")
            else:
                text = cell_text(entries.loc[stream])
                if best.get(stream) == method:
                    row.append(emphasise(text, fmt_name))
                else:
                    row.append(plain(mark_same(text) if (stream, method) in same else text, fmt_name))
            if beside is not None:
                row.append(plain(beside(method, stream), fmt_name))
        row += [plain(column.get(method, "-"), fmt_name) for column in extra.values()]
        rows.append(row)
    columns = [c for s in streams for c in ((s, "paper") if beside is not None else (s,))]
    return [plain(h, fmt_name) for h in ("method", *columns, *extra)], rows


def rank_column(ranks: pd.DataFrame) -> dict[str, str]:
    """{method: '1.50'}, with '(k/N)' for a method ranked on k of the N streams."""
    column = {}
    for method, r in ranks.iterrows():
        if r["n_streams"] == 0:
            continue
        partial = f" ({int(r['n_streams'])}/{int(r['n_streams_total'])})" if r["n_streams"] < r["n_streams_total"] else ""
        column[method] = f"{r['avg_rank']:.2f}{partial}"
    return column


def decimals_for(value: float, digits: int | None) -> int:
    """`digits`, or (None) the decimals that show 4 significant digits of `value`."""
    if digits is not None:
        return digits
    if pd.isna(value) or value == 0:
        return 4
    return max(0, 3 - math.floor(math.log10(abs(value))))


def table_one(cells: pd.DataFrame, metric: Column, fmt_name: str, paper: bool = False) -> str:
    summary = summary_frame(cells)
    n_values = set(summary["n"])

    def text(r):
        n = "" if len(n_values) == 1 else f" (n={int(r['n'])})"
        ci = ""
        digits = decimals_for(r[metric.column + "_mean"], metric.digits)
        if metric.interval and pd.notna(r.get(metric.interval + "_mean")):
            ci = f" [CI ±{r[metric.interval + '_mean']:.{digits}f}]"
        return (f"{mean_std(r[metric.column + '_mean'], r[metric.column + '_std'], digits)}{ci}{n} / "
                f"{r['memory_mean']:.0f} / {r['components_mean']:.0f}")
    tests = paired_tests(cells, metric, ALPHA)
    ranks = average_ranks(cells, metric)
    extra = {"avg rank": rank_column(ranks)} if shows_ranks(ranks) else {}
    beside = paper_text if paper and metric.column in PAPER_METRICS else None
    headers, rows = grid_table(summary, text, fmt_name, best_methods(summary, metric),
                               indistinguishable_pairs(tests), extra, beside)
    notes = significance_note(tests, TEST_NAME, ALPHA)
    if beside is not None:
        notes += ("; paper: the OCM paper's Table 1 for the method's paper row (NLL = minus its "
                  "IWAE-1000 log-likelihood, E = 100, all training data; memory / components as printed)")
    if metric.interval and summary[metric.interval + "_mean"].notna().any():
        halves = summary[metric.interval + "_mean"].dropna()
        samples = sorted({int(v) for v in cells["fid_samples"].dropna()}) if "fid_samples" in cells else []
        at = f" at {', '.join(f'{n:,}' for n in samples)} samples" if samples else ""
        notes += (f" [CI ±h]: the mean over seeds of the half-width of each seed's 95% bootstrap "
                  f"interval for {metric.label} (generated and real features resampled); the noise floor{at}: "
                  f"h is {halves.min():.{digits_of(metric)}f}-{halves.max():.{digits_of(metric)}f} here, so a gap "
                  f"under about h between two rows is within the estimator's noise whatever the seeds say")
    if extra:
        notes += ranks_note(metric.label, bool((ranks["n_streams"] < ranks["n_streams_total"]).any()))
    return render(headers, rows, fmt_name,
                  caption(cells, f"{metric.label} / memory (samples) / components", notes=notes))


def digits_of(metric: Column) -> int:
    return metric.digits if metric.digits is not None else 3


def summary_table(cells: pd.DataFrame, layout: SummaryLayout, fmt_name: str) -> str:
    """A summary layout (bench/metrics: forgetting and BWT, CLoG's AIQ / AFQ / FR): per stream and
    method, the layout's summaries of each of its metrics that the records have ('a / b; c / d'),
    the first metric's first summary deciding the best."""
    summary = summary_frame(cells)
    names = [name for name, s in SUMMARIES.items() if s.group == layout.name]
    shown = tuple(m for m in layout.metrics if m in cells and cells[m].notna().any())
    best = best_methods(summary, COLUMNS[f"{names[0]}_{shown[0]}"])

    def text(r):
        parts = []
        for m in shown:
            spec = REGISTERED[m]
            digits = spec.summary_digits if spec.summary_digits is not None else spec.digits
            parts.append(" / ".join(mean_std(r[f"{n}_{m}_mean"], r[f"{n}_{m}_std"], decimals_for(r[f"{n}_{m}_mean"], digits))
                                    for n in names))
        return "; ".join(parts)
    headers, rows = grid_table(summary, text, fmt_name, best)
    # what each packed cell holds, under its stream: 'NLL: forgetting / bwt; FID: forgetting / bwt'
    parts = "; ".join(f"{REGISTERED[m].summary_label}: {' / '.join(n.upper() if len(n) <= 3 else n for n in names)}"
                      for m in shown)
    headers = [headers[0], *[f"{h} ({plain(parts, fmt_name)})" for h in headers[1:]]]
    return render(headers, rows, fmt_name, caption(cells, layout.caption(shown)))


def matrix_tables(cells: pd.DataFrame, fmt_name: str) -> str:
    out = []
    for (stream, method), group in cells.groupby(["stream", "method"], sort=False):
        for metric in (m for m in REGISTERED.values() if m.matrix_table):
            matrix = mean_matrix(group, metric.matrix)
            if matrix is None:
                continue
            name, unit = metric.summary_label, metric.unit
            headers = [plain(h, fmt_name) for h in ["after task", *[f"task {j + 1}" for j in range(matrix.shape[1])]]]
            rows = [[str(t + 1), *[f"{v:.2f}" for v in row]] for t, row in enumerate(matrix)]
            what = f"{name}[t, j] ({unit + ', ' if unit else ''}mean over {len(group)} seed(s)): {method} on {stream}"
            out.append(render(headers, rows, fmt_name, caption(cells, what, best_marked=False)))
    return "\n".join(out)


def side_by_side_tables(cells: pd.DataFrame, provenance, fmt_name: str) -> str:
    """A family's metrics side by side (`--metric quality`: FID, KID and P/R/D/C), one table per
    stream: rows = methods, columns = the family's metrics (mean ± std over seeds), the best of
    each column emphasised (its direction from the registry)."""
    shown = [m.name for m in provenance_metrics(provenance) if cells[m.name].notna().any()]
    if not shown:
        raise ReportError(f"these records have no {provenance.name} numbers ({provenance.missing})")
    summary = summary_frame(cells)
    best_by_metric = {m: best_methods(summary, COLUMNS[m]) for m in shown}   # {metric: {stream: method}}
    out = []
    for stream, group in summary.groupby("stream", sort=False):
        group = group.set_index("method")
        best = {m: best_by_metric[m].get(stream) for m in shown}
        rows = []
        for method in sorted(group.index, key=registry_rank):
            r = group.loc[method]
            row = [plain(method_label(method, bool(r["needs_task_boundaries"])), fmt_name)]
            for m in shown:
                digits = decimals_for(r[f"{m}_mean"], COLUMNS[m].digits)
                text = "-" if pd.isna(r[f"{m}_mean"]) else mean_std(r[f"{m}_mean"], r[f"{m}_std"], digits)
                row.append(emphasise(text, fmt_name) if best[m] == method else plain(text, fmt_name))
            rows.append(row)
        arrows = [f"{COLUMNS[m].label} {'↓' if COLUMNS[m].lower_is_better else '↑'}" for m in shown]
        headers = [plain(h, fmt_name) for h in ("method", *arrows)]
        out.append(stream_heading(stream, fmt_name) + render(headers, rows, fmt_name, caption(
            cells[cells["stream"] == stream], f"{provenance.title.removesuffix(' per stream')} on {stream} "
            f"after the last task ({', '.join(COLUMNS[m].label for m in shown)}; arrows give the better direction)")))
    return "\n".join(out)


def build_report(records: list[dict], layout: str | None = None, fmt_name: str = "text",
                 profile: str | None = None, paper: bool = False) -> str:
    """`layout`: one of LAYOUTS (default: the primary metric's Table 1). `paper`: the layouts of
    the paper's metrics get the OCM paper's Table-1 numbers beside each stream's column."""
    layout = layout or primary_metric().name
    cells = select_cells(records, profile)
    if layout in provenance_layouts() and fmt_name != "csv":
        return side_by_side_tables(cells, provenance_layouts()[layout], fmt_name)
    if layout == "claims":
        return claims_frame(cells).to_csv(index=False) if fmt_name == "csv" else claims_table(cells, fmt_name)
    if fmt_name == "csv":
        return summary_frame(cells).to_csv(index=False)
    if layout in metric_layouts():
        if cells[layout].isna().all():
            metric = REGISTERED[layout]
            hint = metric.provenance.missing if metric.provenance is not None else ""
            raise ReportError(f"these records have no {metric.summary_label}" + (f" ({hint})" if hint else ""))
        return table_one(cells, COLUMNS[layout], fmt_name, paper)
    if layout in SUMMARY_LAYOUTS:
        return summary_table(cells, SUMMARY_LAYOUTS[layout], fmt_name)
    if layout == "matrix":
        return matrix_tables(cells, fmt_name)
    raise ReportError(f"unknown layout '{layout}'; valid: {', '.join(LAYOUTS)}")


def sweep_metric(layout: str) -> Column:
    metric = COLUMNS.get(layout)
    if metric is None:
        raise ReportError(f"a sweep is laid out for one metric: {', '.join(COLUMNS)}, not '{layout}'")
    return metric


def sweep_report(records: list[dict], key: str, layout: str, fmt_name: str) -> str:
    """The sweep over `key` as a table: rows = methods, columns = the key's values."""
    metric = sweep_metric(layout)
    cells = sweep_frame(records, key)
    if fmt_name == "csv":
        return sweep_summary(cells, metric.column).to_csv(index=False)
    headers, rows = sweep_table(cells, metric.column)
    rows = [[plain(c, fmt_name) for c in row] for row in rows]
    what = f"{metric.label} against {key} ({'lower' if metric.lower_is_better else 'higher'} is better)"
    return render([plain(h, fmt_name) for h in headers], rows, fmt_name,
                  caption(cells, what, best_marked=False))
