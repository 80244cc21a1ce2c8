"""Diagonal Gaussians: the constants and the closed-form KL the models and methods share."""
from __future__ import annotations

import math

import torch

LOG_2PI = math.log(2 * math.pi)
STD_EPS = 1e-6   # added to every posterior/prior standard deviation (the authors' code)


def gaussian_kl(mu_q: torch.Tensor, std_q: torch.Tensor, mu_p, std_p) -> torch.Tensor:
    """KL(N(mu_q, std_q^2) || N(mu_p, std_p^2)) summed over the last dimension."""
    return (torch.log(std_p / std_q) + (std_q ** 2 + (mu_q - mu_p) ** 2) / (2 * std_p ** 2) - 0.5).sum(-1)


def standard_normal_log_density(z: torch.Tensor) -> torch.Tensor:
    """log N(z; 0, I), summed over the last dimension (the VAE's prior)."""
    return -0.5 * (z.pow(2).sum(-1) + z.shape[-1] * LOG_2PI)


def reparameterized_log_density(eps: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """log q(z|x) of z = mu + std * eps under q = N(mu, std^2), summed over the last dimension:
    written with the standard draw eps, exactly as every model here computes it."""
    return -0.5 * (eps.pow(2).sum(-1) + eps.shape[-1] * LOG_2PI) - std.log().sum(-1)
