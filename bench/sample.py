"""`python -m bench.sample RECORD --n 64 --out grid.png`: samples from a finished cell's kept model.

RECORD is a record JSON of a results directory whose cells ran with `bench.run --keep-models`;
the model is rebuilt from DIR/models/ (bench/models.py) and sampled without training: `--n`
unconditional samples (pixel probabilities, as the report's grids), or `--component K`'s alone
for a mixture (components counted from 0). `--binary` draws black-and-white images as the
evaluator scores them. Exit 2 with one line on bad input (no record, no kept model, no such
component).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.sample", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("record", help="a record JSON (DIR/records/<name>.json) of a cell run with --keep-models")
    p.add_argument("--n", type=int, default=64, help="samples (default 64, drawn as an 8-wide grid)")
    p.add_argument("--out", default="samples.png", help="the PNG to write (default samples.png)")
    p.add_argument("--component", type=int, default=None, metavar="K",
                   help="sample mixture component K only (0-based; default: the mixture, with its weights)")
    p.add_argument("--seed", type=int, default=0, help="the sampling generator's seed (default 0)")
    p.add_argument("--binary", action="store_true", help="binarize the samples (Bernoulli draws)")
    return p


def component_samples(model, k: int, n: int, generator):
    """n samples of component k alone: z ~ N(0, I) decoded by that component (models with
    `decode(z, c)` and `latent`, as the harness's VAE mixtures)."""
    import torch

    components = getattr(model, "num_components", 1)
    if not 0 <= k < components:
        raise ValueError(f"--component {k}: this model has {components} component(s) (0..{components - 1})")
    if not (hasattr(model, "decode") and hasattr(model, "latent")):
        raise ValueError(f"--component: {type(model).__name__} has no per-component decoder")
    z = torch.randn(n, model.latent, generator=generator)
    with torch.no_grad():
        return torch.sigmoid(model.decode(z, k))


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    record_path = Path(args.record)
    if not record_path.is_file():
        print(f"error: no record {record_path} (give DIR/records/<name>.json)", file=sys.stderr)
        return 2
    if args.n < 1:
        print("error: --n must be at least 1", file=sys.stderr)
        return 2
    import torch
    from torchvision.utils import save_image

    from bench.models import ModelFileError, load_model
    from streams.stream import binarize

    torch.set_num_threads(1)
    try:
        model = load_model(record_path)
        generator = torch.Generator().manual_seed(args.seed)
        if args.component is None:
            pixels = model.sample(args.n, generator)
        else:
            pixels = component_samples(model, args.component, args.n, generator)
    except (ModelFileError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.binary:
        pixels = binarize(pixels, generator)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    save_image(pixels.view(args.n, *model.image_shape), args.out, nrow=8, padding=1, pad_value=0.5)
    print(f"wrote {args.out} ({args.n} samples{'' if args.component is None else f' of component {args.component}'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
