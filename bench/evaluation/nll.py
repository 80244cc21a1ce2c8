"""The evaluation protocol: IWAE negative log-likelihood at task boundaries (docs/metrics.md).

A model's likelihood is the mixture log sum_c w_c p_c(x) with the model's declared weights (the
primary number); the paper's best-component score max_c log p_c(x) comes from the same
per-component estimates. For one component both are the plain IWAE estimate. NLL = -mean (nats).
`NLLEvaluation` is the NLL family's evaluation (bench/metrics/nll.py): NLL[t, j] after every task
segment, the final NLL over the union of the test sets, its standard error and provenance.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from bench.evaluation.context import EvaluationContext, recorded_summaries
from methods.models.contract import mixture_log_likelihood
from methods.models.likelihood import component_log_likelihoods
from methods.models.native import decoder as decoder_inference


@dataclass
class NLLRow:
    """Per-image NLLs on every task's test set after one task segment."""
    mixture: list[torch.Tensor]
    best_component: list[torch.Tensor]


def nll_row(model, test_sets: list[torch.Tensor], k: int, generator: torch.Generator) -> NLLRow:
    per_component = [component_log_likelihoods(model, x, k, generator) for x in test_sets]
    log_weights = model.log_mixture_weights()
    return NLLRow(mixture=[-mixture_log_likelihood(pc, log_weights) for pc in per_component],
                  best_component=[-pc.max(0).values for pc in per_component])


def standard_error(values: torch.Tensor) -> float:
    """std / sqrt(n) of per-image values (float64): how much the mean would move with another
    draw of as many test images."""
    values = values.double()
    return float(values.std() / len(values) ** 0.5) if len(values) > 1 else float("nan")


def nll_info(profile, stream, test_sets, device) -> dict:
    """What the NLL numbers were computed with (the NLL provenance, bench/metrics/nll.py): reports
    and the gate never put side by side numbers whose provenance differs."""
    return {"estimator": f"IWAE-{profile.eval_k}", "test_images": [len(x) for x in test_sets],
            "binarization_seed": stream.spec.test_binarization_seed, "dtype": "float32",
            "decoder_form": decoder_inference.form(device)}


class NLLEvaluation:
    """NLL[t, j] (and the best-component matrix) after every task segment; the record's NLL fields."""

    def __init__(self, context: EvaluationContext):
        self.context = context
        self.matrix, self.best_matrix, self.seconds, self.last_row = [], [], 0.0, None

    def after_segment(self, model, generator: torch.Generator) -> None:
        start = time.perf_counter()
        self.last_row = nll_row(model, self.context.test_sets, self.context.profile.eval_k, generator)
        self.matrix.append([float(v.mean()) for v in self.last_row.mixture])
        self.best_matrix.append([float(v.mean()) for v in self.last_row.best_component])
        self.seconds += time.perf_counter() - start

    def checkpoint_state(self) -> dict:
        """The rows so far (a checkpoint is taken at a task boundary: `last_row` is recomputed)."""
        return {"matrix": self.matrix, "best_matrix": self.best_matrix, "seconds": self.seconds}

    def restore_state(self, state: dict) -> None:
        self.matrix, self.best_matrix, self.seconds = state["matrix"], state["best_matrix"], state["seconds"]

    def fields(self) -> dict:
        mixture, best = torch.cat(self.last_row.mixture), torch.cat(self.last_row.best_component)
        c = self.context
        return {
            "nll": float(mixture.mean()),
            "nll_best_component": float(best.mean()),
            # the test-set sampling error of the final NLL: std over test images / sqrt(images)
            "nll_se": standard_error(mixture),
            "nll_best_component_se": standard_error(best),
            "nll_info": nll_info(c.profile, c.stream, c.test_sets, c.device),
            "nll_matrix": self.matrix,
            "nll_best_component_matrix": self.best_matrix,
            **recorded_summaries("nll", self.matrix),
            "eval_seconds": self.seconds,
            "nll_decoder_form": decoder_inference.form(c.device),
            # every test image's final NLL, in the test sets' order (the same images and
            # binarization in every cell of a stream): paired per-image intervals in reports
            "nll_per_image": encode_per_image(mixture),
        }


def encode_per_image(values: torch.Tensor) -> str:
    """Per-image NLLs as base64 of little-endian float32 (4 bytes an image: 13 kB for Split MNIST's
    2,500 scored images); bench.metrics.nll.per_image_nll reads them back."""
    import base64


    return base64.b64encode(values.detach().to("cpu", torch.float32).numpy().astype("<f4").tobytes()).decode("ascii")
