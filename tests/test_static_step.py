"""The fused training step (methods/core/static_step.py): the eager loop's numbers to the bit on
the CPU, eager for methods with per-step callbacks, a CUDA graph on a GPU within float tolerance
of eager (tests marked `cuda` skip without one), and GPU cells packed per GPU by the executor."""
import contextlib
import math
import shutil
import time

import pytest
import torch

from bench.evaluation.cell import train_and_evaluate
from bench.execution import CommonOptions, executor
from bench.execution.store import ResultStore
from bench.planning.grid import expand_grid, method_config
from bench.planning.profiles import resolve_profile
from bench.run import main
from methods import get_method
from methods.core.minibatches import TensorMinibatches
from methods.core.static_step import WARMUP_STEPS, FusedStep
from methods.core.strategy import GenerativeStrategy, NonFiniteLossError, PluginHooks
from methods.core.training_step import resolve_training_step
from methods.models.vae import BernoulliVAE, GenerativeLoss

HAS_CUDA = torch.cuda.is_available()
cuda = pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA GPU")
CPU = torch.device("cpu")


def smoke_cell(method, seed=0, settings=None):
    return expand_grid([method], ["mini"], [seed], resolve_profile("smoke", settings))[0]


@pytest.mark.parametrize("method,settings", [
    ("finetune", None), ("reservoir", None), ("ocm", None), ("ocm-dynamic", None), ("joint", None),
    ("reservoir", ["steps_per_batch=3"]), ("ocm-iw50", ["mc_samples=3"]),
])
def test_the_fused_step_gives_the_eager_loops_numbers_to_the_bit(method, settings):
    cell = smoke_cell(method, settings=settings)
    eager = train_and_evaluate(cell, device="cpu", training_step="eager")
    fused = train_and_evaluate(cell, device="cpu", training_step="fused")
    assert (eager["training_step"], fused["training_step"]) == ("eager", "fused")
    assert fused["nll_matrix"] == eager["nll_matrix"]
    for key in ("gradient_steps", "images_trained", "memory", "components"):
        assert fused[key] == eager[key], key
    assert 150 < fused["nll"] < 300


@pytest.mark.parametrize("method", ["lgm", "curl", "cndpm", "limix"])
def test_methods_with_per_step_callbacks_always_train_eager(method):
    """The method's plugin acts at every step: the predicate says so from the plugins it is given
    (without the method's plugin it says no), the step that would be captured on a GPU resolves to
    eager for it, and a cell asked for the fused step trains eager."""
    strategy = strategy_for(method)
    callbacks = strategy._has_per_step_callbacks(PluginHooks(strategy.plugins))
    others = [p for p in strategy.plugins if not isinstance(p, get_method(method).plugin_class)]
    assert callbacks and not strategy._has_per_step_callbacks(PluginHooks(others))
    assert resolve_training_step("auto", torch.device("cuda"), per_step_callbacks=callbacks) == "eager"
    assert train_and_evaluate(smoke_cell(method), device="cpu", training_step="fused")["training_step"] == "eager"


@pytest.mark.parametrize("method", ["finetune", "first-k", "reservoir", "ocm", "ocm-iw50", "ocm-dynamic", "joint"])
def test_methods_without_per_step_callbacks_take_the_fused_or_captured_step(method):
    strategy = strategy_for(method)
    assert not strategy._has_per_step_callbacks(PluginHooks(strategy.plugins))


def strategy_for(method, profile="smoke", training_step="auto"):
    spec = get_method(method)
    plugin = spec.plugin_class(spec.config_class(**method_config(spec, "mini", resolve_profile(profile).methods.get(method))))
    model = plugin.build_model(resolve_profile(profile))
    return GenerativeStrategy(model=model, optimizer=torch.optim.Adam(model.parameters()), plugins=[plugin],
                              training_step=training_step)


