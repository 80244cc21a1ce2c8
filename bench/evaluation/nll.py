"""The evaluation protocol: IWAE negative log-likelihood at task boundaries (docs/metrics.md).

A model's likelihood is the mixture log sum_c w_c p_c(x) with the model's declared weights (the
primary number); the paper's best-component score max_c log p_c(x) comes from the same
per-component estimates. For one component both are the plain IWAE estimate. NLL = -mean (nats).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from methods.models.contract import mixture_log_likelihood
from methods.models.likelihood import component_log_likelihoods


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
