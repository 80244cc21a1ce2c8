"""FID (docs/metrics.md#fid): Frechet distance between Gaussian fits of generated and real features.

The distance is pytorch-fid's `calculate_frechet_distance`, on float64 statistics. Samples are
the model's unconditional samples (binarized like the data: a Bernoulli draw of the decoder's
pixel probabilities), scored against each task's binarized test set ("FID[t, j]" = samples after
segment t vs task j's test images: how much of task j the model's whole distribution covers) and
against the union of all test sets. Real-set statistics are computed once and cached on disk,
keyed by stream, test subset and extractor (weights hash).

A singular covariance (a dead feature unit, say) makes scipy's `sqrtm` warn on every call; the
distance then takes pytorch-fid's own fallback (eps * I added inside the square root), quietly, and
the record says so (`fid_offset`).
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
import warnings
from pathlib import Path

import numpy as np
import torch
from pytorch_fid.fid_score import calculate_frechet_distance
from scipy.linalg import LinAlgWarning

from bench.evaluation.features import FeatureExtractor, refuse_cache
from streams.files import atomic_path
from streams.stream import binarize


def gaussian_stats(features: torch.Tensor | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    f = np.asarray(features, dtype=np.float64)
    return f.mean(0), np.cov(f, rowvar=False)


OFFSET_EPS = 1e-6   # pytorch-fid's default


def _quiet_distance(mu1, sigma1, mu2, sigma2) -> tuple[float, bool]:
    """pytorch-fid's distance with its per-call noise captured: (value, whether scipy warned or
    pytorch-fid printed its own singular-product fallback)."""
    with warnings.catch_warnings(record=True) as caught, \
            contextlib.redirect_stdout(io.StringIO()) as printed:
        warnings.simplefilter("always", LinAlgWarning)
        value = float(calculate_frechet_distance(mu1, sigma1, mu2, sigma2, eps=OFFSET_EPS))
    for w in caught:   # pass on anything that is not the sqrtm warning handled here
        if not issubclass(w.category, LinAlgWarning):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    trouble = any(issubclass(w.category, LinAlgWarning) for w in caught) or bool(printed.getvalue())
    return value, trouble


def frechet_distance_and_offset(a: tuple[np.ndarray, np.ndarray],
                                b: tuple[np.ndarray, np.ndarray]) -> tuple[float, bool]:
    """(distance, offset used). If sqrtm(sigma1 @ sigma2) is singular or not finite, the value is
    pytorch-fid's fallback: sqrtm((sigma1 + eps I)(sigma2 + eps I)) with the trace terms on the
    original sigmas (computed through the library on the offset sigmas, less their 2 d eps)."""
    value, trouble = _quiet_distance(a[0], a[1], b[0], b[1])
    if not trouble and np.isfinite(value):
        return value, False
    d = np.atleast_1d(a[0]).size
    offset = OFFSET_EPS * np.eye(d)
    value, _ = _quiet_distance(a[0], a[1] + offset, b[0], b[1] + offset)
    return value - 2 * d * OFFSET_EPS, True


def frechet_distance(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]) -> float:
    return frechet_distance_and_offset(a, b)[0]


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
        self.offset_used = False   # any distance of this cell needed pytorch-fid's eps offset

    def distance(self, a, b) -> float:
        value, offset = frechet_distance_and_offset(a, b)
        self.offset_used |= offset
        return value

    def samples(self, model, generator: torch.Generator) -> torch.Tensor:
        probabilities = model.sample(self.n_samples, generator).view(self.n_samples, *self.image_shape)
        return binarize(probabilities, generator)

    def row(self, model, generator: torch.Generator) -> tuple[list[float], float]:
        stats = gaussian_stats(self.extractor(self.samples(model, generator)))
        return [self.distance(stats, s) for s in self.task_stats], self.distance(stats, self.all_stats)

    @property
    def info(self) -> dict:
        return {**self.extractor.info, "samples": self.n_samples,
                "protocol": "unconditional samples vs each task's binarized test set"}


def cached_real_stats(extractor: FeatureExtractor, stream_key: str, test_sets: list[torch.Tensor],
                      cache_dir: Path) -> list[tuple[np.ndarray, np.ndarray]]:
    """Statistics of each test set and of their union, computed once per (stream, sets, extractor).
    The cache may be shared: it is read without unpickling, and a file that does not hold the
    expected arrays is reported and rebuilt."""
    key_blob = json.dumps({"stream": stream_key, "sizes": [len(x) for x in test_sets],
                           "extractor": extractor.info}, sort_keys=True)
    key = hashlib.sha256(key_blob.encode()).hexdigest()[:16]
    path = Path(cache_dir) / "fid-stats" / f"{stream_key}-{extractor.name}-{key}.npz"
    if path.exists():
        try:
            with np.load(path, allow_pickle=False) as f:
                stats = [(f[f"mu{i}"], f[f"sigma{i}"]) for i in range(len(test_sets) + 1)]
            if any(m.shape != (extractor.dim,) or s.shape != (extractor.dim,) * 2 for m, s in stats):
                raise ValueError("unexpected array shapes")
            return stats
        except Exception as err:   # noqa: BLE001 - any unreadable entry is rebuilt
            refuse_cache(path, err)
    features = [extractor(x).double().numpy() for x in test_sets]
    stats = [gaussian_stats(f) for f in features] + [gaussian_stats(np.concatenate(features))]
    with atomic_path(path, suffix=".npz") as tmp:
        np.savez(tmp, **{f"mu{i}": m for i, (m, _) in enumerate(stats)},
                 **{f"sigma{i}": s for i, (_, s) in enumerate(stats)})
    return stats