def test_training_steps_resolve_by_device_and_unknown_ones_list_the_valid_ones(tmp_path, capsys):
    assert resolve_training_step("auto", CPU, False) == "fused"
    assert resolve_training_step("auto", torch.device("cuda", 0), False) == "graph"
    assert resolve_training_step("graph", CPU, False) == "fused"      # no graphs off CUDA
    assert resolve_training_step("compiled", CPU, False) == "compiled"
    assert resolve_training_step("eager", torch.device("cuda", 0), False) == "eager"
    with pytest.raises(ValueError, match="valid: auto, eager, fused, graph, compiled"):
        GenerativeStrategy(model=BernoulliVAE(), optimizer=torch.optim.Adam(BernoulliVAE().parameters()),
                           training_step="turbo")
    with pytest.raises(SystemExit):
        main(["--methods", "finetune", "--training-step", "turbo", "--out", str(tmp_path)])
    assert "invalid choice: 'turbo'" in capsys.readouterr().err


class ExplodingVAE(BernoulliVAE):
    """Its loss becomes NaN from the third minibatch on."""

    def __init__(self):
        super().__init__()
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        loss = super().forward(x)
        return loss * float("nan") if self.calls >= 3 else loss


def test_a_nan_loss_stops_the_fused_step_too():
    model = ExplodingVAE()
    strategy = GenerativeStrategy(model=model, optimizer=torch.optim.Adam(model.parameters()), training_step="fused")
    strategy.training_step = "fused"
    strategy.dataloader = TensorMinibatches(torch.rand(64 * 5, 784), 64, torch.Generator().manual_seed(0))
    with pytest.raises(NonFiniteLossError, match="NaN or infinite at training step 3"):
        strategy.training_epoch()


@pytest.mark.skipif(shutil.which("g++") is None, reason="torch.compile on a CPU needs a C++ compiler")
def test_the_compiled_step_keeps_the_eager_random_stream():
    """torch.compile with the eager random numbers (inductor's fallback_random): the same
    trajectory within float tolerance. Not faster on the CPU (bench.perf --only step)."""
    cell = smoke_cell("reservoir")
    eager = train_and_evaluate(cell, device="cpu", training_step="eager")
    compiled = train_and_evaluate(cell, device="cpu", training_step="compiled")
    assert compiled["training_step"] == "compiled"
    torch.testing.assert_close(torch.tensor(compiled["nll_matrix"]), torch.tensor(eager["nll_matrix"]),
                               rtol=1e-4, atol=1e-3)


# --------------------------------------------------------------------------- packed GPU cells
def test_gpu_slots_pack_cells_per_gpu_or_spread_the_workers():
    assert executor.gpu_slots("auto", 2, 8, None) == ["cuda:0", "cuda:1"] * 4
    assert executor.gpu_slots("cuda", 2, 3, 2) == ["cuda:0", "cuda:1"] * 2
    assert executor.gpu_slots("cuda:1", 2, 8, 3) == ["cuda:1"] * 3
    assert executor.gpu_slots("auto", 0, 8, 2) == [] and executor.gpu_slots("cpu", 2, 8, 2) == []


def test_ray_packs_gpu_cells_by_asking_for_a_fraction_of_a_gpu():
    assert executor.ray_gpus_per_cell(None, 4, "auto", {"paper"}, gpus_available=True) == 0.25
    assert executor.ray_gpus_per_cell(None, None, "auto", {"paper"}, gpus_available=True) == 1
    assert executor.ray_gpus_per_cell(0.5, 4, "cuda", {"smoke"}, gpus_available=True) == 0.5   # given: kept
    assert executor.ray_gpus_per_cell(None, 4, "auto", {"quick"}, gpus_available=True) == 0     # CPU cells


def _fake_cell_process(cell, root, data_dir, device, training_step, keeping, parent, conn):
    """A worker that holds its slot for a moment and says where and when it ran."""
    start = time.time()
    time.sleep(0.3)
    conn.send({"status": "done", "device": device, "training_step": training_step, "span": (start, time.time())})
    conn.close()


