"""LIMix: the Lifelong Infinite Mixture model (Ye & Bors, ICCV 2021), as a plugin on the shared
strategy. Rules read from the authors' code (github.com/dtuzi123/Lifelong-infinite-mixture-model,
the unsupervised script InfiniteVAE_32_Share_Loglikelihood_1.py, cited as L1:line):

- Model: shared encoder and decoder layers plus per-component heads (L1:287-323); a Student VAE is
  one more pair of heads on the same shared layers (L1:437-454).
- Task 1 trains component 1 *and* the shared layers (L1:471). From then on the shared layers are
  frozen: the component trained on a task, new or reused, trains its own heads only (L1:346-375,
  `vae_vars` = that component's encoder and decoder heads).
- The gate, when the next task's data arrives and before training on it (L1:1053-1078, the
  discrepancy of L1:897-940, the paper's Eq. 8): for every component k, with 1,000 real images of
  the new task and as many images component k generates,
      K_k = | loss_k(real) - loss_k(generated) |,   loss_k = mean negative ELBO of component k.
  If min_k K_k > threshold a component is added and trained on the new task alone; otherwise the
  component argmin_k K_k is reused and trained on the new task together with 50,000 images it
  generates itself (L1:992-995, `GenerateSamplesBySelect(50000, currentComponent)`).
- The Student trains at every step, after the component's step (L1:1034-1044), on the component's
  minibatch in which floor(B/(C+1)) images per *other* component are replaced by that component's
  samples (`GenerateBatachImages`, L1:324-344); it trains its own heads only (L1:469).
- Test time in the code: per test set, the component with the lowest loss (L1:853-866, 1099-1131);
  the Student is only shown as a reconstruction picture (L1:1094).

In this harness (each difference deliberate):
- The paper's Bernoulli MLP VAE (784-200-200-50, `methods.models.vae`): shared layers
  `encoder_shared`/`decoder_shared`, heads = the rest, exactly OCM's split. The code uses a
  convolutional VAE with a summed-MSE "likelihood" and draws z ~ U(-1, 1) when generating; here the
  likelihood is Bernoulli and z ~ N(0, I), the model's prior. The replay set and the Student's
  generated images are Bernoulli samples of the decoder's probabilities (the replay set keeps the
  probabilities and is freshly binarized at every pass, like the real images).
- The gate's generated images are the decoder's *mode* (pixel probability > 0.5), not Bernoulli
  draws. The code scores its decoder's outputs G(z), the mean = mode of its Gaussian likelihood,
  with no observation noise; the Bernoulli analogue is the mode. With Bernoulli draws the gate is
  inverted for components trained as long as the CPU profiles train them: on `mini` (one
  component, 10 passes over 600 images of a task, 3 seeds) the loss of drawn samples is far above
  that of real data (537 vs 153 nats), so K = 360-520 nats for held-out images of the component's
  own task but 260-470 for other tasks; with the mode, 1-32 vs 10-134, inverted digits 760-1620.
- The threshold is a setting (`threshold`, nats). The code hard-codes it, scale-dependent, and
  changes it between scripts: 2000 (Loglikelihood_1.py:1066), 1000 (_3:1054), 400 (_2:1057),
  200 (_4:1061) for its unsupervised cross-domain stream (MNIST, SVHN, Fashion, inverted Fashion,
  MNIST flipped left-right, L1:973); 10-100 in the supervised variants (e.g. _Supervised_MNIST_Specific_1.py:1030: 30,
  RandomMNIST_NoShare_threshold80.py:1012: 85). The default, 160 nats, was measured with this
  method (always expanding, 10 passes per task of 400-800 images, 8 seeds and task pairs): a task
  of the same classes as a component gave K <= 50 (MNIST digits, `mini`) and <= 136 (Fashion);
  a new domain gave K >= 197 (Fashion under MNIST components) and >= 278 (inverted MNIST). New
  digit pairs of the same dataset gave 2-129 on `mini`, overlapping same-class tasks, so no
  threshold separates them: like the code's unsupervised experiments, the gate separates domains,
  and on a single-dataset split stream LIMix mostly reuses one component with its own replay.
- `replay_samples` is one task's length by default ("task", resolved per cell from the stream
  that runs: methods/core/task_length.py); the code replays 50,000 (about 4 Split-MNIST tasks,
  `task*4`): on `mini`, 50,000 took 560 s a cell and swamped the 800 real images.
- The gate scores a random subset of the task (the code's data is shuffled once), and each
  activation starts a fresh Adam state (`fresh_optimizer`; the code builds a new Adam, L1:376-383).
- Evaluated model: the mixture of the components (the Student is not a component), with uniform
  weights by default (`weights="tasks"`: w_k proportional to the tasks component k learned, the
  Dirichlet-process prior's counts). The code's per-test-set choice of the lowest-loss component
  is close to the harness's best-component score max_c log p_c(x); the record's NLL is the
  mixture's, a proper likelihood. The Student is trained, as in the code, and its loss reported.
- `max_components` (default None, the code's "infinite" mixture) can cap the growth.
- Memory: LIMix stores no real image (memory 0); the generated replay set, regenerated at each
  reuse and dropped after the task, is counted in `replay_generated` (all tasks together). The
  Student's steps are counted in `extra_steps`/`extra_images` (outside the strategy's loop).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from methods.catalog import WEIGHTS, LIMixConfig
from methods.core import GenerativePlugin, refresh_optimizer, register_method
from methods.core.task_length import require_count
from methods.models.contract import eval_mode, uniform_log_weights
from methods.models.gaussian import (
    STD_EPS,
    gaussian_kl,
    reparameterized_log_density,
    standard_normal_log_density,
)
from methods.models.vae import BernoulliVAE, Component, bernoulli_log_likelihood
from streams.stream import binarize


class LIMixModel(BernoulliVAE):
    """Shared layers + one head pair per component (a `BernoulliVAE` mixture) + a Student head pair.

    Unlike `BernoulliVAE.add_component` (OCM's rule: freeze everything but the newest), any
    component can be trained again: `activate(k)` makes component k's heads (and, for the first
    task, the shared layers) the only trainable parameters, and `forward` is component k's loss.
    The Student is trained only through `student_loss`, which never changes the shared layers."""

    def __init__(self, input_dim: int = 784, hidden: int = 200, latent: int = 50, mc_samples: int = 1,
                 weights: str = "uniform"):
        super().__init__(input_dim, hidden, latent, loss="elbo", mc_samples=mc_samples)
        if weights not in WEIGHTS:
            raise ValueError(f"weights must be one of {', '.join(WEIGHTS)}, not {weights!r}")
        self.weights = weights
        self.student = Component(input_dim, hidden, latent)
        self.active = 0
        self.tasks_learned = [0]     # tasks each component was trained on (the DP's counts)

    def log_mixture_weights(self) -> torch.Tensor:
        if self.weights == "uniform" or sum(self.tasks_learned) == 0:
            return uniform_log_weights(self.num_components, self.device)
        counts = torch.tensor(self.tasks_learned, dtype=torch.float, device=self.device).clamp_min(1e-12)
        return counts.log() - counts.sum().log()

    def add_component(self) -> int:
        """Append a fresh component (nothing is frozen here: `activate` decides); its index."""
        self.components.append(Component(self.input_dim, self.hidden, self.latent).to(self.device))
        self.tasks_learned.append(0)
        return self.num_components - 1

    def activate(self, k: int, train_shared: bool = False) -> None:
        """Component k (and the shared layers if `train_shared`) trains; every other component is
        fixed. The Student's heads stay trainable (only its own optimizer steps them)."""
        self.active = k
        for p in self.parameters():
            p.requires_grad_(False)
            p.grad = None
        trainable = [self.components[k], self.student]
        if train_shared:
            trainable += [self.encoder_shared, self.decoder_shared]
        for module in trainable:
            for p in module.parameters():
                p.requires_grad_(True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Per-image training loss of the active component: -ELBO (mean over MC samples)."""
        return -self.log_weights(x, self.mc_samples, c=self.active).mean(0)

    @torch.no_grad()
    def sample_component(self, n: int, c: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Pixel probabilities of n images of component c, z ~ N(0, I): [n, D]."""
        z = torch.randn(n, self.latent, generator=generator, device=self.device)
        return torch.sigmoid(self.decode(z, c))

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """Each image decoded from the posterior mean of the component that explains it best
        (largest ELBO at the posterior mean: LIMix's lowest-loss selection, per image)."""
        x = x.flatten(1)
        best, out = None, None
        for c in range(self.num_components):
            mu, std = self.encode(x, c)
            logits = self.decode(mu, c)
            score = bernoulli_log_likelihood(logits, x) - gaussian_kl(mu, std, 0.0, 1.0)
            if best is None:
                best, out = score, torch.sigmoid(logits)
            else:
                better = score > best
                best = torch.where(better, score, best)
                out = torch.where(better[:, None], torch.sigmoid(logits), out)
        return out

    def student_loss(self, x: torch.Tensor) -> torch.Tensor:
        """Per-image -ELBO (one sample) of the Student: its heads on the shared layers, whose
        parameters are taken as constants (the code's Student trains only its heads)."""
        x = x.flatten(1)
        s = self.student
        h = torch.tanh(F.linear(x, self.encoder_shared.weight.detach(), self.encoder_shared.bias.detach()))
        h = torch.tanh(s.encoder_hidden(h))
        mu, std = s.encoder_mu(h), torch.exp(s.encoder_log_sigma(h)) + STD_EPS
        eps = torch.randn_like(mu)
        z = mu + std * eps
        d = torch.tanh(F.linear(z, self.decoder_shared.weight.detach(), self.decoder_shared.bias.detach()))
        logits = s.decoder_out(torch.relu(s.decoder_hidden(d)))
        return -(bernoulli_log_likelihood(logits, x) + standard_normal_log_density(z)
                 - reparameterized_log_density(eps, std))


def gate_images(images: torch.Tensor, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """n images of the task drawn at random (the code's data is shuffled once, so its first 1,000
    are a random mix of the task's classes; a task presented class by class would otherwise give
    the gate one class only), binarized: [n, D]."""
    pick = torch.randperm(len(images), generator=generator, device=images.device)[:n]
    return binarize(images[pick].flatten(1), generator)


@torch.no_grad()
def discrepancies(model: LIMixModel, images: torch.Tensor, n: int,
                  generator: torch.Generator | None = None, mode: bool = True) -> list[float]:
    """The gate's K_k for every component k (nats): |mean -ELBO_k of n real images (a random
    subset of `images`, binarized; the code's data is shuffled once, so its first 1,000 are random) -
    mean -ELBO_k of n images component k generates|, one-sample ELBOs as in training. Generated
    images are the decoder's mode (pixel probability > 0.5; `mode=False`: a Bernoulli draw)."""
    real = gate_images(images, n, generator)
    out = []
    with eval_mode(model):
        for c in range(model.num_components):
            probs = model.sample_component(len(real), c, generator)
            fake = (probs > 0.5).to(probs.dtype) if mode else binarize(probs, generator)
            real_loss = -model.log_weights(real, 1, generator, c).mean()
            fake_loss = -model.log_weights(fake, 1, generator, c).mean()
            out.append(abs(float(real_loss - fake_loss)))
    return out


@register_method("limix", LIMixConfig)   # descriptions and settings: methods/catalog.py
class LIMixPlugin(GenerativePlugin):
    needs_task_boundaries = True
    trains_whole_tasks = True   # limix-taskfree too: each full buffer is a task

    def __init__(self, config: LIMixConfig | None = None, seed: int = 0):
        super().__init__(config, seed)
        self.replay: torch.Tensor | None = None   # the reused component's samples, this task only
        self.tasks_done = 0
        self.replay_generated = 0
        self.student_steps_task = 0
        self._student_loss_sum = 0.0
        self.student_loss: float | None = None   # the Student's mean loss over the last task
        self._strategy = None
        self._student_optimizer: torch.optim.Optimizer | None = None

    # ------------------------------------------------------------------------ the harness
    def build_model(self, profile) -> LIMixModel:
        return LIMixModel(input_dim=self.input_dim, mc_samples=profile.mc_samples, weights=self.config.weights)


    def replay_images(self):
        return self.replay

    @property
    def memory_size(self) -> int:
        """No real image is stored (generated replay images are counted in `replay_generated`)."""
        return 0

    def extra_stats(self) -> dict:
        model = self._model() if self._strategy is not None else None
        return {"replay_generated": self.replay_generated,
                "tasks_learned": list(model.tasks_learned) if model is not None else None,
                "student_loss": self.student_loss}

    def before_training(self, strategy, **kwargs):
        self._strategy = strategy   # the gate needs the model before the first minibatch

    def _model(self) -> LIMixModel:
        model = self._strategy.model
        if not isinstance(model, LIMixModel) and not isinstance(getattr(model, "model", None), LIMixModel):
            raise TypeError(f"limix needs a LIMixModel (its build_model), not {type(model).__name__}")
        return model

    # --------------------------------------------------------------------- the task boundary
    def training_images(self, incoming: torch.Tensor) -> torch.Tensor:
        """The gate (from the second task on) chooses the component that learns this task and
        what it trains on: the task alone (a new component) or the task + its own samples."""
        self.begin_task(self._model(), incoming)
        return super().training_images(incoming)

    def begin_task(self, model: LIMixModel, images: torch.Tensor) -> None:
        """A task's images arrived (a task, or a full buffer in `limix-taskfree`): the first trains
        component 0 and the shared layers, later ones go through the gate. The code builds a new
        Adam at every activation (L1:376-383), so the optimizer's state starts afresh."""
        self.replay = None
        if self.tasks_done == 0:
            model.activate(0, train_shared=True)
            model.tasks_learned[0] += 1
        else:
            self.gate(model, images)
        if self.config.fresh_optimizer and hasattr(self._strategy, "make_optimizer"):
            self._strategy.make_optimizer(reset_optimizer_state=True)
        self.tasks_done += 1
        self.student_steps_task, self._student_loss_sum = 0, 0.0

    def gate(self, model: LIMixModel, incoming: torch.Tensor) -> None:
        cfg = self.config
        k = discrepancies(model, incoming, cfg.gate_samples, self.generator,
                          mode=cfg.gate_generated == "mode")   # random images of the task (L1:135-139)
        closest = min(range(len(k)), key=k.__getitem__)
        room = cfg.max_components is None or model.num_components < cfg.max_components
        level = cfg.gate_level(model.num_components)
        if k[closest] > level and room:
            component = model.add_component()
            decision = "expand"
            refresh_optimizer(self._strategy)   # the new heads join the strategy's optimizer

        else:
            component = closest
            decision = f"reuse {closest}"
            self.replay = self.generate_replay(model, closest, incoming.shape[1:])
        model.activate(component)
        model.tasks_learned[component] += 1
        self.timeline.append({
            "step": self._strategy.clock.train_iterations, "position": self.stream_position,
            "task": self.tasks_done, "discrepancies": k, "level": level, "decision": decision,
            "component": component, "components": model.num_components,
            **({"capped": True} if k[closest] > level and not room else {})})

    @torch.no_grad()
    def generate_replay(self, model: LIMixModel, c: int, shape) -> torch.Tensor | None:
        n = require_count(self.config, "replay_samples")
        if n == 0:
            return None
        chunks = [model.sample_component(min(4096, n - done), c, self.generator)
                  for done in range(0, n, 4096)]
        self.replay_generated += n
        return torch.cat(chunks).view(n, *shape)

    def update_memory(self, incoming: torch.Tensor, strategy=None) -> None:
        self.replay = None   # generated for this task only
        if self.student_steps_task:
            self.student_loss = float(self._student_loss_sum) / self.student_steps_task

    # ------------------------------------------------------------------------- the Student
    def student_batch(self, model: LIMixModel, x: torch.Tensor) -> torch.Tensor:
        """The code's `GenerateBatachImages`: floor(B/(C+1)) samples (binarized) of each component
        other than the active one, then the training minibatch's first images to fill B."""
        x = x.flatten(1)
        c = model.num_components
        if c == 1:
            return x
        each = len(x) // (c + 1)
        others = [j for j in range(c) if j != model.active]
        generated = [binarize(model.sample_component(each, j, self.generator), self.generator)
                     for j in others] if each else []
        return torch.cat([*generated, x[:len(x) - each * len(others)]])

    def after_training_iteration(self, strategy, **kwargs):
        if not self.config.student:
            return
        model = self._model()
        if self._student_optimizer is None:
            group = strategy.optimizer.param_groups[0]
            self._student_optimizer = torch.optim.Adam(model.student.parameters(), lr=group["lr"],
                                                       betas=group.get("betas", (0.9, 0.999)))
        batch = self.student_batch(model, strategy.mb_x.detach())
        loss = model.student_loss(batch).mean()
        self._student_optimizer.zero_grad()
        loss.backward()
        self._student_optimizer.step()
        for p in model.student.parameters():
            p.grad = None   # the strategy's optimizer holds these too: it must not step them
        self.extra_steps += 1
        self.extra_images += len(batch)
        self.student_steps_task += 1
        self._student_loss_sum = self._student_loss_sum + loss.detach()   # read once per task


@register_method("limix-taskfree", LIMixConfig)
class LIMixTaskFreePlugin(LIMixPlugin):
    """The OCM paper lists LIMix on task-free streams with 2.0K memory and up to 30 components but
    does not say how it ran it; the authors' code has boundaries only. This is the natural
    adaptation: incoming batches fill a buffer of `buffer_size` real images (nothing is trained
    meanwhile); when it is full it is treated as one task of the boundary form (the gate on it,
    then the chosen component's `epochs` passes over it plus, on reuse, its own replay, the Student
    alongside) and emptied. Memory = the buffer. Images still in the buffer when the stream ends are
    never trained on (a task-free method gets no end-of-stream signal)."""

    needs_task_boundaries = False

    def __init__(self, config: LIMixConfig | None = None, seed: int = 0):
        super().__init__(config, seed)
        self.buffer: torch.Tensor | None = None
        self._training_buffer = False

    @property
    def memory_size(self) -> int:
        return 0 if self.buffer is None else len(self.buffer)

    def training_images(self, incoming: torch.Tensor) -> torch.Tensor:
        self.buffer = incoming if self.buffer is None else torch.cat([self.buffer, incoming])
        if len(self.buffer) < self.config.buffer_size:
            return incoming[:0]
        self._training_buffer = True
        self.begin_task(self._model(), self.buffer)
        return self.buffer if self.replay is None else torch.cat([self.buffer, self.replay])

    def update_memory(self, incoming: torch.Tensor, strategy=None) -> None:
        if self._training_buffer:   # the buffer was this experience's task: it empties
            super().update_memory(incoming, strategy)
            self.buffer, self._training_buffer = self.buffer[:0], False
