"""What a family's evaluation is built with (bench/metrics: `Evaluation`): the cell, its profile,
the loaded stream, the test sets on the device, the device and the data directory."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EvaluationContext:
    cell: object            # bench.planning.grid.Cell
    stream: object          # streams.stream.ContinualStream
    test_sets: list         # each task's binarized test images [N, C, H, W], on `device`
    device: object          # torch.device
    data_dir: object = None

    @property
    def profile(self):
        return self.cell.profile


def evaluation_classes(profile) -> list[tuple]:
    """(declaration, class) of every evaluation the profile runs, in the registry's order
    (bench.metrics)."""
    import importlib

    from bench.metrics import EVALUATIONS

    classes = []
    for evaluation in EVALUATIONS.values():
        if evaluation.runs(profile):
            module, _, name = evaluation.where.partition(":")
            classes.append((evaluation, getattr(importlib.import_module(module), name)))
    return classes


def merged_fields(results: list[tuple]) -> dict:
    """The record's numbers from every evaluation's `fields()`, merged in one step: a field that its
    evaluation's metrics do not declare, or that two evaluations write, is refused (it would land
    unannounced in the record, or overwrite another family's)."""
    from bench.metrics import evaluation_fields

    merged: dict = {}
    for evaluation, fields in results:
        undeclared = sorted(set(fields) - evaluation_fields(evaluation))
        if undeclared:
            raise ValueError(f"evaluation '{evaluation.name}' writes {', '.join(undeclared)}, which none of its "
                             f"metrics ({', '.join(evaluation.metrics)}) declares")
        twice = sorted(set(fields) & set(merged))
        if twice:
            raise ValueError(f"evaluation '{evaluation.name}' writes {', '.join(twice)}, already written")
        merged.update(fields)
    return merged


def recorded_summaries(metric: str, matrix) -> dict:
    """The summaries of `metric`'s matrix that records hold (`forgetting_nll`, `bwt_nll`, ...), as the
    registry declares them."""
    from bench.metrics import METRICS, SUMMARIES

    spec = METRICS[metric]
    return {f"{name}_{metric}": SUMMARIES[name].compute(matrix, spec.lower_is_better) for name in spec.recorded}
