"""PNG grids of a model's samples and reconstructions, saved next to a cell's record."""
from __future__ import annotations

from pathlib import Path

import torch
from torchvision.utils import save_image

from methods.models.contract import eval_mode

GRID_SAMPLES = 64
GRID_RECONSTRUCTIONS = 8   # test images per task


@torch.no_grad()
def save_grids(model, test_sets: list[torch.Tensor], folder: Path, segment: int,
               generator: torch.Generator) -> list[str]:
    """samples-after-task{t}.png (8x8 samples) and reconstructions-after-task{t}.png (rows of
    originals and reconstructions, 8 per task). Returns the file names written."""
    folder.mkdir(parents=True, exist_ok=True)
    shape = tuple(test_sets[0].shape[1:])
    with eval_mode(model):
        samples = model.sample(GRID_SAMPLES, generator).view(-1, *shape)
        originals = torch.cat([x[:GRID_RECONSTRUCTIONS] for x in test_sets])
        recon = model.reconstruct(originals).view(-1, *shape)
    pairs = torch.stack([originals.view(len(test_sets), -1, *shape),
                         recon.view(len(test_sets), -1, *shape)], 1).flatten(0, 2)
    names = [f"samples-after-task{segment + 1}.png", f"reconstructions-after-task{segment + 1}.png"]
    save_image(samples, folder / names[0], nrow=8, padding=1, pad_value=0.5)
    save_image(pairs, folder / names[1], nrow=GRID_RECONSTRUCTIONS, padding=1, pad_value=0.5)
    return names
