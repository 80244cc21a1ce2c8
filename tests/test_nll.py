"""The IWAE NLL estimator against log-likelihoods known exactly."""
import itertools
import math

import pytest
import torch
import torch.nn.functional as F

from methods.models.likelihood import iwae_log_likelihood
from methods.models.vae import BernoulliVAE


def constant_decoder_vae(input_dim=784):
    """Decoder ignores z (logits = bias), q(z|x) = N(0, (1+1e-6)^2 I) ~ prior: log p(x) is exact."""
    torch.manual_seed(0)
    vae = BernoulliVAE(input_dim=input_dim)
    comp = vae.components[0]
    with torch.no_grad():
        for layer in (comp.encoder_mu, comp.encoder_log_sigma, comp.decoder_out):
            layer.weight.zero_()
        comp.encoder_mu.bias.zero_()
        comp.encoder_log_sigma.bias.zero_()
        comp.decoder_out.bias.copy_(torch.randn(input_dim) * 2)
    return vae


@pytest.mark.parametrize("k", [1, 7, 100, 1000])
def test_iwae_equals_exact_log_likelihood_when_decoder_ignores_z(k):
    vae = constant_decoder_vae()
    x = torch.bernoulli(torch.full((40, 784), 0.3), generator=torch.Generator().manual_seed(1))
    exact = -F.binary_cross_entropy_with_logits(
        vae.components[0].decoder_out.bias.expand_as(x), x, reduction="none").sum(1)
    estimate = iwae_log_likelihood(vae, x, k, torch.Generator().manual_seed(2), max_rows=512)
    assert exact.mean() < -300  # a real, non-trivial number of nats
    torch.testing.assert_close(estimate, exact, atol=1e-3, rtol=0)


def exact_log_likelihood_1d(vae, x, grid=20001, bound=12.0):
    """log p(x) = log int p(x|z) N(z; 0, 1) dz by quadrature over a fine grid (latent dim 1)."""
    z = torch.linspace(-bound, bound, grid, dtype=torch.float64).unsqueeze(1)
    with torch.no_grad():
        logits = vae.double().decode(z)                       # [grid, D]
        log_px_z = -(F.softplus(-logits) @ x.double().T + F.softplus(logits) @ (1 - x.double()).T)
        vae.float()
    log_prior = -0.5 * z ** 2 - 0.5 * math.log(2 * math.pi)
    dz = 2 * bound / (grid - 1)
    return (torch.logsumexp(log_px_z + log_prior, 0) + math.log(dz)).float()


def test_iwae_increases_toward_the_truth_with_k():
    torch.manual_seed(3)
    vae = BernoulliVAE(input_dim=30, hidden=32, latent=1)
    with torch.no_grad():  # sharpen the decoder so the posterior is far from the prior
        for layer in (vae.decoder_shared, vae.components[0].decoder_hidden, vae.components[0].decoder_out):
            layer.weight.mul_(3.0)
    data_gen = torch.Generator().manual_seed(4)
    z = torch.randn(300, 1, generator=data_gen)
    with torch.no_grad():
        x = torch.bernoulli(torch.sigmoid(vae.decode(z)), generator=data_gen)
    truth = exact_log_likelihood_1d(vae, x).mean().item()
    means = {k: iwae_log_likelihood(vae, x, k, torch.Generator().manual_seed(5)).mean().item()
             for k in (1, 2, 5, 10, 30, 100, 5000)}
    values = list(means.values())
    assert all(a < b for a, b in itertools.pairwise(values[:-1])), means  # K = 1 ... 100
    assert truth - values[0] > 5.0, (means, truth)      # the ELBO gap is real (nats)...
    assert abs(values[-1] - truth) < 0.02, (means, truth)  # ...and K = 5000 closes it


def test_the_factored_likelihood_of_a_layer_equals_the_direct_one():
    from methods.models.vae import bernoulli_log_likelihood, bernoulli_log_likelihood_of_layer

    torch.manual_seed(5)
    layer = torch.nn.Linear(200, 784)
    h = torch.randn(7, 30, 200).relu()
    x = torch.bernoulli(torch.full((30, 784), 0.3))
    direct = bernoulli_log_likelihood(layer(h).double(), x.double())
    torch.testing.assert_close(bernoulli_log_likelihood_of_layer(h, layer, x).double(), direct,
                               rtol=1e-5, atol=1e-3)
    assert direct.mean() < -400



def direct_decoder_log_likelihood(vae, z, x, dtype=torch.float64):
    """log p(x|z) by the textbook formula (x.l - sum softplus(l)) in `dtype`, on a copy of vae."""
    import copy

    from methods.models.vae import bernoulli_log_likelihood

    model = copy.deepcopy(vae).to(dtype)
    with torch.no_grad():
        return bernoulli_log_likelihood(model.decode(z.to(dtype)), x.to(dtype))


@pytest.fixture(params=["C kernel", "torch"])
def evaluator_form(request):
    """The rewrite's two forms of the output layer's likelihood (methods/models/native/kernel.py)."""
    from methods.models.native import kernel as native_kernel

    if request.param == "torch":
        with native_kernel.turned_off():
            yield request.param
        return
    if not native_kernel.available():
        pytest.skip("no C compiler on this machine")
    yield request.param


@pytest.mark.parametrize("samples,images,input_dim,scale", [
    (300, 3, 784, 3.0),     # rows not a multiple of the block size; logits up to about +-60
    (2, 700, 784, 1.0),     # more images than a block holds: one block per 700 rows
    (50, 4, 30, 8.0),       # pixels not a multiple of 16; saturated logits (|l| > 100)
])
def test_the_inference_rewrite_of_the_decoder_equals_the_direct_likelihood(samples, images, input_dim,
                                                                           scale, evaluator_form):
    from methods.models.native import decoder as decoder_inference

    torch.manual_seed(6)
    vae = BernoulliVAE(input_dim=input_dim)
    with torch.no_grad():
        for p in vae.parameters():
            p.mul_(scale)
    x = torch.bernoulli(torch.full((images, input_dim), 0.3))
    z = torch.randn(samples, images, vae.latent)
    truth = direct_decoder_log_likelihood(vae, z, x)
    with torch.no_grad():
        assert decoder_inference.applies(z)
        rewritten = vae.decoder_log_likelihood(z, x)
    direct_fp32 = vae.decoder_log_likelihood(z, x).detach()       # with autograd: the direct form
    assert not torch.equal(rewritten, direct_fp32)                 # two computations...
    assert truth.abs().mean() > 100                                # ...of a non-trivial number
    float32_error = (direct_fp32.double() - truth).abs().max().item()
    torch.testing.assert_close(rewritten.double(), truth, rtol=0, atol=max(2e-3, 3 * float32_error))


def test_the_rewrite_is_for_cpu_inference_only():
    from methods.models.native import decoder as decoder_inference

    z = torch.zeros(3, 2)
    assert not decoder_inference.applies(z)          # autograd on: training keeps the direct form
    with torch.no_grad():
        assert decoder_inference.applies(z)
        if torch.cuda.is_available():
            assert not decoder_inference.applies(z.cuda())


def test_curl_decoder_uses_the_rewrite_with_its_own_layers(evaluator_form):
    from methods.curl import CURLModel

    torch.manual_seed(7)
    model = CURLModel()
    x = torch.bernoulli(torch.full((5, 784), 0.4))
    z = torch.randn(40, 5, model.latent)
    direct = model.log_px_z(z, x).detach()
    with torch.no_grad():
        rewritten = model.log_px_z(z, x)
    torch.testing.assert_close(rewritten, direct, rtol=0, atol=2e-3)
