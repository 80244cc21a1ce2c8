"""CURL: Continual Unsupervised Representation Learning (Rao et al., 2019), task-free.

Model: shared encoder -> q(y|x), a softmax over the *active* components; per-component Gaussian
latent heads q(z|x, y) and learned priors p(z|y) = N(mu_y, sigma_y^2); a shared Bernoulli decoder
(the same layer sizes as the paper's MLP VAE). Loss: the mixture ELBO, exact over y,
  E_q(y|x)[ E_q(z|x,y) log p(x|z) - KL(q(z|x,y) || p(z|y)) ] - KL(q(y|x) || uniform).
Expansion, as the authors' code runs it (deepmind-research curl/training.py, section "5) DYNAMIC
EXPANSION"; file and line for each rule in docs/methods.md#curl): the model is eligible once it
has learned from `burn_in` incoming images and `spacing` more since the last expansion, below 30
components (the authors wait 100 steps each, 1% of their 10,000-step period per class: here 1% of
a task, `task*0.01`, resolved per cell from the stream's task length); only while eligible, real samples (first pass over each incoming batch) whose ELBO is
below `threshold` (-200 nats) join a buffer (none are collected during the wait after an
expansion). When it holds `buffer_size` (100), it is cut to a multiple of `expansion_batch` (100,
the authors' batch; keeping the latest samples), a new component copies the most probable one (the
largest summed q(y|x) over the buffer) and `expansion_passes` (10) passes over the buffer train the
ELBO with y fixed to it, stepping the whole q(y|x) logit layer, the latent heads and the priors
with the main optimizer (the shared encoder and decoder stay fixed).
Mixture generative replay from a frozen snapshot (training.py, "1) PERIODICALLY TAKE SNAPSHOTS"
and `get_generated_data`): the components' use is counted (the summed q(y|x) of the real images
of every step); a snapshot is taken every `refresh_images` incoming images (the authors' 'fixed'
mode: one task's length, resolved per cell from the stream that runs), or at each expansion,
before the new component is made (`replay_refresh="expansion"`, their 'dynamic' mode); its samples
pick y in proportion to the use counted up to the snapshot (`replay_components="uniform"`:
uniformly), z ~ p(z|y), decoder means thresholded at 0.5 (the authors' `binarize_fn`;
`replay_binarization="bernoulli"` draws). After each real step the main optimizer takes one step on
a whole generated batch of `replay_per_batch` (64) images (the authors' `gen_every_n = 2`: every
second batch is generated); `replay_mix="join"` joins them to the real minibatch instead (the
harness's earlier form).

Differences kept (the shared protocol: docs/methods.md#curl): the paper's MLP sizes and z = 50
instead of the authors' [1200, 600, 300, 150] encoder and z = 32; minibatches of 64, Adam betas
(0.5, 0.999) and freshly drawn binarizations of the real data (the authors: 100, beta1 0.9, a
0.5 threshold); the new component's head and prior start a fresh Adam state (TF1's shared bias
correction let the authors' first expansion steps move 3-6x further; its logit row, inside the
shared logit tensor, moves 5-13x lr at first, as theirs: docs/methods.md#curl); per-component
priors (the authors' prior is a linear map of one-hot y with a shared bias).

Likelihood: log p(x) = log (1/C) sum_y p(x|y) (p(y) uniform over active components, the model's
own prior), with p(x|y) estimated by importance sampling over z with q(z|x,y) as proposal: the
mixture estimator of `methods.models.likelihood`, sampling over both y (exhaustively) and z.
Budget: E passes over each incoming batch (plus replay); CURL stores no data but its buffer.
"""
from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F
from torch import nn

from methods.catalog import CURLConfig
from methods.core import GenerativePlugin, extend_minibatch, frozen_copy, refresh_optimizer, register_method
from methods.core.minibatches import TensorMinibatches
from methods.core.strategy import NonFiniteLossError
from methods.core.task_length import require_count
from methods.models.contract import draw_components, uniform_log_weights
from methods.models.gaussian import LOG_2PI, STD_EPS, gaussian_kl
from methods.models.vae import mlp_decoder_log_likelihood
from streams.stream import binarize


