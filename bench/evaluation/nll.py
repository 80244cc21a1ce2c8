"""The evaluation protocol: IWAE negative log-likelihood at task boundaries (DESIGN section 4).

A model's likelihood is the mixture log (1/C) sum_c p_c(x) (uniform weights; the primary number);
the paper's best-component score max_c log p_c(x) comes from the same per-component estimates.
For one component both are the plain IWAE estimate. NLL = -mean (nats).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from methods.models.likelihood import (  # noqa: F401  (re-exported for callers of the evaluator)
    component_log_likelihoods,
    iwae_log_likelihood,
    mixture_log_likelihood,
)


@dataclass
class NLLRow:
    """Per-image NLLs on every task's test set after one task segment."""
    mixture: list[torch.Tensor]
    best_component: list[torch.Tensor]


def nll_row(model, test_sets: list[torch.Tensor], k: int, generator: torch.Generator) -> NLLRow:
    per_component = [component_log_likelihoods(model, x, k, generator) for x in test_sets]
    return NLLRow(mixture=[-mixture_log_likelihood(pc) for pc in per_component],
                  best_component=[-pc.max(0).values for pc in per_component])