def test_the_local_executor_packs_gpu_cells_per_gpu_and_leaves_cpu_cells_alone(tmp_path, monkeypatch):
    monkeypatch.setattr(executor, "visible_gpus", lambda: 2)
    monkeypatch.setattr(executor, "_cell_process", _fake_cell_process)
    monkeypatch.setattr(executor, "worker_start_method", lambda device, cells: "fork")
    gpu_cells = expand_grid(["finetune", "reservoir", "ocm"], ["mini"], [0, 1, 2], resolve_profile("paper"))
    cpu_cells = expand_grid(["finetune"], ["mini"], [0, 1], resolve_profile("smoke"))

    class Bar:
        def update(self):
            pass

    common = CommonOptions(workers=8, device="auto", training_step="graph", cells_per_gpu=2)
    outcomes = executor.run_local(gpu_cells + cpu_cells, ResultStore(tmp_path), common, None, Bar())
    assert len(outcomes) == 11 and all(o["training_step"] == "graph" for o in outcomes.values())
    on_gpu = [outcomes[c.key] for c in gpu_cells]
    assert {o["device"] for o in on_gpu} == {"cuda:0", "cuda:1"}
    assert [outcomes[c.key]["device"] for c in cpu_cells] == ["auto", "auto"]   # resolved in the worker
    for gpu in ("cuda:0", "cuda:1"):   # never more than 2 cells at once on one GPU, and 2 did run at once
        spans = [o["span"] for o in on_gpu if o["device"] == gpu]
        overlap = max(sum(s[0] <= t < s[1] for s in spans) for t, _ in spans)
        assert overlap == 2


# ------------------------------------------------- the captured step's bookkeeping, on the CPU
class EmulatedGraphs:
    """CudaGraphs for a CPU: no streams; a capture records the step's function without running it
    and a replay runs it. What a replay computes is then the captured step's arithmetic on its
    buffers (cursor, order, data), so it must match the fused step to the bit."""

    captures = 0

    @staticmethod
    def stream(device):
        return None

    @staticmethod
    def on_side_stream(stream):
        return contextlib.nullcontext()

    @classmethod
    def capture(cls, body, stream, generator, device):
        cls.captures += 1

        class Replay:
            replay = staticmethod(body)
            reset = staticmethod(lambda: None)

        return Replay()


def train_through(mode, passes, seed=0, graphs=None):
    """FusedStep over several experiences' sets (each `(images, num_batches)`) on the CPU."""
    torch.manual_seed(seed)
    model = BernoulliVAE(mc_samples=2)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.5, 0.999), fused=True)
    generator = torch.Generator().manual_seed(seed)
    step = FusedStep(model, optimizer, GenerativeLoss(), 64, generator, mode, graphs=graphs)
    losses = []
    for images, num_batches in passes:
        loader = TensorMinibatches(images, 64, generator, num_batches=num_batches)
        for order, bounds in loader.passes():
            step.run_pass(images, order, bounds, lambda loss, size, replayed: losses.append(loss.item()))
    return model, step, losses


def test_the_captured_steps_bookkeeping_gives_the_fused_steps_numbers_to_the_bit():
    """Warm-up, capture, replays from the device cursor, partial minibatches between replays, a new
    experience's set loaded into the buffer, and a recapture when a set outgrows it."""
    sets = [torch.rand(n, 784, generator=torch.Generator().manual_seed(n)) for n in (64 * 5 + 17, 100, 64 * 9 + 3)]
    passes = [(sets[0], 20), (sets[1], None), (sets[2], 12), (sets[0], None)]
    fused_model, _, fused_losses = train_through("fused", passes)
    EmulatedGraphs.captures = 0
    graph_model, step, graph_losses = train_through("graph", passes, graphs=EmulatedGraphs)
    assert graph_losses == fused_losses
    for a, b in zip(graph_model.parameters(), fused_model.parameters()):
        assert torch.equal(a, b)
    # 337 rows, then 579 > 337: the buffer grows and the step is captured again after its warm-up
    assert step.captures == EmulatedGraphs.captures == 2
    # partial minibatches: 3 in the 20 of the first set (passes of 6, 6, 6, 2), 1 per pass after
    assert step.replays == len(fused_losses) - 2 * WARMUP_STEPS - 6 == 28
    assert step.check_finite()