class CURLModel(nn.Module):
    def __init__(self, input_dim: int = 784, hidden: int = 200, latent: int = 50,
                 max_components: int = 30, mc_samples: int = 1):
        super().__init__()
        self.input_dim, self.hidden, self.latent = input_dim, hidden, latent
        self.mc_samples = mc_samples
        self.encoder_shared = nn.Linear(input_dim, hidden)
        self.encoder_hidden = nn.Linear(hidden, hidden)
        self.cluster_logits = nn.Linear(hidden, max_components)
        self.heads_mu = nn.ModuleList([nn.Linear(hidden, latent)])
        self.heads_log_sigma = nn.ModuleList([nn.Linear(hidden, latent)])
        self.prior_mu = nn.ParameterList([nn.Parameter(torch.zeros(latent))])
        self.prior_log_sigma = nn.ParameterList([nn.Parameter(torch.zeros(latent))])
        self.decoder_shared = nn.Linear(latent, hidden)
        self.decoder_hidden = nn.Linear(hidden, hidden)
        self.decoder_out = nn.Linear(hidden, input_dim)

    @property
    def num_components(self) -> int:
        return len(self.heads_mu)

    def log_mixture_weights(self) -> torch.Tensor:
        """p(y) is uniform over the active components (the model's own prior)."""
        return uniform_log_weights(self.num_components, self.decoder_out.weight.device)

    @property
    def max_components(self) -> int:
        return self.cluster_logits.out_features

    # ---------------------------------------------------------------------------- pieces
    def hidden_features(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.encoder_hidden(torch.tanh(self.encoder_shared(x.flatten(1)))))

    def log_q_y(self, h: torch.Tensor) -> torch.Tensor:
        """log q(y|x) over the active components only: [B, C]."""
        return F.log_softmax(self.cluster_logits(h)[:, :self.num_components], dim=1)

    def posterior(self, h: torch.Tensor, c: int):
        return self.heads_mu[c](h), torch.exp(self.heads_log_sigma[c](h)) + STD_EPS

    def prior(self, c: int):
        return self.prior_mu[c], torch.exp(self.prior_log_sigma[c]) + STD_EPS

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder_out(torch.relu(self.decoder_hidden(torch.tanh(self.decoder_shared(z)))))

    def log_px_z(self, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return mlp_decoder_log_likelihood(z, x, self.decoder_shared, self.decoder_hidden, self.decoder_out)

    def _log_weights(self, x, h, c, k, generator=None):
        """log p(x|z) + log p(z|y=c) - log q(z|x,y=c), z ~ q(z|x,c): [k, B]."""
        mu, std = self.posterior(h, c)
        p_mu, p_std = self.prior(c)
        eps = torch.randn((k, *mu.shape), generator=generator, device=mu.device)
        z = mu + std * eps
        log_px = self.log_px_z(z, x)
        log_pz = (-0.5 * ((z - p_mu) / p_std) ** 2 - p_std.log() - 0.5 * LOG_2PI).sum(-1)
        log_qz = (-0.5 * eps ** 2 - std.log() - 0.5 * LOG_2PI).sum(-1)
        return log_px + log_pz - log_qz

    def component_elbo(self, x: torch.Tensor, h: torch.Tensor, c: int) -> torch.Tensor:
        """E_q(z|x,c) log p(x|z) - KL(q(z|x,c) || p(z|c)), KL in closed form: [B]."""
        mu, std = self.posterior(h, c)
        p_mu, p_std = self.prior(c)
        z = mu + std * torch.randn((self.mc_samples, *mu.shape), device=mu.device)
        log_px = self.log_px_z(z, x).mean(0)
        return log_px - gaussian_kl(mu, std, p_mu, p_std)

    # ------------------------------------------------------------------------- interface
    def elbo(self, x: torch.Tensor) -> torch.Tensor:
        """The mixture ELBO per image: [B]."""
        x = x.flatten(1)
        h = self.hidden_features(x)
        log_q_y = self.log_q_y(h)
        q_y = log_q_y.exp()
        per_component = torch.stack([self.component_elbo(x, h, c) for c in range(self.num_components)], 1)
        kl_y = (q_y * (log_q_y + math.log(self.num_components))).sum(1)
        self.last_q_y = q_y.detach()   # read by the plugin to count each component's use
        return (q_y * per_component).sum(1) - kl_y

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return -self.elbo(x)

    def component_log_weights(self, x, k, generator=None) -> torch.Tensor:
        x = x.flatten(1)
        h = self.hidden_features(x)
        return torch.stack([self._log_weights(x, h, c, k, generator) for c in range(self.num_components)])

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None,
               log_weights: torch.Tensor | None = None) -> torch.Tensor:
        """Pixel probabilities: y drawn with the mixture's weights (or `log_weights`, e.g. the
        components' use for replay), z ~ p(z|y)."""
        device = self.decoder_out.weight.device
        which = draw_components(self.log_mixture_weights() if log_weights is None else log_weights,
                                n, generator)
        eps = torch.randn(n, self.latent, generator=generator, device=device)
        mu = torch.stack([self.prior(c)[0] for c in range(self.num_components)])[which]
        std = torch.stack([self.prior(c)[1] for c in range(self.num_components)])[which]
        return torch.sigmoid(self.decode(mu + std * eps))

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """Pixel probabilities decoded from the posterior mean of each image's most probable y."""
        h = self.hidden_features(x.flatten(1))
        y = self.log_q_y(h).argmax(1)
        means = torch.stack([self.posterior(h, c)[0] for c in range(self.num_components)], 1)
        return torch.sigmoid(self.decode(means[torch.arange(len(x), device=x.device), y]))

    def add_component(self, parent: int) -> int:
        """A new component initialised as a copy of `parent` (head, prior, q(y) logit)."""
        if self.num_components >= self.max_components:
            raise RuntimeError("CURL: component cap reached")
        new = self.num_components
        self.heads_mu.append(copy.deepcopy(self.heads_mu[parent]))
        self.heads_log_sigma.append(copy.deepcopy(self.heads_log_sigma[parent]))
        self.prior_mu.append(nn.Parameter(self.prior_mu[parent].detach().clone()))
        self.prior_log_sigma.append(nn.Parameter(self.prior_log_sigma[parent].detach().clone()))
        with torch.no_grad():
            self.cluster_logits.weight[new] = self.cluster_logits.weight[parent]
            self.cluster_logits.bias[new] = self.cluster_logits.bias[parent]
        return new


