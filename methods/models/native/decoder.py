"""The MLP decoder's Bernoulli log-likelihood for inference on a CPU, from cheaper passes.

The IWAE evaluator decodes 10^5-10^6 importance samples per test set through
z -> tanh(W1 z + b1) -> relu(W2 . + b2) -> logits l = W3 . + b3 and sums
log Bernoulli(x_i; sigmoid(l_i)) over the pixels. On a CPU its matmuls run near the machine's peak,
but torch's tanh (5 ns per element on the 2-core benchmark machine) and softplus (4.8 ns: an exp and
a log1p) took a third of the time. Measured there per element: sigmoid 1.5 ns, exp2 1.1 ns, an
in-place add, abs or multiply 0.2 ns. So this computes the same number as:

- tanh(v) = 2 sigmoid(2v) - 1, with the 2s and the -1 folded into W1, b1 and into the next layer
  (W2 tanh + b2 = 2 W2 s + b2 - W2 1): a hidden layer costs one sigmoid pass.
- x.l - sum softplus(l), with softplus(l) = relu(l) + log(1 + e^-|l|) and relu(l) = (l + |l|) / 2:
      log p(x | l) = (x - 1/2).l - sum |l| / 2 - log prod_i (1 + e^-|l_i|)
  (x - 1/2).l = ((x - 1/2) W3).h + (x - 1/2).b3 is a 200-wide product per sample instead of a
  784-wide one. The product runs over groups of 16 pixels (each factor lies in (1, 2], so a group
  stays below 2^16) with one log per group, and e^-|l| = 2^-|a| for a = l log2(e), the log2(e)
  folded into W3 and b3.
- The decoder runs over BLOCK_ROWS samples at a time, so that a block's logits stay in the core's
  L2 cache across these passes instead of streaming through the shared L3.
- Where the machine has a C compiler, the output layer is one matmul (no bias) followed by one pass
  of methods/models/native/bernoulli_log_likelihood.c over the block: the bias, |a|, 2^-|a|, the products, their
  logs and the x term together, instead of a bias copy and six torch passes. This made the
  evaluator about 16% faster (median of 20 alternating pairs on bench.perf's 2-core machine;
  methods/models/native/kernel.py builds and loads it). Without a compiler, the torch passes above compute the same number.

The result agrees with the direct computation to float32 rounding (tests/test_nll.py checks both
against float64). With autograd, or on a GPU (memory-bound on every extra pass), callers use the
direct form: `applies()` says which.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from methods.models.native import kernel as native_kernel

LN2 = math.log(2.0)
LOG2_E = 1.0 / LN2
GROUP = 16          # pixels whose factors (1 + e^-|l|), each in (1, 2], are multiplied before a log
BLOCK_ROWS = 256    # samples per block of logits: 256 x 784 floats (800 KB) fit a 1 MB L2 cache


def applies(z: torch.Tensor) -> bool:
    """Whether the rewrite is used for latent codes z: CPU tensors, no autograd."""
    return z.device.type == "cpu" and not torch.is_grad_enabled()


def form(device: torch.device) -> str:
    """Which computation scores the decoder during evaluation on `device` (kept in cell records)."""
    if device.type != "cpu":
        return "direct"
    return "cpu rewrite, C kernel" if native_kernel.available() else "cpu rewrite, torch"


@torch.no_grad()
def mlp_decoder_log_likelihood(z: torch.Tensor, x: torch.Tensor, shared: nn.Linear, hidden: nn.Linear,
                               out: nn.Linear) -> torch.Tensor:
    """sum_i log Bernoulli(x_i; sigmoid(l_i)) for l = out(relu(hidden(tanh(shared(z))))).

    z: [..., B, latent] latent codes of images x: [B, D] (binary) -> [..., B] (nats)."""
    lead, images = z.shape[:-1], x.shape[0]
    codes = z.reshape(-1, z.shape[-1])     # rows ordered (..., B): row r belongs to image r % B
    if len(codes) == 0:
        return codes.new_zeros(lead)
    w1, b1 = shared.weight * 2, shared.bias * 2
    w2, b2 = hidden.weight * 2, hidden.bias - hidden.weight.sum(1)
    w3, b3 = out.weight * LOG2_E, out.bias * LOG2_E
    centred = x - 0.5
    native = native_kernel.available() and codes.dtype == centred.dtype == torch.float32
    if not native:
        u, c = centred @ out.weight, centred @ out.bias        # (x - 1/2).l = u.h + c
    result = torch.empty(len(codes), dtype=codes.dtype)
    step = images * max(1, BLOCK_ROWS // images)               # whole groups of B rows
    for start in range(0, len(codes), step):
        h = torch.relu_(F.linear(torch.sigmoid_(F.linear(codes[start:start + step], w1, b1)), w2, b2))
        if native:      # the output layer's matmul, then its bias and everything else in one pass
            result[start:start + step] = native_kernel.bernoulli_log_likelihood(h @ w3.T, b3, centred)
            continue
        penalty = _penalty(F.linear(h, w3, b3))                    # of l log2(e)
        signed = (h.view(-1, images, h.shape[-1]) * u).sum(-1).add_(c).view(-1)
        torch.sub(signed, penalty, out=result[start:start + step])
    return result.view(lead)


def _penalty(a: torch.Tensor) -> torch.Tensor:
    """sum_i |l_i| / 2 + log(1 + e^-|l_i|) per row of a = l log2(e) (consumes `a`)."""
    a = a.abs_()
    penalty = a.sum(-1).mul_(LN2 / 2)                              # sum |l| / 2
    return penalty.add_(_sum_of_logs(a.neg_().exp2_().add_(1.0)))  # + sum log(1 + e^-|l|)


def _sum_of_logs(factors: torch.Tensor) -> torch.Tensor:
    """sum_i log f_i per row, as one log per product of up to GROUP factors (consumes `factors`).

    The products are formed by halving: the left half of the row times the right half, in place,
    until a column holds GROUP factors (faster than a strided `prod` over groups)."""
    width = factors.shape[-1]
    while width % 2 == 0 and width * GROUP >= 2 * factors.shape[-1]:
        width //= 2
        factors[:, :width].mul_(factors[:, width:2 * width])
    return factors[:, :width].log_().sum(-1)
