"""The metric registry's types: a metric, a summary of a per-task matrix, a provenance, an evaluation.

Pure Python (no numpy, no torch at import), so that the command line, the gate and the reports
read the declarations without loading what computes them.

- `Metric`: one number of a record: its field (also its column in tables), label, direction,
  digits, per-task matrix field, the summaries the evaluation writes with it, its gate tolerance,
  whether it has a report layout of its own, the provenance it is computed under.
- `Summary`: a number computed from a metric's matrix M[t, j] (row t = after task segment t,
  column j = task j): forgetting, BWT, CLoG's AIQ / AFQ / FR. A summary is either `recorded` (the
  evaluation writes `<summary>_<metric>` into each record) or computed from the record's matrix
  when records are read (nothing written, so adding one moves no record). Summaries of one `group`
  form one report layout (`bench.report --metric GROUP`).
- `Provenance`: the record field that says how a family's numbers were computed (`nll_info`,
  `fid_info`); every key written there is compared before numbers are put side by side, except
  the declared informational ones.
- `Evaluation`: where a family's numbers are computed ('module:Class' in bench.evaluation,
  imported when a cell runs) and for which profiles.
"""
from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from streams.names import check_name

Matrix = list   # M[t, j] as a list of rows (what a record holds)


class MetricRegistrationError(ValueError):
    """A metric, summary or layout name declared twice, or a declaration that names what is not there."""


# ------------------------------------------------------------------------------------ provenance
def without_seeds(value):
    """A setting without its random seeds (the cell's seed: they differ from seed to seed by design)."""
    if isinstance(value, dict):
        return {k: without_seeds(v) for k, v in value.items() if k != "seed"}
    return value


@dataclass(frozen=True)
class Provenance:
    """How one family's numbers were computed, as its evaluation writes it into each record."""
    name: str                  # what messages call the numbers: 'NLL', 'FID/KID/PRDC'
    column: str                # its column in the cells frame: 'nll_provenance'
    field: str                 # the record field the evaluation writes: 'nll_info'
    informational: tuple[str, ...] = ()   # keys written there that do not change the numbers
    older_fields: tuple[str, ...] = ()    # names the field had in older records
    implied: Callable[[dict], dict | None] | None = None   # what a record older than the field implies
    missing: str = ""          # how to get these numbers, for a report asked for them where records lack them
    # the protocol's sentence in every caption, from the table's cells frame ('' when they lack it)
    caption: Callable[[Any], str] | None = None
    layout: str | None = None     # a report layout of all its metrics side by side, per stream ('quality')
    title: str = ""               # that layout's heading
    shown: tuple[str, ...] = ()   # keys of the field the HTML page's provenance shows (default: all)
    # {cells-frame column: key path in the field} of the settings captions read ({'fid_samples': ('samples',)})
    frame_columns: dict = dataclasses.field(default_factory=dict, hash=False)   # (`field` is a name here)

    def lifted(self, record) -> dict:
        """The `frame_columns` of a record: each key path's value, None where the record lacks it."""
        out = {}
        for column, path in self.frame_columns.items():
            value: Any = self.info(record) or {}
            for key in path:
                value = value.get(key) if isinstance(value, dict) else None
            out[column] = value
        return out

    def info(self, record: dict) -> dict | None:
        """The record's provenance settings as written (or as its version implies); None without."""
        for name in (self.field, *self.older_fields):
            if record.get(name):
                return record[name]
        return self.implied(record) if self.implied is not None else None

    def of(self, record: dict) -> str | None:
        """The compared settings (JSON, sorted): every key written except the informational ones and
        the cell's random seeds."""
        info = self.info(record)
        if not info:
            return None
        return json.dumps({k: without_seeds(v) for k, v in info.items() if k not in self.informational},
                          sort_keys=True, default=str)


# ------------------------------------------------------------------------------------- summaries
DIRECTIONS = ("lower", "higher", "metric")


