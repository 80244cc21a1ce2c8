"""The paper's Bernoulli MLP VAE (OCM, ECCV 2022, and its released code), as a mixture of components.

encoder: x -> 200 tanh (shared) -> 200 tanh -> mu (linear), sigma (exp; q std = sigma + 1e-6)
decoder: z -> 200 tanh (shared) -> 200 ReLU -> Bernoulli logits; prior N(0, I).

With one component this is the plain VAE. `add_component()` is OCM's dynamic expansion: a new
component's layers on top of the shared ones; the shared layers and older components are frozen
and only the newest component trains. `forward(x)` returns the newest component's per-image
training loss (negative ELBO, or negative IWAE bound when `loss="iwae"`), so the model plugs into
any Avalanche strategy with `GenerativeLoss` as criterion.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from methods.models.contract import draw_components, uniform_log_weights
from methods.models.gaussian import STD_EPS, reparameterized_log_density, standard_normal_log_density
from methods.models.native import decoder as decoder_inference


def bernoulli_log_likelihood(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """sum_i log Bernoulli(x_i; sigmoid(l_i)) = x . l - sum_i softplus(l_i), over the last dim.

    Exactly -binary_cross_entropy_with_logits summed. The models use the factored form below,
    `bernoulli_log_likelihood_of_layer`; this direct form is its reference (tests/test_nll.py)."""
    return (logits * x).sum(-1) - F.softplus(logits).sum(-1)


def bernoulli_log_likelihood_of_layer(h: torch.Tensor, layer: nn.Linear, x: torch.Tensor) -> torch.Tensor:
    """`bernoulli_log_likelihood(layer(h), x)` with the x . l term factored through the layer:
    x . (W h + b) = (x W) . h + x . b, where x W is computed once per image rather than a
    784-wide product per importance sample. h: [..., B, hidden], x: [B, D] -> [..., B]."""
    return (h * (x @ layer.weight)).sum(-1) + x @ layer.bias - F.softplus(layer(h)).sum(-1)


def mlp_decoder_log_likelihood(z: torch.Tensor, x: torch.Tensor, shared: nn.Linear, hidden: nn.Linear,
                               out: nn.Linear) -> torch.Tensor:
    """log p(x | z) of the decoder z -> tanh(shared) -> relu(hidden) -> out (Bernoulli logits):
    the inference rewrite where it applies (CPU, no autograd); in training (autograd on) the
    direct form, whose one output matmul the factored form doubles (it also needs x W): a training
    step took 4.2-5.4 ms with the factored form and 3.5-3.8 with the direct one, level with an
    independent nn.Sequential VAE (bench.perf, harness 0.6.0); else (evaluation off the CPU) the
    factored form."""
    if decoder_inference.applies(z):
        return decoder_inference.mlp_decoder_log_likelihood(z, x, shared, hidden, out)
    h = torch.relu(hidden(torch.tanh(shared(z))))
    if torch.is_grad_enabled():
        return bernoulli_log_likelihood(out(h), x)
    return bernoulli_log_likelihood_of_layer(h, out, x)


class Component(nn.Module):
    """The component-specific layers of one VAE."""

    def __init__(self, input_dim: int, hidden: int, latent: int):
        super().__init__()
        self.encoder_hidden = nn.Linear(hidden, hidden)
        self.encoder_mu = nn.Linear(hidden, latent)
        self.encoder_log_sigma = nn.Linear(hidden, latent)
        self.decoder_hidden = nn.Linear(hidden, hidden)
        self.decoder_out = nn.Linear(hidden, input_dim)


class BernoulliVAE(nn.Module):
    def __init__(self, input_dim: int = 784, hidden: int = 200, latent: int = 50,
                 loss: str = "elbo", mc_samples: int = 1):
        super().__init__()
        if loss not in ("elbo", "iwae"):
            raise ValueError(f"loss must be 'elbo' or 'iwae', not {loss!r}")
        self.input_dim, self.hidden, self.latent = input_dim, hidden, latent
        self.loss, self.mc_samples = loss, mc_samples
        self.encoder_shared = nn.Linear(input_dim, hidden)
        self.decoder_shared = nn.Linear(latent, hidden)
        self.components = nn.ModuleList([Component(input_dim, hidden, latent)])

    @property
    def num_components(self) -> int:
        return len(self.components)

    def log_mixture_weights(self) -> torch.Tensor:
        """Uniform: every component weighs 1/C (the paper's mixture)."""
        return uniform_log_weights(self.num_components, self.device)

    @property
    def device(self) -> torch.device:
        return self.encoder_shared.weight.device

    def add_component(self) -> Component:
        """Dynamic expansion: freeze everything trained so far, append a fresh component."""
        for p in self.parameters():
            p.requires_grad_(False)
        component = Component(self.input_dim, self.hidden, self.latent).to(self.device)
        self.components.append(component)
        return component

    # ------------------------------------------------------------------ one component
    def encode(self, x: torch.Tensor, c: int = -1) -> tuple[torch.Tensor, torch.Tensor]:
        comp = self.components[c]
        h = torch.tanh(comp.encoder_hidden(torch.tanh(self.encoder_shared(x.flatten(1)))))
        return comp.encoder_mu(h), torch.exp(comp.encoder_log_sigma(h)) + STD_EPS

    def decode(self, z: torch.Tensor, c: int = -1) -> torch.Tensor:
        """Bernoulli logits for latent codes z [..., latent] -> [..., input_dim]."""
        comp = self.components[c]
        return comp.decoder_out(torch.relu(comp.decoder_hidden(torch.tanh(self.decoder_shared(z)))))

    def decoder_log_likelihood(self, z: torch.Tensor, x: torch.Tensor, c: int = -1) -> torch.Tensor:
        """log p_c(x | z) (Bernoulli, summed over pixels) for codes z [..., B, latent] -> [..., B]."""
        comp = self.components[c]
        return mlp_decoder_log_likelihood(z, x, self.decoder_shared, comp.decoder_hidden, comp.decoder_out)

    def log_weights(self, x: torch.Tensor, k: int, generator: torch.Generator | None = None,
                    c: int = -1) -> torch.Tensor:
        """log p_c(x, z_k) - log q_c(z_k | x) for k posterior samples of component c: [k, B].

        x must be binary; the Bernoulli log-likelihood is summed over pixels (nats)."""
        x = x.flatten(1)
        mu, std = self.encode(x, c)
        eps = torch.randn((k, *mu.shape), generator=generator, dtype=mu.dtype, device=mu.device)
        z = mu + std * eps
        log_px_z = self.decoder_log_likelihood(z, x, c)
        return log_px_z + standard_normal_log_density(z) - reparameterized_log_density(eps, std)

    # ----------------------------------------------------------------- all components
    def component_log_weights(self, x: torch.Tensor, k: int,
                              generator: torch.Generator | None = None) -> torch.Tensor:
        """Log importance weights of every component: [C, k, B]."""
        return torch.stack([self.log_weights(x, k, generator, c) for c in range(self.num_components)])

    @torch.no_grad()
    def features(self, x: torch.Tensor) -> torch.Tensor:
        """OCM's selection features: posterior means of every component, concatenated [B, 50*C]."""
        return torch.cat([self.encode(x, c)[0] for c in range(self.num_components)], dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Per-image training loss of the newest component: -ELBO (mean over MC samples) or
        -IWAE bound over `mc_samples` samples."""
        lw = self.log_weights(x, self.mc_samples)
        if self.loss == "iwae":
            return -(torch.logsumexp(lw, 0) - math.log(self.mc_samples))
        return -lw.mean(0)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Pixel probabilities of n images: a component drawn per image with the mixture's
        weights, z ~ N(0, I)."""
        which = draw_components(self.log_mixture_weights(), n, generator)
        z = torch.randn(n, self.latent, generator=generator, device=self.device)
        out = torch.empty(n, self.input_dim, device=self.device)
        for c in which.unique().tolist():
            out[which == c] = torch.sigmoid(self.decode(z[which == c], c))
        return out

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """Pixel probabilities decoded from the posterior mean (newest component)."""
        return torch.sigmoid(self.decode(self.encode(x)[0]))


class GenerativeLoss:
    """Avalanche criterion for models whose forward returns a per-image loss: its mean.

    Targets are ignored (generative training is unsupervised)."""

    def __call__(self, output: torch.Tensor, _targets=None) -> torch.Tensor:
        return output.mean()
