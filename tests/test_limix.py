"""LIMix (methods/limix.py): the gate, the replay of the reused component, which parameters each
task trains, the Student's batches, the model contract, and runs on a plain Avalanche strategy and
through the harness. Real digits (the `mini` stream) and real numbers throughout."""
import functools
import json
import math

import pytest
import torch
from avalanche.training import Naive

import methods.limix  # noqa: F401  (registers `limix` before methods/__init__.py imports it)
from methods.core.strategy import GenerativeStrategy
from methods.limix import LIMixConfig, LIMixModel, LIMixPlugin, discrepancies
from methods.models.contract import GenerativeModel
from methods.models.vae import GenerativeLoss
from streams.benchmark import task_benchmark
from streams.stream import load_stream


@functools.cache
def digits() -> torch.Tensor:
    """The 800 training images of mini's first task (digits 0 and 1), grey, [800, 1, 28, 28]."""
    return load_stream("mini").train_images(0, seed=0)


def benchmark(tasks):
    return task_benchmark(tasks, [t[:8].round() for t in tasks])


def snapshot(module: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


def changed(before: list[torch.Tensor], module: torch.nn.Module) -> bool:
    return any(not torch.equal(a, b) for a, b in zip(before, module.parameters()))


def limix_strategy(config: LIMixConfig, epochs: int = 10, seed: int = 0):
    torch.manual_seed(seed)
    model = LIMixModel()
    plugin = LIMixPlugin(config, seed=seed)
    optimizer = torch.optim.Adam(model.parameters(), 1e-3, betas=(0.5, 0.999))
    strategy = GenerativeStrategy(model=model, optimizer=optimizer, train_epochs=epochs, plugins=[plugin],
                                  seed=seed)
    return model, plugin, strategy


def test_the_gate_reuses_on_a_like_task_expands_on_an_unlike_one_and_trains_what_the_code_trains():
    """Digits 0/1, then other 0/1 images (like), then the same digits inverted (unlike)."""
    a = digits()
    model, plugin, strategy = limix_strategy(LIMixConfig(replay_samples=384))
    tasks = benchmark([a[:400], a[400:], 1 - a[:400]]).train_stream
    trunk = torch.nn.ModuleList([model.encoder_shared, model.decoder_shared])

    before = snapshot(trunk)
    strategy.train(tasks[0])
    assert changed(before, trunk)                     # task 1 trains the shared layers too

    before_trunk, before_c0 = snapshot(trunk), snapshot(model.components[0])
    before_student = snapshot(model.student)
    strategy.train(tasks[1])
    like = plugin.timeline[-1]
    assert like["decision"] == "reuse 0" and like["components"] == 1 and like["task"] == 1
    assert like["discrepancies"][0] < 60              # measured 0.2-50 nats for same-class tasks
    assert like["position"] == 800
    assert changed(before_c0, model.components[0]) and changed(before_student, model.student)
    assert not changed(before_trunk, trunk)           # frozen from the second task on

    before_trunk, before_c0 = snapshot(trunk), snapshot(model.components[0])
    strategy.train(tasks[2])
    unlike = plugin.timeline[-1]
    assert unlike["decision"] == "expand" and unlike["components"] == model.num_components == 2
    assert unlike["discrepancies"][0] > 400           # inverted digits: 588-2500 nats measured
    assert not changed(before_trunk, trunk) and not changed(before_c0, model.components[0])
    assert all(p.requires_grad for p in model.components[1].parameters())
    assert model.tasks_learned == [2, 1] and model.active == 1
    # replay only when reusing: 10 passes over 400 + 384 generated, then over 400 alone
    assert strategy.clock.train_iterations == 10 * (7 + 13 + 7)
    # one Student step per component step, outside the strategy's loop
    assert plugin.extra_steps == strategy.clock.train_iterations
    assert plugin.memory_size == 0 and plugin.replay_generated == 384
    assert plugin.student_loss is not None and 50 < plugin.student_loss < 600
    # the mixture is the evaluated model: the inverted digits are explained by the new component
    inverted = torch.bernoulli(1 - a[400:464], generator=torch.Generator().manual_seed(1)).flatten(1)
    lw = model.component_log_weights(inverted, 4, torch.Generator().manual_seed(2)).mean(1)
    assert (lw[1] > lw[0] + 100).all()


def stamped_model() -> LIMixModel:
    """Three components whose samples are known: 0 all black, 1 top half white, 2 all white."""
    model = LIMixModel()
    model.add_component()
    model.add_component()
    top = torch.zeros(784)
    top[:392] = 1
    with torch.no_grad():
        for c, bias in enumerate([-torch.ones(784), 2 * top - 1, torch.ones(784)]):
            out = model.components[c].decoder_out
            out.weight.zero_()
            out.bias.copy_(12 * bias)
    return model


def test_replay_is_generated_by_the_reused_component():
    model = stamped_model()
    plugin = LIMixPlugin(LIMixConfig(threshold=1e9, replay_samples=300, gate_samples=200), seed=0)
    strategy = GenerativeStrategy(model=model, optimizer=torch.optim.Adam(model.parameters()),
                                  plugins=[plugin])
    plugin.before_training(strategy)
    plugin.tasks_done = 1                               # a later task: the gate runs
    incoming = torch.zeros(200, 1, 28, 28)
    incoming[:, :, :14] = 1                             # component 1's images exactly
    images = plugin.begin_experience(incoming, torch.device("cpu"))

    gate = plugin.timeline[-1]
    assert gate["decision"] == "reuse 1" and gate["component"] == 1 and model.active == 1
    k = gate["discrepancies"]
    assert k[1] < 1 and k[0] > 100 and k[2] > 100        # nats; component 1 generates these images
    assert images.shape == (500, 1, 28, 28) and torch.equal(images[:200], incoming)
    replay = plugin.replay_images()
    assert torch.equal(images[200:], replay)
    assert replay.shape == (300, 1, 28, 28)
    assert replay[:, :, :14].min() > 0.999 and replay[:, :, 14:].max() < 0.001   # component 1's
    assert plugin.memory_size == 0                       # generated replay is not stored memory
    plugin.update_memory(incoming, strategy)
    assert plugin.replay_images() is None                 # dropped after the task


def test_max_components_caps_the_growth_and_the_closest_component_is_reused():
    model = stamped_model()
    plugin = LIMixPlugin(LIMixConfig(threshold=0.0, max_components=3, replay_samples=64, gate_samples=100),
                         seed=0)
    strategy = GenerativeStrategy(model=model, optimizer=torch.optim.Adam(model.parameters()),
                                  plugins=[plugin])
    plugin.before_training(strategy)
    plugin.tasks_done = 1
    plugin.begin_experience(torch.ones(100, 1, 28, 28), torch.device("cpu"))   # component 2's images
    gate = plugin.timeline[-1]
    assert gate["decision"] == "reuse 2" and gate["capped"] and model.num_components == 3
    assert 0 < min(gate["discrepancies"]) == gate["discrepancies"][2] < 1


@pytest.mark.parametrize("raise_at, decision", [(3, "reuse 2"), (4, "expand")])
def test_the_gate_level_is_raised_once_the_mixture_has_raise_at_components(raise_at, decision):
    """The authors' digit scripts: fid_hold = 50 below 7 components, then 100. Here: level 0 (every
    gate expands) below `raise_at` components, then 1e9 (every gate reuses); the model has 3."""
    model = stamped_model()
    config = LIMixConfig(threshold=0.0, raise_at=raise_at, raised_threshold=1e9, replay_samples=64,
                         gate_samples=100)
    plugin = LIMixPlugin(config, seed=0)
    strategy = GenerativeStrategy(model=model, optimizer=torch.optim.Adam(model.parameters()),
                                  plugins=[plugin])
    plugin.before_training(strategy)
    plugin.tasks_done = 1
    plugin.begin_experience(torch.ones(100, 1, 28, 28), torch.device("cpu"))   # component 2's images
    gate = plugin.timeline[-1]
    assert gate["decision"] == decision and gate["level"] == (1e9 if raise_at == 3 else 0.0)
    assert [config.gate_level(c) for c in (1, 2, 3, 4)] == [0.0] * (raise_at - 1) + [1e9] * (5 - raise_at)
    with pytest.raises(ValueError, match="go together"):
        LIMixConfig(raise_at=7)


def test_the_student_batch_mixes_every_other_component_with_the_minibatch():
    model = stamped_model()
    model.activate(1)
    plugin = LIMixPlugin(seed=0)
    x = torch.full((64, 784), 0.5).bernoulli(generator=torch.Generator().manual_seed(0))
    batch = plugin.student_batch(model, x)
    # C = 3: floor(64 / 4) = 16 samples of components 0 and 2 (not the active 1), then 32 of x
    assert batch.shape == (64, 784)
    assert batch[:16].sum() == 0 and batch[16:32].sum() == 16 * 784
    assert torch.equal(batch[32:], x[:32])
    model.activate(0)
    assert plugin.student_batch(model, x)[:16].sum() == 16 * 392      # now component 1's samples
    single = LIMixModel()
    assert torch.equal(plugin.student_batch(single, x), x)         # one component: the minibatch


def test_the_student_trains_its_heads_only():
    model = LIMixModel()
    model.activate(0, train_shared=True)
    shared = torch.nn.ModuleList([model.encoder_shared, model.decoder_shared])
    x = digits()[:64].flatten(1).bernoulli(generator=torch.Generator().manual_seed(0))
    model.student_loss(x).mean().backward()
    assert all(p.grad is None for p in shared.parameters())
    assert all(p.grad is None for p in model.components[0].parameters())
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.student.parameters())


