"""IWAE log-likelihood estimates, per component and for the mixture (batched, chunked).

log p_c(x) ~ logsumexp_k(log p_c(x, z_k) - log q_c(z_k | x)) - log K, z_k ~ q_c(z | x), per
component c; the mixture is log sum_c w_c p_c(x) with the model's declared weights
(`log_mixture_weights`). Any model of the contract in methods/models/contract.py can be scored.
Used by the evaluator and by OCM's expansion criterion.
"""
from __future__ import annotations

import math

import torch

from methods.models.contract import eval_mode, mixture_log_likelihood

# Rows (components x samples x images) decoded per call. On a CPU the decoder itself works through
# a chunk in cache-sized blocks (methods/models/native/decoder.py), so a chunk only needs to be large
# enough to make the per-chunk work (sampling, the encoder, folding the weights, logsumexp) small:
# 8,192 rows made the evaluator 8% faster than 2,048 (bench.perf's machine, K = 1000: 8 images
# per chunk instead of 2). On a GPU: large enough to fill the device
# and amortise kernel launches (measured on an H200: 2,048 rows reached 4% of the fp32 matmul peak,
# 65,536 37%, 262,144 42%; [rows, 784] fp32 logits: 822 MB).
MAX_ROWS = 8192
MAX_ROWS_GPU = 262144


def default_max_rows(device: torch.device) -> int:
    return MAX_ROWS_GPU if device.type == "cuda" else MAX_ROWS


@torch.no_grad()
def component_log_likelihoods(model, x: torch.Tensor, k: int, generator: torch.Generator | None = None,
                              max_rows: int | None = None) -> torch.Tensor:
    """Per-component, per-image IWAE estimates of log p_c(x) with k samples each: [C, B] (nats)."""
    max_rows = max_rows or default_max_rows(x.device)
    with eval_mode(model):
        c = model.num_components
        images_per_chunk = max(1, min(len(x), max_rows // (k * c)))
        samples_per_chunk = max(1, min(k, max_rows // (images_per_chunk * c)))
        out = []
        for start in range(0, len(x), images_per_chunk):
            xb = x[start:start + images_per_chunk]
            total = torch.full((c, len(xb)), -math.inf, device=x.device)
            for done in range(0, k, samples_per_chunk):
                lw = model.component_log_weights(xb, min(samples_per_chunk, k - done), generator)
                total = torch.logaddexp(total, torch.logsumexp(lw, 1))
            out.append(total - math.log(k))
        return torch.cat(out, 1) if out else torch.empty(c, 0, device=x.device)


def iwae_log_likelihood(model, x: torch.Tensor, k: int, generator: torch.Generator | None = None,
                        max_rows: int | None = None) -> torch.Tensor:
    """Per-image IWAE estimate of log p(x) (the mixture's, for several components): [B]."""
    per_component = component_log_likelihoods(model, x, k, generator, max_rows)
    return mixture_log_likelihood(per_component, model.log_mixture_weights())
