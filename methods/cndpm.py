"""CN-DPM: Continual Neural Dirichlet Process Mixture (Lee et al., ICLR 2020), task-free, as the
authors' code runs it (soochan-lee/CN-DPM, MIT: ndpm/ndpm.py, ndpm/priors.py, ndpm/expert.py,
components/component.py, configs/mnist_gen-cndpm.yaml; every rule with its file and line, and the
differences kept, in docs/methods.md#cndpm).

Model: a Dirichlet-process mixture of VAE experts. Expert 0 is a placeholder: a randomly
initialised (seeded), frozen VAE whose "count" is alpha; expert k >= 1 has count N_k.
Each sample's score for expert k is NLL_k(x) - log N_k (NLL = negative ELBO: the reconstruction
term over `mc_samples` z ~ q(z|x) (the code's z_samples: 1) plus the closed-form KL, the code's
`Vae.nll`); the placeholder's is NLL_0(x) - log_alpha.

- Wake phase, per incoming batch, on one binarization of it (ndpm.py:44-143): samples whose best
  score is the placeholder's go to the short-term memory (STM), stored as that binarization (the
  code's STM holds the loader's binary tensors); responsibilities r_k = the softmax over the real
  experts of -score, for every sample of the batch (STM-bound ones included, as the code's
  `to_expert`); N_k += sum of r_k; an expert may be updated only if that sum exceeds `min_usage`
  (0.1). How the experts learn (`wake`):
  - "authors" (default): one step per incoming batch on the loss summed over the batch's
    expert-bound samples and the experts, sum_k r_k NLL_k, computed on the routing binarization;
    each expert steps its own Adam, the one it slept with, whose learning rate dropped to
    `sleep_lr * wake_lr_factor` = 3e-4 * 0.003 = 9e-7 at the end of its sleep (the code's
    MultiStepLR, milestone 1, gamma 0.003, stepped twice at the end of the sleep: ndpm.py:274-275);
    gradients clipped by value (0.5). Experts are all but frozen after their sleep.
  - "frozen": experts never change after their sleep (routing and counts as above).
  - "harness" (the harness's earlier form): the strategy trains the expert-bound samples for the
    profile's E passes with the responsibility-weighted loss through its own optimizer at the
    profile's learning rate, each pass freshly binarized.
- Sleep phase, when |STM| >= `stm_capacity` (1,000), after the batch's wake step: a new expert
  with N = |STM| + 1 (the code's new prior entry starts at 1, then adds |STM|: priors.py:30-52)
  trains alone for `sleep_steps` (12,000) steps of `sleep_batch` (50) STM samples drawn with
  replacement, with its own Adam (`sleep_lr` 3e-4, betas (0.9, 0.999)), L2 penalty
  `weight_decay` (1e-5) * sum ||param||^2, gradients clipped by value (0.5); then the STM is
  emptied. `max_experts` caps the mixture (the code has no cap; the OCM paper's Table 1 ran
  CN-DPM with 30): once it is reached the placeholder leaves the routing, so no sample goes to the
  STM any more and every sample is explained by the existing experts.
- The generative model is the count-weighted mixture of the real experts: w_k = N_k / sum N.
  Before the first sleep it is the placeholder alone (weight 1), so evaluation works. Samples
  draw an expert with w; the likelihood is log sum_k w_k p_k(x) with per-expert IWAE estimates
  (`component_log_weights` + `log_mixture_weights`); `reconstruct` goes through each image's
  best-scoring expert.

Budget: the wake steps (one per incoming batch with an expert to update, "authors"; E passes,
"harness") plus each sleep's steps (`extra_steps`/`extra_images`). Memory: the STM.

Deliberate differences from the code, each for a reason (docs/methods.md#cndpm has the table):
- experts are independent copies of the paper's MLP VAE (784-200-200-50, `BernoulliVAE`), not the
  code's `mlp_sharing_vae` (z = 16, each new expert reading its predecessors' hidden features):
  the harness compares methods on one architecture;
- the online batch is the harness's 64, not the code's 10 (one protocol for every method); with
  the wake learning rate at 9e-7 this changes only how finely routing and STM admission are cut;
- the sleep's L2 term is added to the gradients (2 * weight_decay * p, before clipping) rather than
  to the loss: the same update, 30% faster per step. The draws (binarizations, STM indices, z)
  come from the method's seeded generator and each new expert's initialisation from a seed drawn
  from it, so runs repeat exactly;
- evaluation is the harness's IWAE of the count-weighted mixture (the code reports a 16-sample
  ELBO inside the mixture, in bits per dimension).

`log_alpha` keeps the code's 410: our placeholder's NLL on MNIST digits (546 nats) is the code's
(~784 log 2), and with 12,000-step sleeps the threshold it sets separates an expert's digits from
the others' (numbers at `CNDPMConfig`).
"""
from __future__ import annotations