def test_the_model_satisfies_the_contract_and_declares_its_weights():
    model = LIMixModel()
    assert isinstance(model, GenerativeModel)
    model.add_component()
    x = digits()[:5].flatten(1).round()
    gen = torch.Generator().manual_seed(0)
    assert model.component_log_weights(x, 3, gen).shape == (2, 3, 5)
    assert torch.allclose(model.log_mixture_weights(), torch.full((2,), -math.log(2)))
    assert model.sample(7, gen).shape == (7, 784) and model.reconstruct(x).shape == (5, 784)
    assert model.num_components == 2      # the Student is not a component
    # forward is the active component's loss, and only the active component gets gradients
    model.activate(1)
    loss = model(x)
    assert loss.shape == (5,) and (loss > 0).all()
    loss.mean().backward()
    assert all(p.grad is None for p in model.components[0].parameters())
    assert all(p.grad is not None for p in model.components[1].parameters())
    # the Dirichlet-process counts as weights: w_k proportional to the tasks component k learned
    counted = LIMixModel(weights="tasks")
    counted.add_component()
    counted.tasks_learned[:] = [2, 1]
    assert torch.allclose(counted.log_mixture_weights().exp(), torch.tensor([2 / 3, 1 / 3]))
    with pytest.raises(ValueError, match="weights"):
        LIMixConfig(weights="learned")


