"""OCM: Online Cooperative Memorization (Ye & Bors, ECCV 2022), its IWAE-50 variant and the
dynamic-expansion mixture. Faithful to the paper and the authors' code (OCM_ExpandClear_*.py):

- Every incoming batch joins the short-term memory (STM); the long-term memory (LTM) starts as the
  first batch (and, after an expansion emptied it, as the next batch if selection added nothing).
- Per incoming batch: E passes over STM u LTM, freshly binarized, minibatches of 64.
- When |STM| > 512, selection: f(x) = posterior means of freshly binarized x (all components'
  concatenated); score(x) = mean over the LTM of exp(-||f(x) - f(l)|| / (sqrt(2) * 10)) (the code's
  kernel: distance not squared, sigma 10). STM samples are taken in descending score while
  score > lambda1 (1 at the first selection, 0.35 after), at most 14 per selection, while
  |LTM| < 2560. This keeps samples *similar* to the LTM, as the code does. Then the STM empties.
- Dynamic expansion (at each selection, before adding): R = mean over STM u LTM of the components'
  average IWAE bound; if |R - R_last| > lambda2 and components < cap, a component is added
  (shared layers and older components frozen; only the new one trains) and the LTM is emptied.
  With `expansion_after` = N (the authors' cross-domain code: 30) the test, and R_last's update,
  run only at selections with more than N before them.

Deliberate differences from the code, each for a reason:
- the code's STM holds the first batch twice (it is appended once at initialisation and again by
  the loop); here it is added once;
- the code checks |LTM| < 2560 once before adding up to 14 (the LTM can reach 2573); here the cap
  holds for every sample;
- the code scores R on grey (non-binarized) images with a Bernoulli likelihood, which is not a
  likelihood of binary data; here R uses a fresh binarization, like training.
"""
from __future__ import annotations

import math

import torch

from methods.catalog import DynamicOCMConfig, OCMConfig, OCMIW50Config
from methods.core import GenerativePlugin, refresh_optimizer, register_method
from methods.models.contract import eval_mode
from methods.models.likelihood import component_log_likelihoods
from methods.models.vae import BernoulliVAE
from streams.stream import binarize


def diversity_scores(stm_features: torch.Tensor, ltm_features: torch.Tensor,
                     sigma: float) -> torch.Tensor:
    """Score of each STM sample: mean over the LTM of exp(-||f(x) - f(l)|| / (sqrt(2) sigma))."""
    distances = torch.cdist(stm_features.double(), ltm_features.double(),
                            compute_mode="donot_use_mm_for_euclid_dist")
    return torch.exp(-distances / (math.sqrt(2) * sigma)).mean(1)


def select_for_ltm(scores: torch.Tensor, threshold: float, max_add: int, room: int) -> torch.Tensor:
    """Indices of the STM samples to move to the LTM: in descending score, while score > threshold,
    at most `max_add`, and no more than the LTM's `room`."""
    order = torch.argsort(scores, descending=True, stable=True)
    above = int((scores[order] > threshold).sum())
    return order[:max(0, min(above, max_add, room))]