import math

import torch
from torch import nn

from methods.catalog import CNDPMConfig
from methods.core import GenerativePlugin, refresh_optimizer, register_method
from methods.core.strategy import NonFiniteLossError
from methods.models.contract import draw_components, eval_mode
from methods.models.gaussian import gaussian_kl
from methods.models.vae import BernoulliVAE
from streams.stream import binarize


def seeded_vae(seed: int, mc_samples: int = 1, input_dim: int = 784) -> BernoulliVAE:
    """A `BernoulliVAE` initialised from `seed` (the global random state is left untouched)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return BernoulliVAE(input_dim=input_dim, mc_samples=mc_samples)


def expert_nll(vae: BernoulliVAE, x: torch.Tensor, samples: int = 1,
               generator: torch.Generator | None = None) -> torch.Tensor:
    """Negative ELBO per image, the code's `Vae.nll`: -E_q log p(x|z) over `samples` z ~ q(z|x)
    plus the closed-form KL(q(z|x) || N(0, I)): [B] (nats). x: binary [B, D]."""
    mu, std = vae.encode(x, 0)
    eps = torch.randn((samples, *mu.shape), generator=generator, dtype=mu.dtype, device=mu.device)
    log_px_z = vae.decoder_log_likelihood(mu + std * eps, x, 0).mean(0)
    return gaussian_kl(mu, std, 0.0, 1.0) - log_px_z


class CNDPMModel(nn.Module):
    """The placeholder (frozen, component of the mixture only while no expert exists), the experts
    and their counts N_k (`counts`, float64). `update_mask[k]`: expert k may be updated now (the
    minimum-usage rule; set by the plugin for each incoming batch)."""

    def __init__(self, mc_samples: int = 1, placeholder_seed: int = 0, input_dim: int = 784):
        super().__init__()
        self.mc_samples = mc_samples
        self.placeholder = seeded_vae(placeholder_seed, mc_samples, input_dim)
        for p in self.placeholder.parameters():
            p.requires_grad_(False)
        self.experts = nn.ModuleList()
        self.register_buffer("counts", torch.zeros(0, dtype=torch.float64))
        self.update_mask: list[bool] = []

    @property
    def device(self) -> torch.device:
        return self.placeholder.device

    @property
    def num_experts(self) -> int:
        return len(self.experts)

    def add_expert(self, count: float, seed: int) -> BernoulliVAE:
        expert = seeded_vae(seed, self.mc_samples, self.placeholder.input_dim).to(self.device)
        self.experts.append(expert)
        self.counts = torch.cat([self.counts, self.counts.new_tensor([float(count)])])
        self.update_mask.append(True)
        return expert

    def log_counts(self) -> torch.Tensor:
        """log N_k of the real experts: [K] (float32)."""
        return self.counts.log().float()

    # ------------------------------------------------------------------ the contract
    @property
    def num_components(self) -> int:
        return max(1, self.num_experts)

    def _components(self) -> list[BernoulliVAE]:
        return list(self.experts) if self.num_experts else [self.placeholder]

    def log_mixture_weights(self) -> torch.Tensor:
        """log(N_k / sum N); the placeholder alone (log 1) before any expert exists."""
        if not self.num_experts:
            return torch.zeros(1, device=self.device)
        return (self.counts / self.counts.sum()).log().float()

    def component_log_weights(self, x: torch.Tensor, k: int,
                              generator: torch.Generator | None = None) -> torch.Tensor:
        return torch.stack([vae.log_weights(x, k, generator, 0) for vae in self._components()])

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Pixel probabilities: an expert drawn per image in proportion to its count, z ~ N(0, I)."""
        components = self._components()
        which = draw_components(self.log_mixture_weights(), n, generator)
        z = torch.randn(n, self.placeholder.latent, generator=generator, device=self.device)
        out = torch.empty(n, self.placeholder.input_dim, device=self.device)
        for c in which.unique().tolist():
            out[which == c] = torch.sigmoid(components[c].decode(z[which == c], 0))
        return out

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """Pixel probabilities decoded from the posterior mean of each image's best-scoring expert
        (NLL_k - log N_k, with the NLL's reconstruction term taken at the posterior mean)."""
        x = x.flatten(1)
        components = self._components()
        means, scores = [], []
        for vae in components:
            mu, std = vae.encode(x, 0)
            means.append(mu)
            scores.append(gaussian_kl(mu, std, 0.0, 1.0) - vae.decoder_log_likelihood(mu, x, 0))
        if self.num_experts:
            scores = torch.stack(scores) - self.log_counts()[:, None]
            best = scores.argmin(0)
        else:
            best = torch.zeros(len(x), dtype=torch.long, device=x.device)
        out = torch.empty_like(x, dtype=torch.float32)
        for c in best.unique().tolist():
            out[best == c] = torch.sigmoid(components[c].decode(means[c][best == c], 0))
        return out

    # ------------------------------------------------------------------ CN-DPM
    def nll_matrix(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """NLL of every image under the placeholder (row 0) and each expert: [1+K, B]."""
        x = x.flatten(1)
        return torch.stack([expert_nll(vae, x, self.mc_samples, generator)
                            for vae in (self.placeholder, *self.experts)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Per-image wake loss sum_k r_k NLL_k over the experts the minimum-usage rule lets update,
        r = softmax over all experts of -(NLL_k - log N_k) (no gradient through r). Experts that
        may not update are evaluated without gradient, so the optimizer leaves them alone."""
        x = x.flatten(1)
        mask = self.update_mask
        if not any(mask):   # nothing may update (the plugin then gives the strategy no images)
            return x.new_zeros(len(x), requires_grad=True)
        nll = []
        for vae, trainable in zip(self.experts, mask):
            if trainable:
                nll.append(expert_nll(vae, x, self.mc_samples))
            else:
                with torch.no_grad():
                    nll.append(expert_nll(vae, x, self.mc_samples))
        stacked = torch.stack(nll)
        r = torch.softmax(-(stacked.detach() - self.log_counts()[:, None]), 0)
        return sum(r[k] * nll[k] for k, trainable in enumerate(mask) if trainable)


@register_method("cndpm", CNDPMConfig)   # description and settings: methods/catalog.py
class CNDPMPlugin(GenerativePlugin):
    def __init__(self, config: CNDPMConfig | None = None, seed: int = 0):
        super().__init__(config, seed)
        self.model: CNDPMModel | None = None   # set by build_model, or by the strategy's first train()
        self.stm: torch.Tensor | None = None   # binary images (their routing binarization)
        self.sleeps = 0
        self.wake_steps = 0
        self.expert_optimizers: list[torch.optim.Adam] = []   # "authors": each expert's own Adam

    def build_model(self, profile) -> CNDPMModel:
        self.model = CNDPMModel(mc_samples=self.config.mc_samples or profile.mc_samples,
                                placeholder_seed=self.seed, input_dim=self.input_dim)
        return self.model

    def before_training(self, strategy, **kwargs):
        """The model, for `training_images` (which sees only the incoming images)."""
        self.model = strategy.model

    @property
    def memory_size(self) -> int:
        return 0 if self.stm is None else len(self.stm)

    def extra_stats(self) -> dict:
        model = self.model
        counts = [] if model is None else [round(float(c), 3) for c in model.counts]
        return {"experts": len(counts), "counts": counts, "sleeps": self.sleeps, "stm_size": self.memory_size,
                "wake_steps": self.wake_steps}

    def at_cap(self, model: CNDPMModel) -> bool:
        cap = self.config.max_experts
        return cap is not None and model.num_experts >= cap

    # ------------------------------------------------------------------------- wake
    def route(self, model: CNDPMModel, incoming: torch.Tensor) -> torch.Tensor:
        """The wake phase for one incoming batch, on one binarization of it: the STM admits the
        samples the placeholder scores best (none once `max_experts` is reached); every sample's
        responsibilities add to the counts and set the minimum-usage mask; under wake="authors"
        the experts take their step. Returns the boolean mask of expert-bound samples."""
        cfg = self.config
        x = binarize(incoming, self.generator)
        learn = cfg.wake == "authors" and model.num_experts > 0
        with eval_mode(model), torch.set_grad_enabled(learn):
            nll = model.nll_matrix(x.flatten(1), self.generator)            # [1+K, B]
        log_alpha = -math.inf if self.at_cap(model) else cfg.log_alpha
        log_counts = torch.cat([nll.new_tensor([log_alpha]), model.log_counts()])
        scores = nll.detach() - log_counts[:, None]
        to_stm = scores.argmin(0) == 0
        found = x[to_stm]
        self.stm = found if self.stm is None else torch.cat([self.stm, found])
        keep = ~to_stm
        if not model.num_experts:
            model.update_mask = []
            return keep
        r = torch.softmax(-scores[1:], 0)                                   # [K, B], every sample
        usage = r.sum(1)
        model.counts += usage.to(model.counts.dtype)
        model.update_mask = (usage > cfg.min_usage).tolist()
        if learn and keep.any() and any(model.update_mask):
            self.wake_step(model, (nll[1:, keep] * r[:, keep]).sum(), int(keep.sum()))
        return keep

    def wake_step(self, model: CNDPMModel, loss: torch.Tensor, images: int) -> None:
        """The authors' wake update: the summed loss, one step of each expert's own Adam (if its
        usage allows), gradients clipped by value."""
        if not math.isfinite(loss.item()):
            raise NonFiniteLossError(f"{self.name}: the wake phase's loss became NaN or infinite")
        loss.backward()
        for expert, optimizer, allowed in zip(model.experts, self.expert_optimizers, model.update_mask):
            if allowed:
                if self.config.clip_value is not None:
                    nn.utils.clip_grad_value_(expert.parameters(), self.config.clip_value)
                optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        self.wake_steps += 1
        self.extra_steps += 1
        self.extra_images += images

    def training_images(self, incoming: torch.Tensor) -> torch.Tensor:
        """What the strategy trains on: under wake="harness" the expert-bound samples when an
        expert may update; otherwise nothing (the wake step is the method's own)."""
        keep = self.route(self.model, incoming)
        if self.config.wake != "harness" or not any(self.model.update_mask):
            return incoming[:0]
        return incoming[keep]

    def before_update(self, strategy, **kwargs):
        if self.config.clip_value is not None:
            nn.utils.clip_grad_value_([p for p in strategy.model.experts.parameters() if p.grad is not None],
                                      self.config.clip_value)

    # ------------------------------------------------------------------------ sleep
    def update_memory(self, incoming: torch.Tensor, strategy=None) -> None:
        if self.memory_size >= self.config.stm_capacity:
            self.sleep(strategy.model if strategy is not None else self.model, strategy)

    def sleep(self, model: CNDPMModel, strategy=None) -> BernoulliVAE:
        """A new expert (N = |STM| + 1) trained alone on the STM; then the STM empties."""
        cfg = self.config
        stm, size = self.stm, self.memory_size
        seed = int(torch.randint(2 ** 62, (1,), generator=self.generator, device=self.generator.device))
        expert = model.add_expert(size + 1, seed)
        params = list(expert.parameters())
        optimizer = torch.optim.Adam(params, lr=cfg.sleep_lr)
        with torch.enable_grad():
            for _ in range(cfg.sleep_steps):
                which = torch.randint(size, (cfg.sleep_batch,), generator=self.generator, device=stm.device)
                x = stm[which].flatten(1)      # binary already: the STM keeps its routing binarization
                loss = expert_nll(expert, x, model.mc_samples, self.generator).mean()
                optimizer.zero_grad()
                loss.backward()
                if cfg.weight_decay:   # the gradient of weight_decay * sum ||p||^2 (the code adds it
                    # to the loss; added here to the gradients, before clipping: the same, 30% faster)
                    torch._foreach_add_([p.grad for p in params], params, alpha=2 * cfg.weight_decay)
                if cfg.clip_value is not None:
                    nn.utils.clip_grad_value_(params, cfg.clip_value)
                optimizer.step()
        for p in params:
            p.grad = None
        if cfg.sleep_steps and not math.isfinite(loss.item()):   # once per sleep: a CPU/GPU sync
            raise NonFiniteLossError(f"{self.name}: the sleep phase's training loss became NaN or infinite")
        for group in optimizer.param_groups:   # the code's MultiStepLR after the sleep: 3e-4 -> 9e-7
            group["lr"] = cfg.sleep_lr * cfg.wake_lr_factor
        self.expert_optimizers.append(optimizer)
        self.extra_steps += cfg.sleep_steps
        self.extra_images += cfg.sleep_steps * cfg.sleep_batch
        self.sleeps += 1
        self.stm = stm[:0]
        self.timeline.append({
            "step": strategy.clock.train_iterations if strategy is not None else None,
            "position": self.stream_position, "experts": model.num_experts,
            "components": model.num_components, "stm": size,
            "buffer": size,   # what it stores at the event (the timeline contract: bench.record.Timeline)
            "expanded": True})
        if cfg.wake == "harness":
            refresh_optimizer(strategy)   # the new expert's parameters join the main optimizer
        else:
            for p in params:   # only its own optimizer changes it: none of the strategy's steps
                p.requires_grad_(cfg.wake == "authors")
        return expert
