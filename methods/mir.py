"""MIR: Maximally Interfered Retrieval (Aljundi et al. 2019), task-free, for a VAE: at each step,
replay the memory images whose loss a virtual update on the incoming minibatch would raise most.

The rule (the paper's Algorithm 1, and Avalanche's `MIRPlugin.before_backward`): the step's
gradient g of the loss on the incoming minibatch; a virtual model theta' = theta - lr g
(Avalanche's `update_temp`); `subsample` candidates drawn from the memory; each candidate's
interference = loss(theta', x) - loss(theta, x); the `batch_size_mem` largest are replayed: their
loss is added to the step's loss.

Where Avalanche's plugin assumes labels it is not used (docs/methods.md#mir): its memory is
class-balanced and it leaves out the classes of the last minibatch; here the memory is a
reservoir of `budget` images (label-free, as `reservoir`), the candidates a uniform draw, and the
loss the per-image negative ELBO. The two losses of a candidate are computed with the same
binarization and the same posterior draw (a forked random state), so the difference is the
update's effect, not the ELBO's sampling noise. Each incoming batch trains E passes on itself plus
its retrieved images (the memory is never trained on wholesale).
"""
from __future__ import annotations

import torch
from avalanche.training.plugins.mir import update_temp

from methods.catalog import MIRConfig
from methods.core import register_method
from methods.reservoir import ReservoirPlugin


def most_interfered(model, updated, candidates: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(indices, interference) of the k candidates whose loss the update raises most."""
    scores = interference(model, updated, candidates)
    chosen = torch.argsort(scores, descending=True)[:k]
    return chosen, scores[chosen]


def interference(model, updated, candidates: torch.Tensor) -> torch.Tensor:
    """loss(updated, x) - loss(model, x) per candidate, under one random draw for both."""
    state = torch.random.get_rng_state()
    with torch.no_grad():
        old = model(candidates)
        torch.random.set_rng_state(state)
        new = updated(candidates)
    return new - old


@register_method("mir", MIRConfig)   # description and settings: methods/catalog.py
class MIRMethod(ReservoirPlugin):
    def __init__(self, config: MIRConfig | None = None, seed: int = 0):
        super().__init__(config, seed)
        self.retrieved = 0
        self.last_interference: float | None = None   # mean interference of the last retrieval

    def training_images(self, incoming: torch.Tensor) -> torch.Tensor:
        return incoming   # the memory is replayed by retrieval, not trained on wholesale

    def before_backward(self, strategy, **kwargs):
        memory = self.replay_images()
        if memory is None or len(memory) == 0:
            return
        cfg = self.config
        model = strategy.model
        grads = torch.autograd.grad(strategy.loss, [p for p in model.parameters() if p.requires_grad],
                                    retain_graph=True, allow_unused=True)
        trainable = iter(grads)
        grads = [next(trainable) if p.requires_grad else None for p in model.parameters()]
        updated = update_temp(model, grads, strategy.optimizer.param_groups[0]["lr"])
        pick = torch.randint(len(memory), (min(cfg.subsample, len(memory)),), generator=self.generator,
                             device=memory.device)
        candidates = torch.bernoulli(memory[pick].flatten(1), generator=self.generator)
        chosen, scores = most_interfered(model, updated, candidates, cfg.batch_size_mem)
        strategy.loss = strategy.loss + model(candidates[chosen]).mean()
        self.retrieved += len(chosen)
        self.extra_images += len(chosen)   # trained on in this step, beside the incoming minibatch
        self.last_interference = float(scores.mean())

    def extra_stats(self) -> dict:
        return {"retrieved": self.retrieved, "last_interference": self.last_interference}