@dataclass(frozen=True)
class Summary:
    """A number computed from a metric's per-task matrix: `compute(matrix, lower_is_better)`."""
    name: str                  # column prefix: 'forgetting' -> 'forgetting_nll'
    label: str                 # 'forgetting' -> 'NLL forgetting (nats)'
    compute: Callable[[Matrix, bool], float]
    direction: str             # which values are better: 'lower', 'higher', or as the metric's ('metric')
    group: str                 # the report layout it is shown in ('forgetting', 'clog')
    recorded: bool = False     # written into records by the evaluation, else computed when read
    definition: str = ""       # for captions and the docs' index

    def __post_init__(self):
        if self.direction not in DIRECTIONS:
            raise MetricRegistrationError(f"summary '{self.name}': direction must be one of {DIRECTIONS}")

    def lower_is_better(self, metric: Metric) -> bool:
        return metric.lower_is_better if self.direction == "metric" else self.direction == "lower"


@dataclass(frozen=True)
class SummaryLayout:
    """A report layout of summaries (`bench.report --metric NAME`): per stream and method, the group's
    summaries of each metric in `metrics` that the records have, the first metric's first summary
    deciding the best (bold)."""
    name: str
    title: str                 # the HTML page's heading
    metrics: tuple[str, ...]   # metrics shown, in order ('nll', 'fid')
    caption: Callable[[tuple[str, ...]], str]   # (the metrics shown) -> what the table shows


# ------------------------------------------------------------------------------------ run table
RUN_TABLE_PLACES = ("main", "wide")


@dataclass(frozen=True)
class RunColumn:
    """How a metric, or one of its summaries, shows in `bench.run`'s table. `main`: always (when
    some row has a value), `wide`: with --wide only. Metrics of one `group` share a column, their
    means joined by '/' in registry order (precision/recall/density/coverage: 'P/R/D/C'). A main
    column with a `drop` rank is left out, lowest rank first, when the table would be wider than
    the terminal (the caption says so). A metric's `shown_when` hides its column too."""
    header: str                          # 'NLL (nats)'; the direction's arrow is added
    place: str = "main"
    wide_header: str | None = None       # its header with --wide (default: header)
    group: str | None = None
    drop: int | None = None
    hidden_as: str | None = None         # its name in the caption's 'also with --wide' list (default: header)

    def __post_init__(self):
        if self.place not in RUN_TABLE_PLACES:
            raise MetricRegistrationError(f"run-table column '{self.header}': place must be one of {RUN_TABLE_PLACES}")


# --------------------------------------------------------------------------------------- metrics
@dataclass(frozen=True)
class Metric:
    """One number of a record, and what every layer needs to know about it."""
    name: str                  # the record field, and its column in tables ('fid')
    label: str                 # in tables and figures: 'FID', 'NLL (nats)'
    lower_is_better: bool
    provenance: Provenance | None = None
    short: str | None = None   # its name in summaries' labels ('NLL' -> 'NLL forgetting (nats)'); default label
    unit: str = ""             # 'nats'; '' for none
    digits: int | None = 2     # decimals in tables; None: 4 significant digits (a scale that varies)
    summary_digits: int | None = None   # decimals of its summaries in the summary layouts (default: digits)
    interval: str | None = None        # the record field of its bootstrap interval [low, high]
    matrix: str | None = None          # the record field of its per-task matrix M[t, j]
    recorded: tuple[str, ...] = ()     # summaries the evaluation writes with it ('forgetting', 'bwt')
    tolerance: float | None = None     # the gate's one-sided slack for its mean; None: not checked
    summary_tolerance: dict = field(default_factory=dict)   # the gate's slack for summaries: {'forgetting': 5.0}
    layout: bool = False       # a report layout of its own (bench.report --metric NAME, Table 1)
    matrix_table: bool = False   # its mean M[t, j] is in the per-task matrices (bench.report --metric matrix)
    fields: tuple[str, ...] = ()       # the other record fields it writes ('nll_se', 'kid_std')
    description: str = ""      # one line for docs/metrics.md's index
    run_table: RunColumn | None = None   # its column in bench.run's table; None: not there
    summary_run_table: dict = field(default_factory=dict)   # {summary: RunColumn} of its summaries there
    primary: bool = False      # the number a cell is judged by (one metric: the NLL): ranks, sweeps, claims
    paper: bool = False        # in the OCM paper's Table 1 (its log-likelihoods: --paper shows them beside ours)
    headline: bool = False     # drawn: its average over the seen tasks per segment, its ranks, its sweeps
    heatmap: bool = False      # its mean M[t, j] is drawn as a heatmap per method
    # (summary frame) -> whether its tables and columns are worth showing, and why not when they are not
    shown_when: Callable[[Any], bool] | None = None
    not_shown: str = ""

    @property
    def column(self) -> str:
        return self.name

    @property
    def summary_label(self) -> str:
        return self.short or self.label