def test_discrepancy_of_a_component_on_its_own_images_is_near_zero():
    model = stamped_model()
    white = torch.ones(100, 784)
    k = discrepancies(model, white, 100, torch.Generator().manual_seed(0))
    assert k[2] < 1 and k[0] > 1000        # all-white images under the all-black component: ~9,400 nats


def test_limix_trains_on_a_plain_avalanche_strategy():
    a = digits()
    torch.manual_seed(0)
    model = LIMixModel()
    plugin = LIMixPlugin(LIMixConfig(replay_samples=128, gate_samples=256), seed=0)
    strategy = Naive(model=model, optimizer=torch.optim.Adam(model.parameters(), 1e-3, betas=(0.5, 0.999)),
                     criterion=GenerativeLoss(), train_mb_size=64, train_epochs=5, plugins=[plugin],
                     evaluator=None)
    tasks = benchmark([a[:256], 1 - a[256:512]]).train_stream
    strategy.train(tasks[0])
    assert strategy.clock.train_iterations == 5 * 4 and plugin.extra_steps == 20
    strategy.train(tasks[1])
    assert [e["decision"] for e in plugin.timeline] == ["expand"] and model.num_components == 2
    # the new component joined the optimizer at once and trained: its loss on its task fell
    x = (1 - a[512:576]).flatten(1).bernoulli(generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        new_loss = -model.log_weights(x, 8, torch.Generator().manual_seed(1), c=1).mean()
        old_loss = -model.log_weights(x, 8, torch.Generator().manual_seed(1), c=0).mean()
    assert new_loss < old_loss - 100
    assert strategy.clock.train_iterations == 5 * 4 * 2


def test_limix_smoke_run_through_the_harness(tmp_path):
    from bench.run import main

    assert main(["--methods", "limix", "--streams", "mini", "--seeds", "0", "--profile", "smoke",
                 "--out", str(tmp_path), "--no-progress", "--workers", "1",
                 "--set", "limix.replay_samples=256", "--set", "limix.gate_samples=256"]) == 0
    records = [json.loads(p.read_text()) for p in tmp_path.rglob("*.json")]
    record = next(r for r in records if r.get("method") == "limix" and r.get("status") == "done")
    assert record["memory"] == 0 and record["needs_task_boundaries"]
    gates = record["timeline"]
    assert [g["task"] for g in gates] == [1, 2, 3, 4]
    assert all(g["decision"] in ("expand", *(f"reuse {c}" for c in range(5))) for g in gates)
    assert record["components"] == 1 + sum(g["decision"] == "expand" for g in gates)
    # the Student's steps are counted: one per component step
    assert record["gradient_steps"] == 2 * record["iterations"]
    assert 100 < record["nll"] < 550


def test_the_gate_scores_a_random_subset_of_the_task():
    """The code's data is shuffled once, so its 1,000 gate images mix the task's classes; the
    earlier rule took the first n, i.e. one class on a stream presented class by class."""
    from methods.limix import gate_images

    task = torch.cat([torch.zeros(500, 1, 28, 28), torch.ones(500, 1, 28, 28)])   # sorted by "class"
    real = gate_images(task, 200, torch.Generator().manual_seed(0))
    ones = int(real.mean(1).eq(1).sum())
    assert real.shape == (200, 784) and 70 < ones < 130          # about half from each class
    assert gate_images(task, 200, torch.Generator().manual_seed(0)).equal(real)   # seeded


def test_each_task_starts_with_a_fresh_adam_state():
    """The code builds a new Adam at every activation (L1:376-383); keeping the state gave a reused
    component stale moments."""
    a = digits()
    model, plugin, strategy = limix_strategy(LIMixConfig(threshold=1e9, replay_samples=64, gate_samples=64), epochs=1)
    steps = []
    tasks = benchmark([a[:128], a[128:256]]).train_stream
    for task in tasks:
        strategy.train(task)
        steps.append(sorted({int(s["step"]) for s in strategy.optimizer.state.values()}))
    # task 1: 2 steps; task 2 (reuse: 128 real + 64 replayed = 3 minibatches) counts from 1 again
    assert steps == [[2], [3]]
    kept = limix_strategy(LIMixConfig(threshold=1e9, replay_samples=64, gate_samples=64, fresh_optimizer=False),
                          epochs=1)[2]
    for task in tasks:
        kept.train(task)
    # the reused component's moments carried on (5 steps), the shared layers kept task 1's (2)
    assert sorted({int(s["step"]) for s in kept.optimizer.state.values()}) == [2, 5]


def test_taskfree_limix_gates_each_full_buffer_and_never_grows_past_its_cap():
    from methods.limix import LIMixTaskFreePlugin
    from streams.benchmark import online_experiences

    a = digits()
    torch.manual_seed(0)
    model = LIMixModel()
    plugin = LIMixTaskFreePlugin(LIMixConfig(threshold=0.0, max_components=3, buffer_size=128,
                                             replay_samples=64, gate_samples=64), seed=0)
    strategy = GenerativeStrategy(model=model, optimizer=torch.optim.Adam(model.parameters(), 1e-3),
                                  train_epochs=1, plugins=[plugin])
    stream = torch.cat([a[:320], 1 - a[:320]])     # 640 images: 5 buffers of 128
    sizes = []
    for experience in online_experiences(task_benchmark([stream], [stream[:8]]).train_stream[0]):
        before = strategy.clock.train_iterations
        strategy.train(experience)
        sizes.append((plugin.memory_size, strategy.clock.train_iterations - before))
    # nothing trains while the buffer fills; a full buffer (plus replay on reuse) trains, then empties
    assert [s for s, _ in sizes] == [64, 0] * 5
    assert [n for _, n in sizes] == [0, 2, 0, 2, 0, 2, 0, 3, 0, 3]
    decisions = [e["decision"] for e in plugin.timeline]
    # threshold 0: every gate wants to expand; the cap (3) turns the last two into reuses
    assert decisions[:2] == ["expand", "expand"] and all(d.startswith("reuse") for d in decisions[2:])
    assert len(decisions) == 4
    assert model.num_components == 3 and plugin.tasks_done == 5 and plugin.memory_peak == 128
    assert all(e.get("capped") for e in plugin.timeline[2:])
    assert plugin.replay_generated == 2 * 64


def test_taskfree_limix_with_a_buffer_of_one_task_is_the_boundary_form():
    """When the buffer holds exactly one task, every fill is a task boundary: limix-taskfree must
    train and score exactly as limix (same gate decisions, same numbers)."""
    from bench.evaluation.cell import run_cell
    from bench.planning.grid import expand_grid
    from bench.planning.profiles import resolve_profile

    profile = resolve_profile("smoke")   # tasks of 256 images
    settings = "gate_samples=256,threshold=30.0,replay_samples=256"
    boundary, taskfree = (run_cell(expand_grid([method], ["mini"], [0], profile)[0])
                          for method in (f"limix[{settings}]", f"limix-taskfree[buffer_size=256,{settings}]"))
    assert boundary["status"] == taskfree["status"] == "done"
    assert taskfree["nll"] == boundary["nll"] and taskfree["nll_matrix"] == boundary["nll_matrix"]
    assert [e["decision"] for e in taskfree["timeline"]] == [e["decision"] for e in boundary["timeline"]]
    assert taskfree["memory_peak"] == 256 and boundary["memory_peak"] == 0
