"""An independent reference loop for `bench.perf`: a VAE of the paper's sizes written without any
of the project's model code (plain `nn.Sequential`, its own ELBO), trained on the same minibatch
sizes as the harness. The harness's loop is also compared with a plain loop over its own
`BernoulliVAE` (benchmarks.PlainRun), which cannot see a cost inside that model; this one can.

The ELBO is the textbook form a hand-written script would use: the Bernoulli log-likelihood of
`mc_samples` posterior draws (binary cross-entropy with logits) minus the Gaussian KL in closed
form. The project's model estimates log p(x, z) - log q(z | x) from the same draws instead (the
paper's estimator); the arithmetic of the two differs by the KL's few hundred FLOPs per image.
"""
from __future__ import annotations

import time

import torch
import torch.nn.functional as F
from torch import nn

STD_EPS = 1e-6
CPU = torch.device("cpu")


class IndependentVAE(nn.Module):
    """784 -> 200 tanh -> 200 tanh -> (mu, log sigma) of 50; 50 -> 200 tanh -> 200 relu -> 784."""

    def __init__(self, pixels: int = 784, hidden: int = 200, latent: int = 50, mc_samples: int = 1):
        super().__init__()
        self.latent, self.mc_samples = latent, mc_samples
        self.encoder = nn.Sequential(nn.Linear(pixels, hidden), nn.Tanh(), nn.Linear(hidden, hidden), nn.Tanh(),
                                     nn.Linear(hidden, 2 * latent))
        self.decoder = nn.Sequential(nn.Linear(latent, hidden), nn.Tanh(), nn.Linear(hidden, hidden), nn.ReLU(),
                                     nn.Linear(hidden, pixels))

    def negative_elbo(self, x: torch.Tensor) -> torch.Tensor:
        """Mean over the batch of -(E_q log p(x | z) - KL(q(z | x) || N(0, I)))."""
        x = x.flatten(1)
        mu, log_sigma = self.encoder(x).chunk(2, dim=-1)
        std = log_sigma.exp() + STD_EPS
        z = mu + std * torch.randn((self.mc_samples, *mu.shape), device=x.device)
        logits = self.decoder(z)
        reconstruction = -F.binary_cross_entropy_with_logits(
            logits, x.expand_as(logits), reduction="none").sum(-1).mean(0)
        kl = 0.5 * (std.pow(2) + mu.pow(2) - 1).sum(-1) - std.log().sum(-1)
        return (kl - reconstruction).mean()


class IndependentRun:
    """The harness's steps (minibatch sizes) through the independent VAE: a random minibatch of
    the images, freshly binarized, Adam with the profile's settings."""

    def __init__(self, images: torch.Tensor, profile, seed: int = 0, device: torch.device = CPU):
        torch.manual_seed(seed)
        self.generator = torch.Generator(device).manual_seed(seed)
        self.images, self.device = images.to(device), device
        self.model = IndependentVAE(mc_samples=profile.mc_samples).to(device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=profile.lr, betas=tuple(profile.betas),
                                          fused=device.type in ("cpu", "cuda"))
        self.losses: list[float] = []

    def train(self, batch_sizes: list[int]) -> float:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        start = time.perf_counter()
        for size in batch_sizes:
            idx = torch.randint(len(self.images), (size,), generator=self.generator, device=self.device)
            x = torch.bernoulli(self.images[idx], generator=self.generator)
            self.optimizer.zero_grad()
            loss = self.model.negative_elbo(x)
            loss.backward()
            self.optimizer.step()
            self.losses.append(loss.detach())
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return time.perf_counter() - start
