"""The metric registry: each metric family is declared once, in its own module here, and every layer
reads the declaration (torch-fidelity's registry, as this harness needs it).

    nll.py        NLL (IWAE), its best-component score, their per-task matrices; provenance `nll_info`
    fid.py        FID; the sample-quality provenance `fid_info` it shares with KID and PRDC
    kid.py        KID
    prdc.py       precision, recall, density, coverage
    continual.py  forgetting and BWT of a per-task matrix (written into records)
    clog.py       the CLoG benchmark's AIQ, AFQ and FR of a per-task matrix (computed when read)

What reads it: the evaluation (bench/evaluation/cell.py runs each family's `Evaluation`, writes the
recorded summaries), the reports (bench/reporting/frames.py: columns, labels, directions, digits,
provenance; tables.py and captions.py: the layouts), the gate (bench/check.py: the checked metrics
and their tolerances), bench.report's `--metric` choices and docs/metrics.md's index (a test keeps
it equal to `index_markdown()`).

Adding a summary of the per-task matrices is one module here (`register_summary`, and a
`register_layout` for its table) plus its test: every module of this package is imported. Adding a
metric measured while a cell runs is its module here (`register_metric`, and an `Evaluation` naming
the class that computes it) plus that class in bench/evaluation and its test. Pure Python: importing
this package imports neither numpy nor torch.
"""
from __future__ import annotations

from bench.metrics.registry import (
    EVALUATIONS,
    EXTRACTORS,
    LAYOUTS,
    METRICS,
    SUMMARIES,
    Column,
    Evaluation,
    Extractor,
    Metric,
    MetricRegistrationError,
    Provenance,
    RunColumn,
    Summary,
    SummaryLayout,
    register_evaluation,
    register_extractor,
    register_layout,
    register_metric,
    register_summary,
    without_seeds,
)


# ------------------------------------------------------------------------------- derived views
def primary_metric() -> Metric:
    """The number a cell is judged by (declared `primary`: the NLL)."""
    primary = [m for m in METRICS.values() if m.primary]
    if len(primary) != 1:
        raise MetricRegistrationError(f"exactly one metric is primary, not {len(primary)}")
    return primary[0]


def matrix_metrics() -> list[Metric]:
    return [m for m in METRICS.values() if m.matrix]


def summary_columns(metric: Metric) -> list[tuple[Summary, str]]:
    """(summary, column) of every registered summary of `metric`'s matrix: the recorded ones it
    declares, and every summary computed when records are read."""
    if not metric.matrix:
        return []
    return [(s, f"{s.name}_{metric.name}") for s in SUMMARIES.values()
            if (s.name in metric.recorded if s.recorded else True)]


def columns() -> dict[str, Column]:
    """Every numeric report column of a metric, each metric followed by its summaries."""
    out = {}
    for m in METRICS.values():
        out[m.name] = Column(m.name, m.label, m.lower_is_better, m.digits,
                             f"{m.interval}_half" if m.interval else None, m.name, None, m.tolerance, m.run_table)
        for s, column in summary_columns(m):
            unit = f" ({m.unit})" if m.unit else ""
            out[column] = Column(column, f"{m.summary_label} {s.label}{unit}", s.lower_is_better(m), m.digits,
                                 None, m.name, s.name, m.summary_tolerance.get(s.name),
                                 m.summary_run_table.get(s.name))
    return out


def run_table_columns(wide: bool) -> list[Column]:
    """The columns of bench.run's table, in registry order (metrics, then their summaries): the
    main ones, and with `wide` the wide ones too."""
    shown = [c for c in columns().values() if c.run_table is not None and (wide or c.run_table.place == "main")]
    metrics = [c for c in shown if c.summary is None]
    return metrics + [c for c in shown if c.summary is not None]


def provenance_metrics(provenance: Provenance) -> list[Metric]:
    """The metrics computed under `provenance` (FID's: FID, KID, P/R/D/C), in registry order."""
    return [m for m in METRICS.values() if m.provenance == provenance]


def derived_columns() -> dict[str, tuple[Metric, Summary]]:
    """{column: (metric, summary)} of the summaries computed from a record's matrix when it is read."""
    return {column: (m, s) for m in METRICS.values() for s, column in summary_columns(m) if not s.recorded}


def checked() -> dict[str, float]:
    """{column: tolerance} of every column the gate checks, in registry order (one-sided slack in the
    column's units; 0: none)."""
    return {name: c.tolerance for name, c in columns().items() if c.tolerance is not None}


def provenances() -> list[Provenance]:
    return list(dict.fromkeys(m.provenance for m in METRICS.values() if m.provenance is not None))


def provenance_of(column: str) -> Provenance | None:
    """The provenance a column's numbers are computed under (a summary: its metric's)."""
    c = columns().get(column)
    metric = METRICS.get(c.metric if c is not None else column)
    return metric.provenance if metric is not None else None


