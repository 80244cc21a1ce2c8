"""OCM's mechanisms on hand-made features and scripted criteria, not just that it runs."""
import math

import pytest
import torch
from avalanche.training import Naive
from torch import nn

from methods.core.strategy import GenerativeStrategy
from methods.models.contract import mixture_log_likelihood, uniform_log_weights
from methods.models.likelihood import component_log_likelihoods
from methods.models.vae import BernoulliVAE, GenerativeLoss
from methods.ocm import (
    DynamicOCMConfig,
    DynamicOCMPlugin,
    OCMConfig,
    OCMPlugin,
    diversity_scores,
    select_for_ltm,
)
from streams.benchmark import online_experiences, task_benchmark


class IdentityFeatures(nn.Module):
    """A stand-in model whose selection features are the (binary) images themselves."""
    num_components = 1

    def features(self, x):
        return x.flatten(1).float()


def points_at_distances(distances, dim=1600):
    """Binary vectors whose Euclidean distance to the zero vector is exactly d (d^2 ones)."""
    x = torch.zeros(len(distances), dim)
    for i, d in enumerate(distances):
        x[i, :round(d * d)] = 1
    return x


def test_diversity_score_is_the_mean_kernel_over_the_ltm():
    stm, ltm = torch.tensor([[0.0, 0.0]]), torch.tensor([[3.0, 4.0], [0.0, 0.0]])
    expected = (math.exp(-5 / (math.sqrt(2) * 10)) + 1.0) / 2
    assert diversity_scores(stm, ltm, 10.0).item() == pytest.approx(expected)


def make_plugin(stm_distances, ltm_size=1, **config):
    plugin = OCMPlugin(OCMConfig(**config), seed=0)
    plugin.stm = points_at_distances(stm_distances)
    plugin.ltm = torch.zeros(ltm_size, 1600)
    return plugin


def test_selection_takes_the_most_similar_in_order_above_lambda1():
    # scores exp(-2i / 14.14): i = 0..7 are above 0.35, i = 8.. are below
    distances = [2.0 * i for i in range(20)]
    shuffled = torch.randperm(20, generator=torch.Generator().manual_seed(0))
    plugin = make_plugin([distances[i] for i in shuffled])
    plugin.selections = 1                              # not the first selection: lambda1 = 0.35
    chosen = plugin.select(IdentityFeatures())
    assert [int(shuffled[c]) for c in chosen] == list(range(8))  # descending score = ascending i
    assert len(plugin.ltm) == 1 + 8 and len(plugin.stm) == 0     # the STM empties


def test_the_first_selection_uses_lambda1_one_so_adds_nothing():
    plugin = make_plugin([0.0, 0.0, 1.0])                # scores 1, 1, 0.93: none is > 1
    assert len(plugin.select(IdentityFeatures())) == 0
    assert len(plugin.ltm) == 1 and len(plugin.stm) == 0 and plugin.selections == 1
    plugin.stm = points_at_distances([0.0, 1.0])
    assert len(plugin.select(IdentityFeatures())) == 2   # now lambda1 = 0.35


def test_at_most_14_per_selection_and_the_ltm_cap_holds():
    plugin = make_plugin([0.5] * 30)
    plugin.selections = 1
    assert len(plugin.select(IdentityFeatures())) == 14
    plugin = make_plugin([0.5] * 30, ltm_size=5, ltm_capacity=8)
    plugin.selections = 1
    assert len(plugin.select(IdentityFeatures())) == 3 and len(plugin.ltm) == 8
    plugin.stm = points_at_distances([0.5] * 4)
    assert len(plugin.select(IdentityFeatures())) == 0 and len(plugin.ltm) == 8


def test_select_for_ltm_is_stable_and_respects_all_limits():
    scores = torch.tensor([0.5, 0.9, 0.9, 0.1, 0.7])
    assert select_for_ltm(scores, 0.35, 14, 100).tolist() == [1, 2, 4, 0]
    assert select_for_ltm(scores, 0.35, 2, 100).tolist() == [1, 2]
    assert select_for_ltm(scores, 0.35, 14, 1).tolist() == [1]
    assert select_for_ltm(scores, 0.95, 14, 100).tolist() == []