@register_method("ocm", OCMConfig)   # descriptions, paper names and settings: methods/catalog.py
class OCMPlugin(GenerativePlugin):
    def __init__(self, config: OCMConfig | None = None, seed: int = 0):
        super().__init__(config, seed)
        self.stm: torch.Tensor | None = None
        self.ltm: torch.Tensor | None = None
        self.selections = 0

    def build_model(self, profile) -> BernoulliVAE:
        return BernoulliVAE(input_dim=self.input_dim, loss=self.config.loss,
                            mc_samples=self.config.loss_samples or profile.mc_samples)

    @staticmethod
    def _size(memory) -> int:
        return 0 if memory is None else len(memory)

    @property
    def memory_size(self) -> int:
        return self._size(self.stm) + self._size(self.ltm)

    def extra_stats(self) -> dict:
        return {"stm_size": self._size(self.stm), "ltm_size": self._size(self.ltm),
                "selections": self.selections}

    def replay_images(self):
        parts = [m for m in (self.stm, self.ltm) if m is not None and len(m)]
        return torch.cat(parts) if parts else None

    def training_images(self, incoming: torch.Tensor) -> torch.Tensor:
        """Admit the incoming batch (STM; LTM too while it is empty) and train on STM u LTM."""
        self.stm = incoming if self.stm is None else torch.cat([self.stm, incoming])
        if self._size(self.ltm) == 0:
            self.ltm = incoming
        return torch.cat([self.stm, self.ltm])

    def update_memory(self, incoming: torch.Tensor, strategy=None) -> None:
        if len(self.stm) > self.config.stm_capacity:
            self.select(strategy.model, strategy)

    def features(self, model, images: torch.Tensor) -> torch.Tensor:
        with eval_mode(model):
            return model.features(binarize(images, self.generator))

    def select(self, model, strategy=None) -> torch.Tensor:
        """One selection: move chosen STM samples to the LTM, empty the STM; returns the indices."""
        cfg = self.config
        scores = diversity_scores(self.features(model, self.stm), self.features(model, self.ltm),
                                  cfg.kernel_sigma)
        stm_size = len(self.stm)
        event = self.check_expansion(model, strategy)
        threshold = cfg.lambda1_first if self.selections == 0 else cfg.lambda1
        room = cfg.ltm_capacity - self._size(self.ltm)
        chosen = select_for_ltm(scores, threshold, cfg.max_per_selection, room)
        if len(chosen):
            moved = self.stm[chosen]
            self.ltm = moved if self._size(self.ltm) == 0 else torch.cat([self.ltm, moved])
        self.stm = self.stm[:0]
        self.selections += 1
        self.timeline.append({
            "step": strategy.clock.train_iterations if strategy is not None else None,
            "position": self.stream_position, "stm": stm_size, "ltm": self._size(self.ltm),
            "added": len(chosen), "components": self.num_components(model), **event})
        return chosen

    def check_expansion(self, model, strategy) -> dict:
        """Hook for the dynamic variant's expansion check (scores are already computed); returns
        what the selection's timeline entry should add (R, whether it expanded)."""
        return {}


@register_method("ocm-iw50", OCMIW50Config)
class OCMIW50Plugin(OCMPlugin):
    pass


@register_method("ocm-dynamic", DynamicOCMConfig)
class DynamicOCMPlugin(OCMPlugin):
    def __init__(self, config: DynamicOCMConfig | None = None, seed: int = 0):
        super().__init__(config, seed)
        self.r_last: float | None = None
        self.expansions = 0

    def extra_stats(self) -> dict:
        return {**super().extra_stats(), "expansions": self.expansions, "r_last": self.r_last}

    def expansion_criterion(self, model) -> float:
        """R: mean over STM u LTM of the components' average IWAE bound (nats)."""
        images = binarize(torch.cat([self.stm, self.ltm]), self.generator)
        return float(component_log_likelihoods(model, images, self.config.expansion_k,
                                               self.generator).mean())

    def construction_warnings(self, images_per_task: list[int], batch_size: int) -> list[str]:
        """The expansion test compares R with R_last, so an expansion needs two tests, the first at
        selection `expansion_after`: fewer selections than that + 2 make this OCM with one component."""
        cfg = self.config
        batches = sum(math.ceil(n / batch_size) for n in images_per_task)
        selections = batches // (cfg.stm_capacity // batch_size + 1)   # an upper bound (full batches)
        if selections >= cfg.expansion_after + 2:
            return []
        return [f"expansion_after={cfg.expansion_after} with at most {selections} selections on this stream "
                f"({sum(images_per_task):,} images in batches of {batch_size}, a selection per "
                f"{cfg.stm_capacity + 1}+ STM images): it can never expand, and runs as OCM with one component"]

    def check_expansion(self, model, strategy) -> dict:
        cfg = self.config
        if self.selections < cfg.expansion_after:   # the cross-domain rule: no test before then
            return {}
        r = self.expansion_criterion(model)
        expanded = (self.r_last is not None and abs(r - self.r_last) > cfg.lambda2
                    and model.num_components < cfg.max_components)
        if expanded:
            model.add_component()
            self.expansions += 1
            self.ltm = self.ltm[:0]
            refresh_optimizer(strategy)   # the new component's parameters join the optimizer
        self.r_last = r
        return {"r": r, "expanded": expanded}
