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


def evaluation_classes(profile) -> list[type]:
    """The evaluation classes the profile runs, in the registry's order (bench.metrics)."""
    import importlib

    from bench.metrics import EVALUATIONS

    classes = []
    for evaluation in EVALUATIONS.values():
        if evaluation.runs(profile):
            module, _, name = evaluation.where.partition(":")
            classes.append(getattr(importlib.import_module(module), name))
    return classes


def recorded_summaries(metric: str, matrix) -> dict:
    """The summaries of `metric`'s matrix that records hold (`forgetting_nll`, `bwt_nll`, ...), as the
    registry declares them."""
    from bench.metrics import METRICS, SUMMARIES

    spec = METRICS[metric]
    return {f"{name}_{metric}": SUMMARIES[name].compute(matrix, spec.lower_is_better) for name in spec.recorded}
