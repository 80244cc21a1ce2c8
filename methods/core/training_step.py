"""How a training step runs: one name, `training_step`, for the setting everywhere (`bench.run
--training-step`, `GenerativeStrategy(training_step=)`, the cell's and the executors' argument, the
record's field). The steps themselves are methods/core/static_step.py's; this is their list and how
a requested one resolves. Pure Python: the command line reads TRAINING_STEPS without torch.

- "eager": Avalanche's per-step loop, every plugin callback called;
- "fused": the fused step (static_step.py) run as a plain function;
- "graph": "fused" captured as a CUDA graph and replayed (CUDA only; "fused" elsewhere);
- "compiled": "fused" with the model's loss through `torch.compile`;
- "auto": "graph" on CUDA, "fused" elsewhere; "eager" for methods with per-step callbacks.
"""
from __future__ import annotations

TRAINING_STEPS = ("auto", "eager", "fused", "graph", "compiled")


def check_training_step(value: str) -> str:
    if value not in TRAINING_STEPS:
        raise ValueError(f"unknown training step '{value}'; valid: {', '.join(TRAINING_STEPS)}")
    return value


def resolve_training_step(requested: str, device, per_step_callbacks: bool) -> str:
    """The step a strategy runs: `requested`, or eager where plugins need every step's callbacks,
    and graph capture only on CUDA (elsewhere its step runs fused). `device`: a torch.device or
    its type ('cuda', 'cpu')."""
    check_training_step(requested)
    cuda = getattr(device, "type", device) == "cuda"
    if per_step_callbacks or requested == "eager":
        return "eager"
    if requested == "auto":
        return "graph" if cuda else "fused"
    if requested == "graph" and not cuda:
        return "fused"
    return requested
