"""The fused training step: minibatch draw, binarization, forward, backward and the optimizer's
update as one unit over tensors that stay on the device, so that a GPU can capture it once as a
CUDA graph and replay it. A paper-profile step is bound by kernel launches and Python, not by its
arithmetic: 2.3-2.9 ms per step on an H200 (reports/perf-cuda.md) for about 4 GFLOP.

The strategy's `training_step` setting picks how a step runs (methods/core/strategy.py; the list and
how "auto" resolves: methods/core/training_step.py):
- "eager": Avalanche's per-step loop, every plugin callback called (the only mode for methods with
  per-step callbacks: LGM, CURL, CN-DPM, LIMix, and any plugin that has one);
- "fused": this unit, run as a plain function: the same draws, arithmetic and random stream as
  "eager" without the per-step callbacks; on the CPU the same numbers to the bit (tests);
- "graph": "fused", with the full-size minibatches' step captured as a CUDA graph after
  WARMUP_STEPS ordinary steps and replayed; a pass's last, smaller minibatch runs "fused";
- "compiled": "fused" with the model's loss through `torch.compile` (static shapes, full
  minibatches, the eager random stream). On the CPU (bench.perf --only step, reports/perf-step.md)
  2-8% faster per step at the quick profile's 1 MC sample, no faster at the paper's 50, and it
  compiles for seconds per process and again after each expansion: "auto" never picks it;
- "auto": "graph" on CUDA, "fused" elsewhere, "eager" for methods with per-step callbacks.

A captured step replays kernels: Python in the model's forward (module hooks included) runs once,
at the capture. Plugins act through per-step callbacks, which send a method to "eager".
A step that cannot be captured (CUDA refuses, e.g. a forward that reads a value on the host) runs
fused for the rest of the cell, with a warning; the record says so (`graph_capture_error`).
The capture is redone when what it captured changes: the model's parameters (OCM's dynamic
expansion adds a component), the optimizer (refreshed), or the training set outgrowing the buffer
it is copied into (its capacity doubles, so a growing memory recaptures a handful of times).
"""
from __future__ import annotations

import contextlib
import warnings

import torch

from streams.stream import binarize

WARMUP_STEPS = 3   # ordinary steps (on a side stream) before a capture: lazy state, library handles