@dataclass(frozen=True)
class Column:
    """A numeric column of the reports: a metric, or a summary of one (`forgetting_nll`)."""
    column: str
    label: str
    lower_is_better: bool
    digits: int | None = 2
    interval: str | None = None    # the column of its per-seed bootstrap interval's half-width
    metric: str = ""               # the metric it is, or summarises
    summary: str | None = None     # the summary, for a summary column
    tolerance: float | None = None   # the gate's slack; None: not checked
    run_table: RunColumn | None = None   # how it shows in bench.run's table


# ----------------------------------------------------------------------------------- evaluations
@dataclass(frozen=True)
class Evaluation:
    """Where a family's numbers are computed: `where` = 'module:Class' (bench.evaluation), a class
    built with the cell's context (bench/evaluation/context.py) whose `after_segment(model,
    generator)` runs after every task segment (in registration order, sharing the cell's evaluation
    generator) and whose `fields()` are the record's numbers at the end. `runs(profile)`: whether a
    profile computes them (FID only with `fid_features`)."""
    name: str
    where: str
    runs: Callable[[Any], bool] = lambda profile: True
    metrics: tuple[str, ...] = ()   # the metrics it writes


# ----------------------------------------------------------------------------- feature extractors
@dataclass(frozen=True)
class Extractor:
    """A feature extractor the sample-quality family (FID, KID, PRDC) can be computed on: the
    profile's `fid_features` choices. `build` = 'module:callable', called with (stream, cache
    directory) when a cell needs it, returns a `bench.evaluation.features.FeatureExtractor` of
    `dim` features (the command line checks `fid_samples >= dim` before importing torch)."""
    name: str
    dim: int
    build: str
    description: str = ""


# ----------------------------------------------------------------------------------- registries
METRICS: dict[str, Metric] = {}          # registration order: the order of columns and layouts
SUMMARIES: dict[str, Summary] = {}
LAYOUTS: dict[str, SummaryLayout] = {}
EVALUATIONS: dict[str, Evaluation] = {}  # registration order: the order they run in after a segment
EXTRACTORS: dict[str, Extractor] = {}


def _register(table: dict, kind: str, item):
    """Add `item` under its name; the same declaration twice is fine, another under a taken name not."""
    check_name(kind, item.name)
    if item.name in table and table[item.name] != item:
        raise MetricRegistrationError(f"{kind} '{item.name}' is already registered")
    table[item.name] = item
    return item


def register_metric(metric: Metric) -> Metric:
    return _register(METRICS, "metric", metric)


def register_summary(summary: Summary) -> Summary:
    return _register(SUMMARIES, "summary", summary)


def register_layout(layout: SummaryLayout) -> SummaryLayout:
    check_name("layout", layout.name)
    if layout.name in METRICS or (layout.name in LAYOUTS and LAYOUTS[layout.name] != layout):
        raise MetricRegistrationError(f"layout '{layout.name}' is already a metric or a layout")
    LAYOUTS[layout.name] = layout
    return layout


def register_evaluation(evaluation: Evaluation) -> Evaluation:
    return _register(EVALUATIONS, "evaluation", evaluation)


def register_extractor(extractor: Extractor) -> Extractor:
    """Make `extractor` a choice of `fid_features` (a module given to --import may register one)."""
    return _register(EXTRACTORS, "extractor", extractor)
