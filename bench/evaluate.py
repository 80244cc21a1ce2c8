"""The evaluation protocol: IWAE negative log-likelihood, batched, at task boundaries.

log p(x) ~ logsumexp_k(log p(x, z_k) - log q(z_k | x)) - log K, z_k ~ q(z | x); NLL = -mean (nats).
Any model with `log_weights(x, k, generator) -> [k, B]` can be scored.
"""
from __future__ import annotations

import math

import torch

# Rows (images x samples) decoded per call: large enough to keep matmuls efficient, small enough
# for the [rows, 784] logits to stay in cache-friendly memory.
MAX_ROWS = 16384


@torch.no_grad()
def iwae_log_likelihood(model, x: torch.Tensor, k: int, generator: torch.Generator | None = None,
                        max_rows: int = MAX_ROWS) -> torch.Tensor:
    """Per-image IWAE estimate of log p(x) with k importance samples, shape [B] (nats)."""
    was_training = model.training
    model.eval()
    try:
        images_per_chunk = max(1, min(len(x), max_rows // k))
        samples_per_chunk = max(1, min(k, max_rows // images_per_chunk))
        out = []
        for start in range(0, len(x), images_per_chunk):
            xb = x[start:start + images_per_chunk]
            total = torch.full((len(xb),), -math.inf)
            for done in range(0, k, samples_per_chunk):
                lw = model.log_weights(xb, min(samples_per_chunk, k - done), generator)
                total = torch.logaddexp(total, torch.logsumexp(lw, 0))
            out.append(total - math.log(k))
        return torch.cat(out) if out else torch.empty(0)
    finally:
        model.train(was_training)


def nll_row(model, test_sets: list[torch.Tensor], k: int, generator: torch.Generator):
    """Per-image NLLs on every task's test set (a row of the NLL matrix, before averaging)."""
    return [-iwae_log_likelihood(model, x, k, generator) for x in test_sets]