class ScriptedDynamicOCM(DynamicOCMPlugin):
    """Dynamic OCM whose criterion R follows a script (to test the expansion rule exactly)."""

    def __init__(self, values, **config):
        super().__init__(DynamicOCMConfig(**config), seed=0)
        self.values = list(values)

    def expansion_criterion(self, model):
        return self.values.pop(0)


def test_expansion_fires_exactly_when_r_moves_more_than_lambda2_below_the_cap():
    model = BernoulliVAE(input_dim=16, hidden=8, latent=2)
    plugin = ScriptedDynamicOCM([-100, -105, -120, -119.5, -90, -60], lambda2=10.0, max_components=3,
                                lambda1=2.0)   # lambda1 > 1: selection adds nothing
    components = []
    for _ in range(6):
        plugin.stm, plugin.ltm = torch.rand(20, 16).round(), torch.rand(5, 16).round()
        plugin.select(model)
        components.append(model.num_components)
        if components[-1] > (components[-2] if len(components) > 1 else 1):
            assert len(plugin.ltm) == 0                # the LTM is emptied on expansion
        else:
            assert len(plugin.ltm) == 5
    # R: -100 (first: stored), -105 (|5|), -120 (|15| > 10: expand), -119.5, -90 (|29.5|: expand),
    # -60 (|30| but the cap of 3 components is reached)
    assert components == [1, 1, 2, 2, 3, 3] and plugin.expansions == 2


def test_the_cross_domain_rule_tests_for_expansion_only_after_its_selections():
    """expansion_after = 2 (the authors' cross-domain code: 30): the first two selections neither
    test nor set R_last; the third sets R_last, the fourth may expand. The default (0) tests at
    every selection, and is left out of a cell's settings (records before it keep their keys)."""
    model = BernoulliVAE(input_dim=16, hidden=8, latent=2)
    plugin = ScriptedDynamicOCM([-100, -150, -160], lambda2=10.0, max_components=3, lambda1=2.0,
                                expansion_after=2)
    events = []
    for _ in range(5):
        plugin.stm, plugin.ltm = torch.rand(20, 16).round(), torch.rand(5, 16).round()
        plugin.select(model)
        events.append({k: plugin.timeline[-1].get(k) for k in ("r", "expanded")})
    assert events[:2] == [{"r": None, "expanded": None}] * 2        # not tested: R_last not set either
    assert events[2:] == [{"r": -100, "expanded": False}, {"r": -150, "expanded": True},
                          {"r": -160, "expanded": False}]
    from methods.core.settings import keyed_values

    assert "expansion_after" not in keyed_values(DynamicOCMConfig())
    assert keyed_values(DynamicOCMConfig(expansion_after=30))["expansion_after"] == 30


def test_after_expansion_only_the_new_component_trains():
    torch.manual_seed(0)
    model = BernoulliVAE()
    plugin = ScriptedDynamicOCM([0.0, 50.0] + [50.0] * 10, stm_capacity=100, lambda2=10.0)
    strategy = GenerativeStrategy(model=model, optimizer=torch.optim.Adam(model.parameters(), 1e-3),
                                  plugins=[plugin])
    data = torch.rand(1024, 1, 28, 28)
    experiences = list(online_experiences(task_benchmark([data], [data[:8]]).train_stream[0]))
    snapshot = None
    for experience in experiences:
        strategy.train(experience)
        if snapshot is None and model.num_components == 2:
            snapshot = {n: p.detach().clone() for n, p in model.named_parameters()}
    assert model.num_components == 2 and plugin.expansions == 1
    for name, param in model.named_parameters():
        changed = not torch.equal(snapshot[name], param)
        assert changed == name.startswith("components.1."), name


