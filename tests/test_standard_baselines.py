"""The field's standard baselines (EWC, SI, MAS, A-GEM, MIR, DGR, LwF): each mechanism checked against
a hand computation on a tiny case, so that a planted bug (a wrong sign, a missing square, the
wrong model replayed) fails here."""
import types

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from methods.agem import AGEMMethod
from methods.catalog import AGEMConfig, DGRConfig, EWCConfig, LwFConfig, MASConfig, MIRConfig, SIConfig
from methods.core.strategy import GenerativeStrategy
from methods.dgr import DGRMethod
from methods.ewc import EWCMethod
from methods.lwf import LwFMethod, distillation
from methods.mas import MASMethod
from methods.mir import MIRMethod, interference, most_interfered
from methods.models.vae import BernoulliVAE, GenerativeLoss
from methods.si import SIMethod, copied_weights
from streams.benchmark import online_experiences, task_benchmark


def tiny_vae(seed=0) -> BernoulliVAE:
    torch.manual_seed(seed)
    return BernoulliVAE(input_dim=16, hidden=8, latent=3)


def stub_strategy(model, counter=0, batch=4):
    return types.SimpleNamespace(model=model, _criterion=GenerativeLoss(), optimizer=torch.optim.SGD(model.parameters(), 0.1),
                                 device=torch.device("cpu"), train_mb_size=batch,
                                 clock=types.SimpleNamespace(train_exp_counter=counter), loss=torch.zeros(()))


def images(n=8, seed=1):
    return torch.rand(n, 1, 4, 4, generator=torch.Generator().manual_seed(seed))


def test_ewc_penalty_is_lambda_times_the_hand_computed_fisher_distance():
    model = tiny_vae()
    method = EWCMethod(EWCConfig(ewc_lambda=3.0), seed=0)
    x = images()
    # the importance pass: Avalanche's empirical Fisher, the mean over minibatches of the squared
    # gradient of the minibatch's mean loss, on the task binarized once with the method's generator
    binary = torch.bernoulli(x, generator=torch.Generator().manual_seed(0))
    torch.manual_seed(5)
    fisher = {n: torch.zeros_like(p) for n, p in model.named_parameters()}
    zeros = torch.zeros(8, dtype=torch.long)   # a DataLoader, as the plugin's: its iterator draws a seed
    for batch, _, _ in DataLoader(TensorDataset(binary, zeros, zeros), batch_size=4):
        model.zero_grad()
        model(batch).mean().backward()
        for n, p in model.named_parameters():
            fisher[n] += p.grad ** 2 / 2
    torch.manual_seed(5)
    method.update_memory(x, stub_strategy(model, counter=0))
    for n, _ in model.named_parameters():
        assert torch.allclose(method.ewc.importances[0][n].data, fisher[n], rtol=1e-5, atol=1e-12), n
    anchor = {n: p.detach().clone() for n, p in model.named_parameters()}
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1)
    strategy = stub_strategy(model, counter=1)
    method.before_backward(strategy)
    expected = 3.0 * sum((fisher[n] * (p - anchor[n]) ** 2).sum() for n, p in model.named_parameters())
    assert torch.allclose(strategy.loss, expected, rtol=1e-5)
    assert strategy.loss > 0


def test_si_importance_is_the_path_integral_of_minus_gradient_times_step():
    """Three steps by hand: the plugin's importance is min(-sum_t g_t * dw_t / (total change^2 +
    eps), 0.001) (Avalanche: c = 1, clipped at 0.001), and the penalty lambda/2 sum_i imp_i dw_i^2."""
    model = tiny_vae()
    method = SIMethod(SIConfig(si_lambda=2.0, eps=1e-3), seed=0)
    strategy = stub_strategy(model)
    with copied_weights():   # as the method forwards it (after installing minibatches)
        method.si.before_training_exp(strategy)
    start = {n: p.detach().clone() for n, p in model.named_parameters()}
    path = {n: torch.zeros_like(p) for n, p in model.named_parameters()}
    g = torch.Generator().manual_seed(3)
    for _ in range(3):
        method.before_training_iteration(strategy)
        with torch.no_grad():
            for n, p in model.named_parameters():
                p.grad = torch.randn(p.shape, generator=g)
                step = -0.01 * p.grad
                p.add_(step)
                path[n] += p.grad * step
        method.after_training_iteration(strategy)
    with copied_weights():
        method.si.after_training_exp(strategy)
    importance = method.si.ewc_data[1]
    for n, p in model.named_parameters():
        expected = (-path[n] / ((p.detach() - start[n]) ** 2 + 1e-3)).clamp(max=0.001)
        assert torch.allclose(importance[n].data, expected.flatten(), rtol=1e-5, atol=1e-9), n
    anchor = {n: p.detach().clone() for n, p in model.named_parameters()}
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1)
    strategy.clock.train_exp_counter = 1
    method.before_backward(strategy)
    expected = sum((importance[n].data * ((p - anchor[n]) ** 2).flatten()).sum() for n, p in model.named_parameters())
    assert torch.allclose(strategy.loss, expected, rtol=1e-5)   # lambda / 2 = 1