def metric_layouts() -> list[str]:
    """Metrics with a report layout of their own (Table 1), in registry order."""
    return [m.name for m in METRICS.values() if m.layout]


def report_layouts() -> list[str]:
    """bench.report's `--metric` choices: each metric's Table 1, the summary layouts, the per-task
    matrices, sample quality per stream, the paper's claims."""
    return [*metric_layouts(), *LAYOUTS, "matrix", *provenance_layouts(), "claims"]


def provenance_layouts() -> dict[str, Provenance]:
    """{layout: provenance} of the families whose metrics have a side-by-side layout ('quality')."""
    return {p.layout: p for p in provenances() if p.layout}


def headline_metrics() -> list[Metric]:
    """The metrics drawn (curves, ranks, sweeps), in registry order."""
    return [m for m in METRICS.values() if m.headline]


def paper_metrics() -> list[Metric]:
    """The metrics the OCM paper's Table 1 reports (its log-likelihoods)."""
    return [m for m in METRICS.values() if m.paper]


def metric_fields(metric: Metric) -> list[str]:
    """The record fields one metric declares: its value, matrix, interval, recorded summaries,
    other fields and its provenance field."""
    return [metric.name, *([metric.matrix] if metric.matrix else []), *([metric.interval] if metric.interval else []),
            *(f"{s}_{metric.name}" for s in metric.recorded), *metric.fields,
            *([metric.provenance.field] if metric.provenance else [])]


def evaluation_fields(evaluation: Evaluation) -> frozenset[str]:
    """The record fields an evaluation may write: those of the metrics it declares."""
    return frozenset(f for name in evaluation.metrics for f in metric_fields(METRICS[name]))


def record_fields() -> list[str]:
    """Every record field the metrics declare (values, matrices, intervals, recorded summaries,
    other fields, provenance), in registry order."""
    return list(dict.fromkeys(f for m in METRICS.values() for f in metric_fields(m)))


def index_markdown() -> str:
    """docs/metrics.md's index of the registry (a test keeps the page equal to it)."""
    better = {True: "lower", False: "higher"}
    lines = ["| metric | what | better | per-task matrix | gate tolerance (its summaries') | provenance |",
             "|---|---|---|---|---|---|"]
    for m in METRICS.values():
        gate = "-" if m.tolerance is None else f"{m.tolerance:g}"
        gate += "".join(f", {s} {t:g}" for s, t in m.summary_tolerance.items())
        lines.append(f"| `{m.name}` | {m.description} | {better[m.lower_is_better]} | "
                     f"{f'`{m.matrix}`' if m.matrix else '-'} | {gate} | "
                     f"{f'`{m.provenance.field}`' if m.provenance else '-'} |")
    lines += ["", "| summary of a matrix M[t, j] | column | definition | better | in records | layout |",
              "|---|---|---|---|---|---|"]
    for s in SUMMARIES.values():
        direction = "as the metric" if s.direction == "metric" else s.direction
        writers = ", ".join(m.name for m in METRICS.values() if s.name in m.recorded)
        written = f"written (metrics: {writers})" if s.recorded else "computed when read (every matrix)"
        lines.append(f"| {s.label} | `{s.name}_<metric>` | {s.definition} | {direction} | {written} | "
                     f"`--metric {s.group}` |")
    return "\n".join(lines) + "\n"


# The families, each a module of this package: the built-in ones first, in the order their columns,
# layouts and evaluations appear (NLL first: its evaluation draws from the cell's evaluation
# generator before the sample-quality one does), then any other module here, by name. A new
# metric or summary is a new module: nothing to add to a list.
BUILT_IN = ("nll", "fid", "kid", "prdc", "continual", "clog")


def _import_families() -> None:
    import importlib
    import pkgutil

    others = sorted(m.name for m in pkgutil.iter_modules(__path__) if m.name not in (*BUILT_IN, "registry"))
    for name in (*BUILT_IN, *others):
        importlib.import_module(f"{__name__}.{name}")


_import_families()

__all__ = ["metric_fields", "evaluation_fields", "EXTRACTORS", "Extractor", "register_extractor", "Column", "RunColumn", "run_table_columns", "provenance_metrics", "primary_metric", "provenance_layouts",
           "headline_metrics", "paper_metrics", "EVALUATIONS", "Evaluation", "LAYOUTS", "METRICS", "Metric", "MetricRegistrationError",
           "Provenance", "SUMMARIES", "Summary", "SummaryLayout", "checked", "columns", "derived_columns",
           "index_markdown", "matrix_metrics", "metric_layouts", "provenance_of", "provenances",
           "record_fields", "register_evaluation", "register_layout", "register_metric", "register_summary",
           "report_layouts", "summary_columns", "without_seeds"]
