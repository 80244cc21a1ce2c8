"""A cell's final model saved beside its record (`bench.run --keep-models`; loaded by bench/models.py).

Only weights and plain settings are written, so the file loads with `torch.load(weights_only=True)`.
"""
from __future__ import annotations

import json
from pathlib import Path

MODEL_FORMAT = 1


class ModelKeeper:
    """`on_trained(model, stream)` for a cell: its final model saved where `model_path` says."""

    def __init__(self, path: Path, cell):
        self.path, self.cell = Path(path), cell

    def __call__(self, model, stream) -> None:
        import torch

        from streams.files import atomic_path

        cell = self.cell
        payload = {"format": MODEL_FORMAT, "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
                   "components": int(getattr(model, "num_components", 1)),
                   "method": cell.method, "label": cell.label_method, "stream": cell.stream, "seed": int(cell.seed),
                   # the settings as JSON text: weights_only loads plain containers only
                   "method_config": json.dumps(cell.method_config, default=str),
                   "profile": json.dumps(cell.profile.to_dict(), default=str),
                   "image_shape": [int(x) for x in stream.tasks[0].test_images.shape[1:]]}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(self.path, suffix=".pt") as tmp:
            torch.save(payload, tmp)