def test_avalanches_si_aliases_the_weights_on_a_cpu_and_the_method_copies_them():
    """The bug the method works around: without the copy, every importance is 0 on a CPU."""
    model = tiny_vae()
    plugin = SIMethod(SIConfig(), seed=0).si
    strategy = stub_strategy(model)
    plugin.before_training_exp(strategy)   # Avalanche's own, unpatched
    plugin.before_training_iteration(strategy)
    with torch.no_grad():
        for p in model.parameters():
            p.grad = torch.ones_like(p)
            p.sub_(0.01)
    plugin.after_training_iteration(strategy)
    assert all((t.data == 0).all() for t in plugin.syn_data["trajectory"].values())   # the bug
    with copied_weights():
        plugin.before_training_iteration(strategy)
        with torch.no_grad():
            for p in model.parameters():
                p.sub_(0.01)
        plugin.after_training_iteration(strategy)
    assert all((t.data < 0).all() for t in plugin.syn_data["trajectory"].values())    # -g * 0.01 each


def test_mas_importance_is_the_mean_absolute_gradient_of_the_reconstructions_squared_norm():
    model = tiny_vae()
    method = MASMethod(MASConfig(lambda_reg=2.0), seed=0)
    x = images()
    binary = torch.bernoulli(x, generator=torch.Generator().manual_seed(0))
    expected = {n: torch.zeros_like(p) for n, p in model.named_parameters()}
    for batch in (binary[:4], binary[4:]):
        model.zero_grad()
        out = torch.sigmoid(model.decode(model.encode(batch.flatten(1))[0]))
        out.pow(2).sum(1).mean().backward()
        for n, p in model.named_parameters():
            if p.grad is not None:   # the posterior's spread does not reach the reconstruction at its mean
                expected[n] += p.grad.abs() / 2
    method.update_memory(x, stub_strategy(model, counter=0))
    for n, _ in model.named_parameters():
        assert torch.allclose(method.mas.importance[n].data, expected[n], rtol=1e-5, atol=1e-12), n


def test_agem_projects_a_conflicting_gradient_onto_the_memory_gradients_half_space():
    model = tiny_vae()
    method = AGEMMethod(AGEMConfig(budget=8, sample_size=8), seed=0)
    method.update_memory(images(8, seed=2))            # the reservoir holds 8 images
    strategy = stub_strategy(model)
    strategy.mbatch = [torch.bernoulli(images(4, seed=3)), torch.zeros(4), torch.zeros(4)]
    method.before_training_iteration(strategy)
    g_ref = method.agem.reference_gradients.clone()
    # a gradient that conflicts with the memory's: minus its direction, plus noise
    for p, chunk in zip(model.parameters(), torch.split(-g_ref + 0.01 * torch.randn_like(g_ref), [p.numel() for p in model.parameters()])):
        p.grad = chunk.view_as(p).clone()
    g = torch.cat([p.grad.view(-1) for p in model.parameters()])
    assert torch.dot(g, g_ref) < 0
    method.after_backward(strategy)
    projected = torch.cat([p.grad.view(-1) for p in model.parameters()])
    assert torch.dot(projected, g_ref) == pytest.approx(0.0, abs=1e-5 * float(g_ref.norm() ** 2))
    assert torch.allclose(projected, g - torch.dot(g, g_ref) / torch.dot(g_ref, g_ref) * g_ref, atol=1e-6)
    assert method.projections == 1
    # a gradient that agrees with it is left as it is
    for p, chunk in zip(model.parameters(), torch.split(g_ref.clone(), [p.numel() for p in model.parameters()])):
        p.grad = chunk.view_as(p).clone()
    method.after_backward(strategy)
    assert torch.allclose(torch.cat([p.grad.view(-1) for p in model.parameters()]), g_ref)
    assert method.projections == 1