@pytest.mark.parametrize("method,settings", [("reservoir", None), ("ocm-dynamic", None), ("joint", None),
                                             ("ocm", ["steps_per_batch=3"])])
def test_cells_through_the_emulated_graph_match_fused_cells_to_the_bit(method, settings, monkeypatch):
    """The strategy's graph mode end to end (buffers growing with the memory, rebuilt steps after
    an expansion, the device flag read per experience), with the capture emulated on the CPU."""
    from methods.core import static_step, strategy

    cell = smoke_cell(method, settings=settings)
    fused = train_and_evaluate(cell, device="cpu", training_step="fused")
    EmulatedGraphs.captures = 0
    monkeypatch.setattr(static_step, "CudaGraphs", EmulatedGraphs)
    monkeypatch.setattr(strategy, "resolve_training_step", lambda requested, device, per_step: "graph")
    graph = train_and_evaluate(cell, device="cpu", training_step="graph")
    assert graph["training_step"] == "graph" and "graph_capture_error" not in graph
    assert graph["graph_captures"] == EmulatedGraphs.captures >= 1 and graph["graph_replays"] > 0
    assert graph["nll_matrix"] == fused["nll_matrix"]
    for key in ("gradient_steps", "images_trained", "memory", "components"):
        assert graph[key] == fused[key], key


def test_a_set_written_in_place_between_experiences_is_copied_again():
    """A method may train on one tensor that it updates in place (here: a fixed memory whose first
    rows each experience overwrites): the graph's buffer must follow it."""
    batches = torch.rand(4, 64, 784, generator=torch.Generator().manual_seed(2))

    def run(mode, graphs=None):
        torch.manual_seed(0)
        memory = torch.rand(200, 784, generator=torch.Generator().manual_seed(1))
        model = BernoulliVAE()
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        generator = torch.Generator().manual_seed(0)
        step = FusedStep(model, optimizer, GenerativeLoss(), 64, generator, mode, graphs=graphs)
        losses = []
        for batch in batches:
            memory[:64] = batch
            for order, bounds in TensorMinibatches(memory, 64, generator, num_batches=8).passes():
                step.run_pass(memory, order, bounds, lambda loss, size, replayed: losses.append(loss.item()))
        return losses, step

    fused, _ = run("fused")
    graph, step = run("graph", EmulatedGraphs)
    assert step.replays > 0 and graph == fused


class UncapturableGraphs(EmulatedGraphs):
    """CUDA refusing the capture (as it does for a forward that reads a value on the host)."""

    @classmethod
    def capture(cls, body, stream, generator, device):
        raise RuntimeError("operation not permitted when stream is capturing\nmore detail")


def test_a_step_that_cannot_be_captured_runs_fused_with_a_warning():
    sets = [torch.rand(64 * 5 + 17, 784, generator=torch.Generator().manual_seed(1))]
    _, _, fused_losses = train_through("fused", [(sets[0], 14)])
    with pytest.warns(UserWarning, match="could not be captured as a CUDA graph, so it runs fused"):
        _, step, losses = train_through("graph", [(sets[0], 14)], graphs=UncapturableGraphs)
    assert losses == fused_losses and step.mode == "fused" and step.replays == 0 and step.captures == 0
    assert step.capture_error == "RuntimeError: operation not permitted when stream is capturing"


