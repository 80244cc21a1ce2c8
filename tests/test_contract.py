"""The declared model contract (methods/models/contract.py) and the thin-plugin rules: the
evaluator and the samplers use a model's declared mixture weights; the strategy's finite-loss
check and minibatches cannot be lost by a method that overrides a hook."""
import math

import pytest
import torch
from scipy.stats import chisquare

from bench.evaluation.nll import nll_row
from methods import METHODS
from methods.core import GenerativePlugin
from methods.core.strategy import GenerativeStrategy, NonFiniteLossError
from methods.curl import CURLModel
from methods.models.contract import (
    GenerativeModel,
    SelectionFeatures,
    draw_components,
    mixture_log_likelihood,
    uniform_log_weights,
)
from methods.models.vae import BernoulliVAE
from streams.benchmark import online_experiences, task_benchmark


class KnownMixture(torch.nn.Module):
    """Two components with exact likelihoods: p_c(x) = prod_i theta_c^x_i (1 - theta_c)^(1 - x_i),
    weights w; every importance weight is exactly log p_c(x), so the IWAE estimate is exact."""

    def __init__(self, thetas=(0.2, 0.7), weights=(0.8, 0.2)):
        super().__init__()
        self.thetas = torch.tensor(thetas)
        self.log_w = torch.tensor(weights).log()

    @property
    def num_components(self):
        return len(self.thetas)

    def log_mixture_weights(self):
        return self.log_w

    def component_log_weights(self, x, k, generator=None):
        x = x.flatten(1)
        per = torch.stack([(x * t.log() + (1 - x) * (1 - t).log()).sum(1) for t in self.thetas])
        return per[:, None, :].expand(-1, k, -1)

    def sample(self, n, generator=None):
        which = draw_components(self.log_w, n, generator)
        return self.thetas[which][:, None].expand(n, 4)

    def reconstruct(self, x):
        return x


def test_todays_models_declare_the_contract_with_uniform_weights():
    vae, curl = BernoulliVAE(), CURLModel()
    vae.add_component()
    for model in (vae, curl):
        assert isinstance(model, GenerativeModel)
        assert torch.equal(model.log_mixture_weights(), uniform_log_weights(model.num_components))
    assert isinstance(vae, SelectionFeatures)       # OCM's selection reads posterior means
    assert isinstance(KnownMixture(), GenerativeModel)


def test_the_evaluator_uses_the_declared_weights_exactly():
    model = KnownMixture()
    x = torch.tensor([[1.0, 1, 0, 0], [1, 1, 1, 1], [0, 0, 0, 0]])
    row = nll_row(model, [x], k=3, generator=torch.Generator().manual_seed(0))
    for image, nll in zip(x, row.mixture[0]):
        p = [math.prod(t if v else 1 - t for v in image.tolist()) for t in (0.2, 0.7)]
        assert nll.item() == pytest.approx(-math.log(0.8 * p[0] + 0.2 * p[1]), rel=1e-6)
    # the best-component score ignores the weights (the paper's max_c log p_c(x))
    assert row.best_component[0][1].item() == pytest.approx(-4 * math.log(0.7), rel=1e-6)


def test_uniform_weights_give_the_familiar_formula_bit_for_bit():
    per = torch.randn(3, 500, generator=torch.Generator().manual_seed(0)) * 40 - 200
    assert torch.equal(mixture_log_likelihood(per, uniform_log_weights(3)), torch.logsumexp(per, 0) - math.log(3))


def test_sampling_follows_the_declared_weights():
    which = draw_components(torch.tensor([0.1, 0.6, 0.3]).log(), 6000, torch.Generator().manual_seed(1))
    counts = torch.bincount(which, minlength=3).numpy()
    assert chisquare(counts, [600, 3600, 1800]).pvalue > 0.001
    # uniform weights keep the draw every uniform mixture always made
    same = draw_components(uniform_log_weights(4), 50, torch.Generator().manual_seed(2))
    assert torch.equal(same, torch.randint(4, (50,), generator=torch.Generator().manual_seed(2)))


class ForgetfulPlugin(GenerativePlugin):
    """Overrides the hooks a method might use, without calling super()."""
    name = "forgetful"

    def before_training_exp(self, strategy, **kwargs):
        pass

    def before_backward(self, strategy, **kwargs):
        pass

    def after_training_iteration(self, strategy, **kwargs):
        pass


def test_a_method_that_overrides_hooks_without_super_keeps_the_nan_check_and_its_data():
    model = BernoulliVAE()
    with torch.no_grad():
        model.components[0].decoder_out.bias.fill_(float("nan"))
    data = [torch.rand(64, 1, 28, 28, generator=torch.Generator().manual_seed(0))]
    benchmark = task_benchmark(data, [torch.bernoulli(d[:8]) for d in data])
    plugin = ForgetfulPlugin(seed=0)
    strategy = GenerativeStrategy(model=model, optimizer=torch.optim.Adam(model.parameters()), plugins=[plugin])
    with pytest.raises(NonFiniteLossError, match="forgetful: the training loss became NaN"):
        strategy.train(next(iter(online_experiences(benchmark.train_stream[0]))))
    assert plugin.stream_position == 64     # the strategy gave the method its incoming images


def test_every_registered_method_takes_its_config_from_the_registry():
    for spec in METHODS.values():
        plugin = spec.plugin_class(seed=3)
        assert plugin.config == spec.config_class() and plugin.seed == 3