def test_mir_retrieves_the_candidates_a_virtual_update_hurts_most():
    """A constructed case: the candidates are copies of two complementary images, A and B; the
    virtual update is a large step on B, so A's loss rises most: every retrieved image is A."""
    from avalanche.training.plugins.mir import update_temp

    model = tiny_vae()
    a = torch.zeros(16)
    a[::2] = 1
    b = 1 - a
    candidates = torch.stack([a] * 8 + [b] * 8)
    loss = model(b.expand(4, -1)).mean() * 50
    grads = torch.autograd.grad(loss, list(model.parameters()), allow_unused=True, retain_graph=True)
    updated = update_temp(model, grads, 0.05)
    chosen, scores = most_interfered(model, updated, candidates, 4)
    assert all(torch.equal(candidates[i], a) for i in chosen) and (scores > 0).all()
    # the score is paired: the same model on both sides scores exactly 0
    assert torch.equal(interference(model, model, candidates), torch.zeros(16))
    # through the method: the retrieved images' loss joins the step's
    method = MIRMethod(MIRConfig(budget=16, subsample=16, batch_size_mem=4), seed=0)
    method.update_memory(candidates.view(16, 1, 4, 4))
    strategy = stub_strategy(model)
    strategy.loss = loss
    strategy.optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    method.before_backward(strategy)
    assert method.retrieved == 4 and method.extra_images == 4 and method.last_interference > 0
    assert strategy.loss > loss


def test_dgr_replays_the_frozen_copy_not_the_model_being_trained():
    model = tiny_vae()
    method = DGRMethod(DGRConfig(), seed=0)
    method.image_shape = (1, 4, 4)
    strategy = stub_strategy(model, counter=1)
    strategy.mbatch = [torch.zeros(4, 1, 4, 4), torch.zeros(4, dtype=torch.long), torch.zeros(4, dtype=torch.long)]
    method.snapshot(model)
    frozen = method.replay.old_generator.model
    assert frozen is not model and not any(p.requires_grad for p in frozen.parameters())
    with torch.no_grad():   # the trained model moves on: its decoder now says "all ones"
        model.components[-1].decoder_out.bias.fill_(30.0)
        frozen.components[-1].decoder_out.bias.fill_(-30.0)   # the copy says "all zeros"
    method.before_training_iteration(strategy)
    x = strategy.mbatch[0]
    assert x.shape == (8, 1, 4, 4) and x[4:].sum() == 0     # 4 replayed images: the copy's
    assert method.snapshots == 1


def test_lwf_distillation_is_zero_against_itself_and_grows_as_the_model_moves():
    model = tiny_vae()
    x = torch.bernoulli(images(4)).flatten(1)
    teacher = tiny_vae()
    teacher.load_state_dict(model.state_dict())
    same = distillation(model, teacher, x)
    target = torch.sigmoid(teacher.decode(teacher.encode(x)[0]))
    entropy = torch.nn.functional.binary_cross_entropy(target, target, reduction="none").sum(-1)
    assert torch.allclose(same, entropy.detach(), atol=1e-5)    # KL 0, cross-entropy = the teacher's entropy
    with torch.no_grad():
        model.components[-1].encoder_mu.bias.add_(1.0)
    assert (distillation(model, teacher, x) > same).all()
    method = LwFMethod(LwFConfig(alpha=0.5), seed=0)
    method.teacher = teacher
    strategy = stub_strategy(model)
    strategy.mb_x = x
    method.before_backward(strategy)
    assert torch.allclose(strategy.loss, 0.5 * distillation(model, teacher, x).mean())


def test_the_new_methods_run_a_stream(tmp_path):
    """Each through the shared strategy on a short stream of two tasks."""
    from methods import get_method

    data = [torch.rand(64, 1, 28, 28, generator=torch.Generator().manual_seed(s)) for s in (0, 1)]
    for name in ("ewc", "si", "mas", "agem", "mir", "dgr", "dgr-taskfree", "lwf"):
        spec = get_method(name)
        config = spec.config_class(**({"refresh_images": 64} if name == "dgr-taskfree" else {}))
        plugin = spec.plugin_class(config, seed=0)
        model = BernoulliVAE()
        strategy = GenerativeStrategy(model=model, optimizer=torch.optim.Adam(model.parameters(), 1e-3),
                                      train_epochs=1, train_mb_size=32, plugins=[plugin])
        benchmark = task_benchmark(data, [d[:4] for d in data])
        for task in benchmark.train_stream:
            if spec.needs_task_boundaries:
                strategy.train(task)
            else:
                for batch in online_experiences(task, 32):
                    strategy.train(batch)
        assert strategy.clock.train_iterations >= 4, name