def test_a_cell_whose_step_cannot_be_captured_says_so_and_keeps_the_fused_numbers(monkeypatch):
    from methods.core import static_step, strategy

    cell = smoke_cell("ocm-dynamic")   # expands: the rebuilt step must not try to capture again
    fused = train_and_evaluate(cell, device="cpu", training_step="fused")
    monkeypatch.setattr(static_step, "CudaGraphs", UncapturableGraphs)
    monkeypatch.setattr(strategy, "resolve_training_step", lambda requested, device, per_step: "graph")
    with pytest.warns(UserWarning, match="could not be captured") as warned:
        record = train_and_evaluate(cell, device="cpu", training_step="graph")
    assert len(warned) == 1
    assert record["training_step"] == "fused" and record["graph_captures"] == 0
    assert record["graph_capture_error"].startswith("RuntimeError: operation not permitted")
    assert record["nll_matrix"] == fused["nll_matrix"] and record["components"] == fused["components"] > 1


# ------------------------------------------------------------------------------------ on a GPU
def steps_through(mode, steps=12, seed=0, n=64 * 5 + 17):
    """`steps` minibatches (passes of 5 full and one of 17 images) through a FusedStep on CUDA."""
    torch.manual_seed(seed)
    device = torch.device("cuda")
    model = BernoulliVAE(mc_samples=5).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.5, 0.999), fused=True, capturable=True)
    generator = torch.Generator(device).manual_seed(seed)
    images = torch.rand(n, 784, generator=torch.Generator().manual_seed(1)).to(device)
    loader = TensorMinibatches(images, 64, generator, num_batches=steps)
    step = FusedStep(model, optimizer, GenerativeLoss(), 64, generator, mode)
    losses = []
    for order, bounds in loader.passes():
        step.run_pass(images, order, bounds, lambda loss, size, replayed: losses.append(float(loss)))
    return model, step, losses


