"""A cell's record as a type: what one grid cell ran and measured, written and read here only.

On disk a record is one flat JSON object (bench/execution/store.py), as every harness version has
written it; `Record.from_json` reads any of them (every record under reports/ today: tests/
test_record.py) and `Record.to_json` writes it back key for key, with `schema_version` added. In
memory it is typed, in four parts:

- the cell: its key, stream, method (and label), seed, profile, settings, harness version, status;
- what training spent and stored (budgets, sizes, the device, the training step, seconds);
- `metrics`: the fields the metric registry declares (bench/metrics: values, per-task matrices,
  recorded summaries, intervals, provenance), read by field name;
- the method's own, in one declared place: `extras` (what its plugin's `extra_stats()` returned:
  OCM's STM/LTM sizes, CN-DPM's counts, ...) and `timeline` (its events, `Timeline`); reports read
  both generically, never a method's key by name.

A `Record` is also a read-only mapping of its JSON (`record["nll"]`, `record.get("fid_info")`), so
that scripts written against the dicts of earlier versions keep working; the harness's own layers
read its fields. Schema 1 is the layout of every record before 0.8 (records without `schema_version` are schema
1); schema 2 adds `numbers_version`, `key_version` and `stream_definition`, what a version-2 key
hashes (bench/planning/keys.py: `python -m bench.migrate` turns schema-1 records into schema 2,
renaming them to their new keys). A record of a newer schema is refused with what to do.
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property

SCHEMA_VERSION = 2   # 2 (0.8): numbers_version, key_version, stream_definition


class RecordError(ValueError):
    """A JSON object that is not a record this harness can read."""


@dataclass(frozen=True, eq=False)
class Record(Mapping):
    # ------------------------------------------------------------------------------- the cell
    status: str                        # "done" | "failed"
    key: str | None = None             # the cell's content key (bench/planning/grid.py)
    stream: str | None = None
    method: str | None = None          # the registered method
    method_label: str | None = None    # its label in tables: 'reservoir[budget=match:ocm]', a preset's name
    seed: int | None = None
    profile_name: str | None = None    # 'quick', 'quick[epochs=3]'
    profile: dict = field(default_factory=dict)          # the resolved profile
    method_config: dict = field(default_factory=dict)    # the resolved method settings
    matched: dict = field(default_factory=dict)          # {setting: reference method} of a matched budget
    needs_task_boundaries: bool = False
    harness_version: str | None = None   # the harness that wrote it
    numbers_version: str | None = None   # the version of its numbers (bench/planning/keys.py; 0.8 on)
    key_version: int | None = None       # how its key was computed (None: version 1, before 0.8)
    stream_definition: dict | None = None   # what its stream was (its key hashes it; 0.8 on)
    torch_version: str | None = None
    code_digest: str | None = None       # the code that made it (bench/planning/code_digest.py; 0.8 on)
    error: str | None = None           # a failed cell's
    traceback: str | None = None
    wall_seconds: float | None = None
    finished_at: str | None = None
    # ------------------------------------------------------------- what training spent and stored
    memory: int | None = None          # samples stored at the end
    memory_peak: int | None = None
    gradient_steps: int | None = None
    images_trained: int | None = None
    iterations: int | None = None
    stream_length: int | None = None
    components: int | None = None
    parameters: int | None = None
    train_seconds: float | None = None
    test_sizes: list | None = None
    train_sizes: list | None = None
    resolved_settings: dict | None = None   # task-length settings as the image counts the cell ran with
    device: str | None = None
    cpu_kernels: str | None = None
    training_step: str | None = None   # the step that ran: eager | fused | graph | compiled
    graph_captures: int | None = None
    graph_replays: int | None = None
    graph_capture_error: str | None = None
    pictures: list | None = None       # sample grids, relative to the results directory's images/
    # ------------------------------------------------------------ the metrics, the method's own
    metrics: dict = field(default_factory=dict)    # the metric registry's fields, by name
    timeline: list = field(default_factory=list)   # the method's events (Timeline)
    extras: dict = field(default_factory=dict)     # the method's extra_stats()
    schema_version: int = SCHEMA_VERSION
    written: frozenset = field(default=frozenset(), repr=False)   # the top-level keys its JSON has

    # ------------------------------------------------------------------------ reading, writing
    @classmethod
    def from_json(cls, data: Mapping) -> Record:
        """The record of a JSON object as the harness wrote it (any version so far)."""
        if isinstance(data, Record):
            return data
        if not isinstance(data, Mapping) or not isinstance(data.get("status"), str):
            raise RecordError("not a record: no status")
        version = data.get("schema_version", 1)
        if not isinstance(version, int) or version > SCHEMA_VERSION:
            raise RecordError(f"record schema {version!r} is newer than this harness reads ({SCHEMA_VERSION}): "
                              "update the harness to read it")
        if data["status"] == "done":
            check_numbers(data)
        own, metric_fields = CORE_FIELDS, metric_field_names()
        values = {k: v for k, v in data.items() if k in own}
        metrics = {k: v for k, v in data.items() if k in metric_fields}
        extras = {k: v for k, v in data.items() if k not in own and k not in metric_fields
                  and k not in ("timeline", "schema_version")}
        for name in ("profile", "method_config", "matched"):
            if values.get(name) is None:
                values.pop(name, None)   # absent, or null in a hand-made record: the empty default
        return cls(**values, metrics=metrics, extras=extras, timeline=data.get("timeline") or [],
                   schema_version=version, written=frozenset(data) | {"schema_version"})

    def to_json(self) -> dict:
        """The flat JSON object: every key it was read or made with, as it was, and its schema."""
        return dict(self._json)

    @cached_property
    def _json(self) -> dict:
        out = {name: getattr(self, name) for name in CORE_FIELDS if name in self.written}
        out.update(self.metrics)
        out.update(self.extras)
        if "timeline" in self.written:
            out["timeline"] = self.timeline
        out["schema_version"] = self.schema_version
        return out

    # --------------------------------------------------------------------- the mapping view
    def __getitem__(self, key: str):
        return self._json[key]

    def __iter__(self):
        return iter(self._json)

    def __len__(self) -> int:
        return len(self._json)

    def __eq__(self, other) -> bool:
        return isinstance(other, Mapping) and dict(self.items()) == dict(other.items())

    __hash__ = None   # type: ignore[assignment]  # compared by content: not hashable

    # ------------------------------------------------------------------------------ readers
    @property
    def done(self) -> bool:
        return self.status == "done"

    @property
    def label(self) -> str:
        """The method's label in tables (a variant, a preset) or its name."""
        return self.method_label or self.method or ""

    def metric(self, name: str, default=None):
        """A metric registry field ('nll', 'fid_matrix', 'nll_info')."""
        return self.metrics.get(name, default)

    def replace(self, **changes) -> Record:
        return dataclasses.replace(self, **changes)