class FusedStep:
    """One model + optimizer's training step over the minibatches a `TensorMinibatches` plans.

    `run_pass(images, order, bounds)` trains on one pass: minibatch i is
    `binarize(images[order[start:stop]])` (the whole set when order is None), exactly as
    `TensorMinibatches.__iter__` draws it, from the same generator. Returns the last loss."""

    def __init__(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer, criterion,
                 batch_size: int, generator: torch.Generator, mode: str, graphs=None):
        self.model, self.optimizer, self.criterion = model, optimizer, criterion
        self.graphs = graphs or CudaGraphs   # how captures are made (tests: an emulation)
        self.batch_size, self.generator, self.mode = batch_size, generator, mode
        # What a capture bakes in (`serves`): the parameters themselves (held, so that a replaced
        # layer's parameter cannot reuse a freed one's id), and `_settings`
        self.held_parameters, self.settings = tuple(model.parameters()), self._settings(model, optimizer)
        self.loss_of = self._loss
        if mode == "compiled":   # the eager random stream (inductor would draw its own numbers)
            import torch._inductor.config as inductor_config

            inductor_config.fallback_random = True
            self.loss_of = torch.compile(self._loss, dynamic=False)
        self.steps = 0                 # steps taken (all kinds)
        self.replays = 0               # of which graph replays
        self.captures = 0
        self._graph: CapturedStep | None = None
        self._warm = 0                 # full-size steps since the last (re)build, before a capture
        self.last_replayed = False     # the last step's loss is the graph's (overwritten by the next)
        self.capture_error: str | None = None   # why the graph mode fell back to fused, if it did

    @staticmethod
    def _settings(model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> tuple:
        """Which parameters train, the optimizer's state (a reset replaces it) and its learning
        rates (a float in the captured update)."""
        return (tuple(p.requires_grad for p in model.parameters()), id(optimizer.state),
                tuple(group["lr"] for group in optimizer.param_groups))

    def serves(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer, generator) -> bool:
        """Still this model's, optimizer's and generator's step (else the strategy builds another)."""
        if optimizer is not self.optimizer or generator is not self.generator or model is not self.model:
            return False
        params = tuple(model.parameters())
        return (len(params) == len(self.held_parameters) and all(a is b for a, b in zip(params, self.held_parameters))
                and self._settings(model, optimizer) == self.settings)

    def _loss(self, x: torch.Tensor) -> torch.Tensor:
        return self.criterion(self.model(x))

    def train_on(self, x: torch.Tensor) -> torch.Tensor:
        """Binarize, forward, backward, update: the eager loop's arithmetic in the same order (and
        what a captured graph replays)."""
        x = binarize(x, self.generator)
        self.optimizer.zero_grad()
        loss = self.loss_of(x) if len(x) == self.batch_size else self._loss(x)
        loss.backward()
        self.optimizer.step()
        return loss

    def run_pass(self, images: torch.Tensor, order: torch.Tensor | None, bounds, on_step) -> torch.Tensor | None:
        """Train on one pass; `on_step(loss, size, replayed)` after each step (the strategy's
        bookkeeping; a replayed step's loss tensor is the graph's, overwritten by the next replay)."""
        graph = self._graph_for(images, order, bounds) if self.mode == "graph" else None
        loss = None
        for start, stop in bounds:
            full = stop - start == self.batch_size
            self.steps += 1
            if graph is not None and full and self._warm >= WARMUP_STEPS:
                loss = graph.replay()
                self.replays += 1
                self.last_replayed = True
                on_step(loss, stop - start, True)
                continue
            x = images if order is None else images[order[start:stop]]
            if graph is not None and full:
                loss = self._warm_up(graph, x)
                graph = self._graph   # None when the capture failed: the rest runs fused
            else:
                loss = self.train_on(x)
            self.last_replayed = False
            on_step(loss, stop - start, False)
        return loss

    # ------------------------------------------------------------------------------ the graph
    def _graph_for(self, images, order, bounds) -> CapturedStep | None:
        """The captured step, loaded with this pass's set and order; None when the pass has no
        full-size minibatch (nothing to replay)."""
        if not any(stop - start == self.batch_size for start, stop in bounds):
            return None
        if self._graph is None or len(images) > self._graph.capacity:
            capacity = max(len(images), 2 * self._graph.capacity if self._graph else 0)
            if self._graph is not None:
                self._graph.release()
            self._graph, self._warm = CapturedStep(self, capacity, images), 0
        self._graph.load(images, order)
        return self._graph

    def _warm_up(self, graph: CapturedStep, x: torch.Tensor) -> torch.Tensor:
        """An ordinary full-size step on a side stream (the capture recipe), counted towards the
        capture; the step after the last one captures the graph (the capture does not train)."""
        loss = graph.side_stream_step(x)
        self._warm += 1
        if self._warm == WARMUP_STEPS:
            try:
                graph.capture()
            except RuntimeError as err:   # e.g. a model whose forward reads a value on the host
                self.capture_error = f"{type(err).__name__}: {err}".splitlines()[0]
                self.mode = "fused"
                self.release()
                warnings.warn(f"the training step could not be captured as a CUDA graph, so it runs "
                              f"fused (the same numbers, more launches): {self.capture_error}", stacklevel=2)
            else:
                self.captures += 1
        return loss

    def check_finite(self) -> bool:
        """False when a replayed step's loss was NaN or infinite (reads the device flag)."""
        return self._graph is None or self._graph.finite()

    def release(self) -> None:
        if self._graph is not None:
            self._graph.release()
            self._graph = None


class CudaGraphs:
    """The CUDA calls a captured step makes, in one place: a side stream, running on it, and the
    capture itself. `tests/test_static_step.py` substitutes an emulation that replays the captured
    function in Python, which checks the step's own bookkeeping (buffers, cursor, warm-up,
    recaptures) on a CPU against the fused step, to the bit."""

    @staticmethod
    def stream(device: torch.device):
        return torch.cuda.Stream(device)

    @staticmethod
    @contextlib.contextmanager
    def on_side_stream(stream):
        """Run on `stream`, ordered after the work queued so far and before the work queued next."""
        stream.wait_stream(torch.cuda.current_stream(stream.device))
        with torch.cuda.stream(stream):
            yield
        torch.cuda.current_stream(stream.device).wait_stream(stream)

    @staticmethod
    def capture(body, stream, generator: torch.Generator, device: torch.device) -> CapturedGraph:
        """`body()` captured (not run) as a CUDA graph on `device`. The custom generator is
        registered first (its graph-side seed and offset live on the current device)."""
        with torch.cuda.device(device):
            graph = torch.cuda.CUDAGraph()
            graph.register_generator_state(generator)
            with torch.cuda.graph(graph, stream=stream):
                output = body()
        return CapturedGraph(graph, output)


class CapturedGraph:
    """A captured CUDA graph and its output tensor, which every replay overwrites."""

    def __init__(self, graph, output: torch.Tensor):
        self.graph, self.output = graph, output

    def replay(self) -> torch.Tensor:
        self.graph.replay()
        return self.output

    def reset(self) -> None:
        self.graph.reset()


class CapturedStep:
    """The buffers and the CUDA graph of one `FusedStep`: the training set copied into `data`
    (capacity rows), the pass's order into `order`, a device cursor the graph advances by one
    minibatch per replay, and a device flag it sets when a loss is not finite."""

    def __init__(self, step: FusedStep, capacity: int, like: torch.Tensor):
        device = like.device
        self.step, self.capacity = step, capacity
        self.data = torch.zeros((capacity, *like.shape[1:]), dtype=like.dtype, device=device)
        self.order = torch.zeros(capacity, dtype=torch.long, device=device)
        self.cursor = torch.zeros((), dtype=torch.long, device=device)
        self.rows = torch.arange(step.batch_size, device=device)
        self.nonfinite = torch.zeros((), dtype=torch.bool, device=device)
        self.graph: CapturedGraph | None = None
        self._images: torch.Tensor | None = None
        self._images_version = -1
        self._grads: list[torch.Tensor | None] | None = None
        self._stream = step.graphs.stream(device)

    def load(self, images: torch.Tensor, order: torch.Tensor | None) -> None:
        """The pass's set and order into the graph's buffers. The set is copied when it is another
        tensor or was written in place since (a method may train on one tensor it updates: its
        version counter, shared with its views, says so)."""
        n = len(images)
        if images is not self._images or images._version != self._images_version:
            self.data[:n].copy_(images)
            self._images, self._images_version = images, images._version
        self.order[:n].copy_(order if order is not None else torch.arange(n, device=images.device))
        self.cursor.zero_()

    def _draw(self) -> torch.Tensor:
        """The next minibatch of this pass, on the device: data[order[cursor:cursor + B]]."""
        x = self.data.index_select(0, self.order.index_select(0, self.cursor + self.rows))
        self.cursor.add_(self.step.batch_size)
        return x

    def side_stream_step(self, x: torch.Tensor) -> torch.Tensor:
        with self.step.graphs.on_side_stream(self._stream):
            loss = self.step.train_on(x)
            self.cursor.add_(self.step.batch_size)
        return loss

    def _body(self) -> torch.Tensor:
        """What the graph does: the next minibatch through `train_on`, and the non-finite flag."""
        loss = self.step.train_on(self._draw())
        self.nonfinite.logical_or_(~torch.isfinite(loss))
        return loss

    def capture(self) -> None:
        self.step.optimizer.zero_grad()   # the gradients are allocated by the captured backward
        self.graph = self.step.graphs.capture(self._body, self._stream, self.step.generator, self.data.device)
        # the captured gradients' memory stays referenced while the graph lives
        self._grads = [p.grad for p in self.step.model.parameters()]

    def replay(self) -> torch.Tensor:
        if self.graph is None:
            raise RuntimeError("replay before capture")
        return self.graph.replay()

    def finite(self) -> bool:
        return not bool(self.nonfinite)

    def release(self) -> None:
        if self.graph is not None:
            self.graph.reset()
        self.graph, self._grads, self._images = None, None, None