def test_iwae50_bound_is_tighter_than_the_elbo():
    torch.manual_seed(0)
    x = torch.bernoulli(torch.rand(64, 784))
    elbo_model = BernoulliVAE(loss="elbo", mc_samples=50)
    iwae_model = BernoulliVAE(loss="iwae", mc_samples=50)
    iwae_model.load_state_dict(elbo_model.state_dict())
    with torch.no_grad():
        elbo = torch.stack([-elbo_model(x) for _ in range(5)]).mean(0)
        iwae = torch.stack([-iwae_model(x) for _ in range(5)]).mean(0)
    assert (iwae >= elbo).float().mean() > 0.95 and (iwae - elbo).mean() > 1.0


def test_mixture_nll_is_between_best_component_and_best_plus_log_c():
    torch.manual_seed(0)
    model = BernoulliVAE()
    model.add_component(), model.add_component()
    x = torch.bernoulli(torch.rand(50, 784) * 0.5)
    per_component = component_log_likelihoods(model, x, 20, torch.Generator().manual_seed(0))
    mixture_nll = -mixture_log_likelihood(per_component, uniform_log_weights(3))
    best_nll = -per_component.max(0).values
    assert per_component.shape == (3, 50)
    assert torch.all(mixture_nll >= best_nll - 1e-4)
    assert torch.all(mixture_nll <= best_nll + math.log(3) + 1e-4)
    assert (mixture_nll - best_nll).mean() > 0.01   # the components really differ


def test_ocm_on_a_plain_avalanche_strategy():
    torch.manual_seed(0)
    model = BernoulliVAE()
    plugin = OCMPlugin(OCMConfig(stm_capacity=128), seed=0)
    strategy = Naive(model=model, optimizer=torch.optim.Adam(model.parameters(), 1e-3),
                     criterion=GenerativeLoss(), train_mb_size=64, plugins=[plugin], evaluator=None)
    data = torch.rand(640, 1, 28, 28) * 0.3
    for experience in online_experiences(task_benchmark([data], [data[:8]]).train_stream[0]):
        strategy.train(experience)
    # 10 batches; a selection every 3rd batch (|STM| 192 > 128): 3 selections, STM holds 1 batch
    assert plugin.selections == 3 and len(plugin.stm) == 64
    assert 64 < len(plugin.ltm) <= 64 + 2 * 14    # first batch + what the 2nd and 3rd selections added


@pytest.mark.parametrize("after", [0, 2, 3])
def test_a_cross_domain_wait_longer_than_the_stream_is_said(after):
    """An expansion compares R with R_last, so it needs two tests from selection `expansion_after`
    on: fewer selections than `expansion_after` + 2 make ocm-dynamic OCM with one component. With
    the default STM (512) and batches of 64 a selection takes 9 batches."""
    plugin = DynamicOCMPlugin(DynamicOCMConfig(expansion_after=after))
    assert "can never expand" in plugin.construction_warnings([192] * 5, 64)[0]   # 15 batches: 1 selection
    assert plugin.construction_warnings([64 * 9 * (after + 2)], 64) == []        # exactly after + 2
    assert plugin.construction_warnings([64 * 9 * (after + 2) - 64], 64)


def test_the_warning_is_tight_on_a_real_cell_and_kept_in_its_record():
    """`mini` at 192 images per task with smoke's STM of 128 (a selection every 3 batches of 64):
    15 batches, 5 selections. expansion_after=4 leaves one test: warned, and one component;
    expansion_after=3 leaves two: no warning, and this seed does expand."""
    import dataclasses

    from bench.evaluation.cell import run_cell
    from bench.planning.grid import expand_grid
    from bench.planning.profiles import resolve_profile

    profile = dataclasses.replace(resolve_profile("smoke"), max_train_per_task=192)
    waited, tested = (run_cell(expand_grid([f"ocm-dynamic[expansion_after={n}]"], ["mini"], [0], profile)[0])
                      for n in (4, 3))
    assert waited["status"] == tested["status"] == "done"
    assert waited["selections"] == tested["selections"] == 5
    assert waited["components"] == 1 and "can never expand" in waited.extras["construction_warnings"][0]
    assert tested["components"] == 2 and "construction_warnings" not in tested.extras