CORE_FIELDS = tuple(f.name for f in dataclasses.fields(Record)
                    if f.name not in ("metrics", "timeline", "extras", "schema_version", "written"))


def is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_numbers(data: Mapping) -> None:
    """A finished record's numbers are numbers: its NLL a finite number (every profile measures
    it: a "done" record without one would count as done forever), every other metric a number or
    null, every per-task matrix a square table of numbers or nulls (one row and column per task).
    Raises RecordError (the store then moves the file aside, and its cell is rerun)."""
    from bench.metrics import METRICS, primary_metric

    primary = primary_metric()
    value = data.get(primary.name)
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        raise RecordError(f"a finished record needs a finite number as its {primary.summary_label}, not {value!r}")
    for metric in METRICS.values():
        value = data.get(metric.name)
        if value is not None and not is_number(value):
            raise RecordError(f"{metric.name} is {value!r}, not a number")
        matrix = data.get(metric.matrix) if metric.matrix else None
        if matrix is None:
            continue
        ok = isinstance(matrix, list) and all(
            isinstance(row, list) and len(row) == len(matrix) and all(v is None or is_number(v) for v in row)
            for row in matrix)
        if not ok:
            raise RecordError(f"{metric.matrix} is not a square table of numbers (one row and column per task)")


def metric_field_names() -> frozenset:
    """The record fields the metric registry declares (and the names they had in older records)."""
    from bench.metrics import METRICS, provenances, record_fields

    older = {name for p in provenances() for name in p.older_fields}
    return frozenset(record_fields()) | older | {m for m in METRICS}


def as_record(record) -> Record:
    """A Record from a Record or a record's JSON object (as tests and scripts make them)."""
    return record if isinstance(record, Record) else Record.from_json(record)


def as_records(records) -> list[Record]:
    return [as_record(r) for r in records]


# --------------------------------------------------------------------------------- the timeline
@dataclass(frozen=True)
class Timeline:
    """A method's events (`GenerativePlugin.timeline`), as reports read them: every event has
    `position` (images of the stream seen) and `components` (after the event), and may say
    `expanded`. What the method stores at an event is under the key it declares
    (`memory_key`: its `Reporting.timeline_memory`, 'ltm' for OCM, 'buffer' for CURL and CN-DPM),
    and the memory an event chose from is the sum of its `pool` keys (OCM: LTM + STM). Any other
    key is the method's own."""
    events: list
    memory_key: str | None = None
    pool: tuple[str, ...] = ()

    @property
    def positions(self) -> list:
        return [e["position"] for e in self.events]

    @property
    def components(self) -> list:
        return [e["components"] for e in self.events]

    @property
    def expansions(self) -> list:
        return [e for e in self.events if e.get("expanded")]

    def memory(self) -> list:
        """What the method stores at each event (0 where an event does not say, or the method
        declares no memory key)."""
        return [e.get(self.memory_key, 0) if self.memory_key else 0 for e in self.events]

    def before_selection(self) -> list | None:
        """The memory each event chose from (the sum of its `pool` keys), or None without a pool."""
        if not self.pool:
            return None
        return [sum(e.get(k, 0) for k in self.pool) for e in self.events]