@cuda
def test_the_captured_step_gives_the_eager_numbers_within_float_tolerance():
    eager_model, _, eager_losses = steps_through("fused", steps=20)
    graph_model, step, graph_losses = steps_through("graph", steps=20)
    assert step.captures == 1 and step.replays == 20 - 3 - WARMUP_STEPS   # 3 partial minibatches
    torch.testing.assert_close(graph_losses, eager_losses, rtol=1e-4, atol=1e-3)
    for a, b in zip(graph_model.parameters(), eager_model.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


@cuda
@pytest.mark.parametrize("method", ["reservoir", "ocm", "ocm-dynamic"])
def test_cells_trained_through_the_graph_match_eager_cells(method):
    cell = smoke_cell(method)
    eager = train_and_evaluate(cell, device="cuda", training_step="eager")
    graph = train_and_evaluate(cell, device="cuda", training_step="graph")
    assert graph["training_step"] == "graph" and graph["graph_replays"] > 0
    if method == "reservoir":   # a data-independent schedule: the same steps, the same trajectory
        assert graph["gradient_steps"] == eager["gradient_steps"]
        assert abs(graph["nll"] - eager["nll"]) < 2e-3 * eager["nll"], (graph["nll"], eager["nll"])
    else:   # OCM's selections compare scores with thresholds: float-level differences may flip one
        assert abs(graph["nll"] - eager["nll"]) < 2e-2 * eager["nll"], (graph["nll"], eager["nll"])
    if method == "ocm-dynamic" and graph["components"] > 1:   # an expansion: new parameters, a new capture
        assert graph["graph_captures"] >= 2


@cuda
def test_a_nan_loss_in_a_replayed_step_sets_the_device_flag():
    model, step, _ = steps_through("graph", steps=12)
    assert step.replays > 0 and step.check_finite()
    with torch.no_grad():
        model.encoder_shared.weight[0, 0] = float("nan")
    loader = TensorMinibatches(torch.rand(64 * 3, 784, device="cuda"), 64, step.generator)
    for order, bounds in loader.passes():
        step.run_pass(loader.images, order, bounds, lambda loss, size, replayed: None)
    assert not step.check_finite()


@pytest.mark.parametrize("n,num_batches", [(0, None), (10, None), (64, None), (200, None), (200, 7), (200, 2), (10, 3)])
def test_a_minibatch_plan_states_the_sizes_it_yields(n, num_batches):
    loader = TensorMinibatches(torch.rand(n, 784), 64, torch.Generator().manual_seed(0), num_batches=num_batches)
    assert loader.batch_sizes() == [len(batch[0]) for batch in loader]


def test_reservoir_trains_on_incoming_plus_memory_without_concatenating():
    spec = get_method("reservoir")
    plugin = spec.plugin_class(spec.config_class(budget=100), seed=0)
    batches = torch.rand(5, 64, 784, generator=torch.Generator().manual_seed(0))
    for incoming in batches:
        expected = torch.cat([incoming, plugin.replay_images()]) if plugin.filled else incoming
        images = plugin.training_images(incoming)
        assert torch.equal(images, expected)
        if plugin.filled:   # a view of the reservoir's block: no copy of the memory
            assert images.untyped_storage().data_ptr() == plugin.block.untyped_storage().data_ptr()
        plugin.update_memory(incoming)
    assert plugin.filled == 100 and plugin.seen == 320


def test_a_fused_step_is_rebuilt_when_what_a_capture_bakes_in_changes():
    model = BernoulliVAE()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(0)
    step = FusedStep(model, optimizer, GenerativeLoss(), 64, generator, "fused")
    assert step.serves(model, optimizer, generator)
    optimizer.param_groups[0]["lr"] = 1e-4                       # a float inside the captured update
    assert not step.serves(model, optimizer, generator)
    step = FusedStep(model, optimizer, GenerativeLoss(), 64, generator, "fused")
    optimizer.state = type(optimizer.state)()                   # Avalanche's reset_optimizer
    assert not step.serves(model, optimizer, generator)
    step = FusedStep(model, optimizer, GenerativeLoss(), 64, generator, "fused")
    model.add_component()                                       # new parameters, old ones frozen
    assert not step.serves(model, optimizer, generator)
    assert not step.serves(model, optimizer, torch.Generator())


def test_the_runner_refuses_bad_packing_requests_before_running(tmp_path, capsys):
    smoke = ["--methods", "finetune", "--streams", "mini", "--seeds", "0", "--profile", "smoke",
             "--no-progress", "--out", str(tmp_path)]
    assert main(smoke + ["--cells-per-gpu", "0"]) == 2
    assert "--cells-per-gpu must be at least 1" in capsys.readouterr().err
    assert main(smoke + ["--cells-per-gpu", "2", "--executor", "slurm"]) == 2
    assert "a Slurm job runs one cell" in capsys.readouterr().err
    assert main(smoke + ["--cells-per-gpu", "2", "--gpus-per-cell", "0.5", "--executor", "ray"]) == 2
    assert "not both" in capsys.readouterr().err
    assert not (tmp_path / "records").exists()
    assert main(smoke + ["--cells-per-gpu", "2", "--device", "cpu"]) == 0   # runs, and says it is moot
    assert "--cells-per-gpu has no effect with --device cpu" in capsys.readouterr().err


class HostReadingVAE(BernoulliVAE):
    """A forward that reads a value on the host: CUDA refuses to capture it."""

    def forward(self, x):
        loss = super().forward(x)
        self.last_total = loss.sum().item()   # a device-to-host copy: not allowed in a capture
        return loss


@cuda
def test_a_forward_cuda_refuses_to_capture_falls_back_to_fused_on_a_real_gpu():
    torch.manual_seed(0)
    model = HostReadingVAE().cuda()
    optimizer = torch.optim.Adam(model.parameters(), fused=True, capturable=True)
    generator = torch.Generator("cuda").manual_seed(0)
    images = torch.rand(64 * 8, 784, device="cuda")
    step = FusedStep(model, optimizer, GenerativeLoss(), 64, generator, "graph")
    losses = []

    def train():
        for order, bounds in TensorMinibatches(images, 64, generator, num_batches=16).passes():
            step.run_pass(images, order, bounds, lambda loss, size, replayed: losses.append(loss.item()))

    with pytest.warns(UserWarning, match="could not be captured"):
        train()
    assert step.mode == "fused" and step.replays == 0 and len(losses) == 16
    assert all(math.isfinite(v) for v in losses) and losses[-1] < losses[0]