@register_method("curl", CURLConfig)   # description and settings: methods/catalog.py
class CURLPlugin(GenerativePlugin):
    def __init__(self, config: CURLConfig | None = None, seed: int = 0):
        super().__init__(config, seed)
        self.buffer: torch.Tensor | None = None
        self.snapshot: CURLModel | None = None
        self.replay_log_weights: torch.Tensor | None = None   # the snapshot's y distribution
        self.usage: torch.Tensor | None = None   # summed q(y|x) of real images, per component
        self.snapshots = 0
        self.steps = 0
        self.last_expansion_position = 0   # the stream position (incoming images) of the last expansion
        self.expansions: list[dict] = []
        self._real = 0

    def build_model(self, profile) -> CURLModel:
        return CURLModel(input_dim=self.input_dim, max_components=self.config.max_components,
                         mc_samples=profile.mc_samples)

    @property
    def memory_size(self) -> int:
        return 0 if self.buffer is None else len(self.buffer)

    def extra_stats(self) -> dict:
        return {"expansion_steps": [e["step"] for e in self.expansions], "snapshots": self.snapshots,
                "usage": None if self.usage is None else [round(float(u), 3) for u in self.usage]}

    def replay_batch(self) -> torch.Tensor:
        """`replay_per_batch` images of the snapshot: y by the components' use, z ~ p(z|y), the
        decoder's means binarized (at 0.5 as the authors', or drawn)."""
        means = self.snapshot.sample(self.config.replay_per_batch, self.generator, self.replay_log_weights)
        if self.config.replay_binarization == "threshold":
            return (means > 0.5).to(means.dtype)
        return binarize(means, self.generator)

    def replaying(self) -> bool:
        return self.snapshot is not None and self.config.replay_per_batch > 0

    def before_forward(self, strategy, **kwargs):
        self._real = len(strategy.mbatch[0])
        if self.replaying() and self.config.replay_mix == "join":
            extend_minibatch(strategy, self.replay_batch())

    def replay_step(self, strategy) -> None:
        """The authors' alternation: after a real step, one step of the main optimizer on a whole
        generated batch (counted in `extra_steps`; it adds nothing to the use counts or the buffer)."""
        model = strategy.model
        x = self.replay_batch()
        loss = model(x.view(len(x), -1)).mean()
        if not math.isfinite(loss.item()):
            raise NonFiniteLossError(f"{self.name}: the replay step's loss became NaN or infinite")
        strategy.optimizer.zero_grad()
        loss.backward()
        strategy.optimizer.step()
        strategy.optimizer.zero_grad()
        self.extra_steps += 1
        self.extra_images += len(x)

    def count_use(self, model: CURLModel) -> None:
        """Add the real images' q(y|x) of this step to each component's use."""
        q_y = getattr(model, "last_q_y", None)
        if q_y is None:
            return
        used = q_y[:self._real].sum(0).double()
        if self.usage is None:
            self.usage = torch.zeros(model.max_components, dtype=torch.float64, device=used.device)
        self.usage[:len(used)] += used

    def eligible_from(self) -> int:
        """The stream position (incoming images) from which an expansion may happen: past the
        burn-in and `spacing` images after the last expansion."""
        cfg = self.config
        return max(require_count(cfg, "burn_in"), self.last_expansion_position + require_count(cfg, "spacing"))

    def learned_before(self) -> int:
        """Incoming images the model had been trained on before the current batch."""
        return self.stream_position - (0 if self._incoming is None else len(self._incoming))

    def eligible(self, model: CURLModel) -> bool:
        """Past the waits (counted in the stream's images, so the same share of a task whatever E
        is) and below the cap."""
        return (self.learned_before() >= self.eligible_from()
                and model.num_components < self.config.max_components)

    def after_training_iteration(self, strategy, **kwargs):
        self.steps += 1
        model = strategy.model
        self.count_use(model)
        cfg = self.config
        if self.replaying() and cfg.replay_mix == "alternate":
            self.replay_step(strategy)
        if strategy.clock.train_exp_epochs > 0 or not self.eligible(model):
            return
        poor = (-strategy.mb_output[:self._real].detach()) < cfg.threshold
        if poor.any():
            found = strategy.mb_x[:self._real][poor]
            self.buffer = found if self.buffer is None else torch.cat([self.buffer, found])
        if self.buffer is not None and len(self.buffer) >= cfg.buffer_size:
            self.expand(model, strategy)

    def update_memory(self, incoming: torch.Tensor, strategy=None) -> None:
        """The authors' 'fixed' replay: a new snapshot each time the stream passes another
        `refresh_images` images."""
        cfg = self.config
        if cfg.replay_refresh == "period" and self.stream_position // require_count(cfg, "refresh_images") > self.snapshots:
            self.take_snapshot(strategy.model)

    def take_snapshot(self, model: CURLModel) -> None:
        """Freeze the model for replay; replayed y follow the components' use so far."""
        self.snapshot = frozen_copy(model)
        self.snapshots += 1
        if self.config.replay_components == "usage" and self.usage is not None:
            use = self.usage[:model.num_components].clamp_min(1e-12)
            self.replay_log_weights = (use / use.sum()).log().float()
        else:
            self.replay_log_weights = None   # the model's own (uniform) weights

    def most_probable_component(self, model: CURLModel, images: torch.Tensor) -> int:
        with torch.no_grad():
            return int(model.log_q_y(model.hidden_features(images.flatten(1))).exp().sum(0).argmax())

    def expand(self, model: CURLModel, strategy=None) -> int:
        """Add a component copied from the most probable one and train it on the buffer, as the
        authors' expansion step does (training.py:753-765, 1061-1103): the buffer cut to whole
        minibatches of `expansion_batch` (keeping the latest samples); the loss is the ELBO with y
        fixed to the new component; the trained variables are the whole q(y|x) logit layer, the
        latent heads and the priors (only the new component's and the logit layer get gradients),
        stepped by the main optimizer; the shared encoder and decoder stay as they are."""
        cfg = self.config
        if cfg.replay_refresh == "expansion":   # the authors' 'dynamic' mode refreshes first
            self.take_snapshot(model)
        batches = len(self.buffer) // cfg.expansion_batch
        if batches:
            self.buffer = self.buffer[-batches * cfg.expansion_batch:]
        parent = self.most_probable_component(model, self.buffer)
        new = model.add_component(parent)
        trained = {id(p) for p in [*model.cluster_logits.parameters(), *model.heads_mu.parameters(),
                                   *model.heads_log_sigma.parameters(), *model.prior_mu, *model.prior_log_sigma]}
        if strategy is not None:
            refresh_optimizer(strategy)   # the new component joins the main optimizer, which trains it
            optimizer = strategy.optimizer
        else:   # a model used on its own: an Adam of the same variables at the authors' lr
            optimizer = torch.optim.Adam([p for p in model.parameters() if id(p) in trained], lr=1e-3)
        for _ in range(cfg.expansion_passes):
            for x, *_ in TensorMinibatches(self.buffer, cfg.expansion_batch, self.generator,
                                           dynamic_binarization=False):
                x = x.flatten(1)
                self.extra_steps += 1
                self.extra_images += len(x)
                optimizer.zero_grad()
                with torch.no_grad():
                    h = model.hidden_features(x)   # shared layers are not trained here
                loss = -(model.component_elbo(x, h, new) + model.log_q_y(h)[:, new]).mean()
                loss.backward()
                for p in model.parameters():
                    if id(p) not in trained:
                        p.grad = None   # the decoder: not in the authors' variable list
                optimizer.step()
        for p in model.parameters():
            p.grad = None
        self.expansions.append({"step": self.steps, "parent": parent, "component": new})
        # `eligible_from`: where the wait ended; the gap to `position` is the time the threshold
        # took to find `buffer_size` poorly explained samples
        self.timeline.append({"step": self.steps, "position": self.stream_position, "parent": parent,
                              "components": model.num_components, "buffer": len(self.buffer),
                              "eligible_from": self.eligible_from(), "expanded": True})
        self.buffer = None
        self.last_expansion_position = self.stream_position
        return new
