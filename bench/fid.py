"""FID (DESIGN section 4): Frechet distance between Gaussian fits of generated and real features.

The distance is pytorch-fid's `calculate_frechet_distance`, on float64 statistics. Samples are
the model's unconditional samples (binarized like the data: a Bernoulli draw of the decoder's
pixel probabilities), scored against each task's binarized test set ("FID[t, j]" = samples after
segment t vs task j's test images: how much of task j the model's whole distribution covers) and
against the union of all test sets. Real-set statistics are computed once and cached on disk,
keyed by stream, test subset and extractor (weights hash).
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import torch
from pytorch_fid.fid_score import calculate_frechet_distance

from bench.features import FeatureExtractor
from streams.stream import binarize


def gaussian_stats(features: torch.Tensor | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    f = np.asarray(features, dtype=np.float64)
    return f.mean(0), np.cov(f, rowvar=False)


def frechet_distance(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]) -> float:
    return float(calculate_frechet_distance(a[0], a[1], b[0], b[1]))


def require_enough(n: int, dim: int, what: str) -> None:
    if n < dim:
        raise ValueError(f"FID needs at least as many {what} as feature dimensions: {n} < {dim} "
                         "(raise fid_samples / use more test images, or another extractor)")


def check_feasible(extractor: FeatureExtractor, n_samples: int, test_sizes: list[int]) -> None:
    """Raise (before any training) if a grid's FID settings cannot give a full-rank estimate."""
    require_enough(n_samples, extractor.dim, "generated samples")
    require_enough(min(test_sizes), extractor.dim, "test images per task")


class FIDEvaluator:
    """FID[t, j] rows and the final FID for one cell; real statistics from the disk cache."""

    def __init__(self, extractor: FeatureExtractor, stream_key: str, test_sets: list[torch.Tensor],
                 n_samples: int, cache_dir: Path):
        self.extractor, self.n_samples = extractor, n_samples
        check_feasible(extractor, n_samples, [len(x) for x in test_sets])
        self.image_shape = tuple(test_sets[0].shape[1:])
        cached = cached_real_stats(extractor, stream_key, test_sets, cache_dir)
        self.task_stats, self.all_stats = cached[:-1], cached[-1]

    def samples(self, model, generator: torch.Generator) -> torch.Tensor:
        probabilities = model.sample(self.n_samples, generator).view(self.n_samples, *self.image_shape)
        return binarize(probabilities, generator)

    def row(self, model, generator: torch.Generator) -> tuple[list[float], float]:
        stats = gaussian_stats(self.extractor(self.samples(model, generator)))
        return [frechet_distance(stats, s) for s in self.task_stats], frechet_distance(stats, self.all_stats)

    @property
    def info(self) -> dict:
        return {**self.extractor.info, "samples": self.n_samples,
                "protocol": "unconditional samples vs each task's binarized test set"}


def cached_real_stats(extractor: FeatureExtractor, stream_key: str, test_sets: list[torch.Tensor],
                      cache_dir: Path) -> list[tuple[np.ndarray, np.ndarray]]:
    """Statistics of each test set and of their union, computed once per (stream, sets, extractor)."""
    key_blob = json.dumps({"stream": stream_key, "sizes": [len(x) for x in test_sets],
                           "extractor": extractor.info}, sort_keys=True)
    key = hashlib.sha256(key_blob.encode()).hexdigest()[:16]
    path = Path(cache_dir) / "fid-stats" / f"{stream_key}-{extractor.name}-{key}.npz"
    if path.exists():
        with np.load(path) as f:
            return [(f[f"mu{i}"], f[f"sigma{i}"]) for i in range(len(test_sets) + 1)]
    features = [extractor(x).double().numpy() for x in test_sets]
    stats = [gaussian_stats(f) for f in features] + [gaussian_stats(np.concatenate(features))]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.npz")
    np.savez(tmp, **{f"mu{i}": m for i, (m, _) in enumerate(stats)},
             **{f"sigma{i}": s for i, (_, s) in enumerate(stats)})
    os.replace(tmp, path)
    return stats
