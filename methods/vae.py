"""The paper's Bernoulli MLP VAE (OCM, ECCV 2022, and its released code).

encoder: x -> 200 tanh (shared) -> 200 tanh -> mu (linear), sigma (exp; q std = sigma + 1e-6)
decoder: z -> 200 tanh (shared) -> 200 ReLU -> Bernoulli logits; prior N(0, I).

`forward(x)` returns the per-image training loss (negative ELBO, or negative IWAE bound when
`loss="iwae"`), so the model plugs into any Avalanche strategy with `GenerativeLoss` as criterion.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

LOG_2PI = math.log(2 * math.pi)
STD_EPS = 1e-6


class BernoulliVAE(nn.Module):
    num_components = 1

    def __init__(self, input_dim: int = 784, hidden: int = 200, latent: int = 50,
                 loss: str = "elbo", mc_samples: int = 1):
        super().__init__()
        if loss not in ("elbo", "iwae"):
            raise ValueError(f"loss must be 'elbo' or 'iwae', not {loss!r}")
        self.input_dim, self.latent, self.loss, self.mc_samples = input_dim, latent, loss, mc_samples
        self.encoder_shared = nn.Linear(input_dim, hidden)
        self.encoder_hidden = nn.Linear(hidden, hidden)
        self.encoder_mu = nn.Linear(hidden, latent)
        self.encoder_log_sigma = nn.Linear(hidden, latent)
        self.decoder_shared = nn.Linear(latent, hidden)
        self.decoder_hidden = nn.Linear(hidden, hidden)
        self.decoder_out = nn.Linear(hidden, input_dim)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = torch.tanh(self.encoder_hidden(torch.tanh(self.encoder_shared(x.flatten(1)))))
        return self.encoder_mu(h), torch.exp(self.encoder_log_sigma(h)) + STD_EPS

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Bernoulli logits for latent codes z [..., latent] -> [..., input_dim]."""
        return self.decoder_out(torch.relu(self.decoder_hidden(torch.tanh(self.decoder_shared(z)))))

    def log_weights(self, x: torch.Tensor, k: int,
                    generator: torch.Generator | None = None) -> torch.Tensor:
        """log p(x, z_k) - log q(z_k | x) for k posterior samples: shape [k, B].

        x must be binary; the Bernoulli log-likelihood is summed over pixels (nats)."""
        x = x.flatten(1)
        mu, std = self.encode(x)
        eps = torch.randn((k, *mu.shape), generator=generator, dtype=mu.dtype, device=mu.device)
        z = mu + std * eps
        logits = self.decode(z)
        log_px_z = -F.binary_cross_entropy_with_logits(
            logits, x.expand_as(logits), reduction="none").sum(-1)
        log_pz = -0.5 * (z.pow(2).sum(-1) + self.latent * LOG_2PI)
        log_qz_x = -0.5 * (eps.pow(2).sum(-1) + self.latent * LOG_2PI) - std.log().sum(-1)
        return log_px_z + log_pz - log_qz_x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Per-image training loss: -ELBO (mean over MC samples) or -IWAE bound."""
        lw = self.log_weights(x, self.mc_samples)
        if self.loss == "iwae":
            return -(torch.logsumexp(lw, 0) - math.log(self.mc_samples))
        return -lw.mean(0)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Pixel probabilities of n images decoded from z ~ N(0, I)."""
        z = torch.randn(n, self.latent, generator=generator)
        return torch.sigmoid(self.decode(z))


class GenerativeLoss:
    """Avalanche criterion for models whose forward returns a per-image loss: its mean.

    Targets are ignored (generative training is unsupervised)."""

    def __call__(self, output: torch.Tensor, _targets=None) -> torch.Tensor:
        return output.mean()
