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
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from pytorch_fid.fid_score import calculate_frechet_distance
from scipy.linalg import LinAlgWarning

from bench.evaluation import sample_quality as sq
from bench.evaluation.context import EvaluationContext, recorded_summaries
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


def require_enough(n: int, dim: int, what: str, remedy: str) -> None:
    if n < dim:
        raise ValueError(f"FID needs at least as many {what} as feature dimensions: {n} < {dim} "
                         f"({remedy}, or --fid-features none)")


def check_feasible(extractor: FeatureExtractor, n_samples: int, test_sizes: list[int]) -> None:
    """Raise (before any training) if a grid's FID settings cannot give a full-rank estimate."""
    require_enough(n_samples, extractor.dim, "generated samples", f"--set fid_samples={extractor.dim} or more")
    require_enough(min(test_sizes), extractor.dim, "test images per task",
                   f"--set eval_test_per_task={extractor.dim} or more, if the stream's tasks have that many "
                   "test images")


class FIDEvaluator:
    """FID[t, j] rows and the final FID for one cell; real statistics and features from the disk
    cache. Each row also scores KID and PRDC on the same features (kept here: `summary`)."""

    def __init__(self, extractor: FeatureExtractor, stream_key: str, test_sets: list[torch.Tensor],
                 n_samples: int, cache_dir: Path):
        self.extractor, self.n_samples = extractor, n_samples
        check_feasible(extractor, n_samples, [len(x) for x in test_sets])
        self.image_shape = tuple(test_sets[0].shape[1:])
        features = cached_real_features(extractor, stream_key, test_sets, cache_dir)
        self.real_features = features + [np.concatenate(features)]   # each task's, then all
        cached = cached_real_stats(extractor, stream_key, test_sets, cache_dir, features=features)
        self.task_stats, self.all_stats = cached[:-1], cached[-1]
        self.offset_used = False   # any distance of this cell needed pytorch-fid's eps offset
        self.matrices = {name: [] for name in ("kid", "kid_std", *sq.HIGHER_IS_BETTER)}
        self.seconds = {"fid": 0.0, "kid": 0.0, "prdc": 0.0, "bootstrap": 0.0}
        self.kid_generator, self.kid_seed, self.kid_subset_sizes = None, None, None
        self.last_fake = None

    def distance(self, a, b) -> float:
        value, offset = frechet_distance_and_offset(a, b)
        self.offset_used |= offset
        return value

    def samples(self, model, generator: torch.Generator) -> torch.Tensor:
        probabilities = model.sample(self.n_samples, generator).view(self.n_samples, *self.image_shape)
        return binarize(probabilities, generator)

    def row(self, model, generator: torch.Generator) -> tuple[list[float], float]:
        """FID against each task and all of them; KID and PRDC rows (the last entry of each: all
        tasks) are appended to `matrices`. KID subsets come from a CPU generator seeded with
        `generator`'s seed (the cell's), so `generator`'s own draws are unchanged."""
        fake = self.extractor(self.samples(model, generator)).double().numpy()
        self.last_fake = fake
        start = time.perf_counter()
        stats = gaussian_stats(fake)
        fids = [self.distance(stats, s) for s in self.task_stats + [self.all_stats]]
        self.seconds["fid"] += time.perf_counter() - start
        if self.kid_generator is None:
            self.kid_seed = generator.initial_seed()
            self.kid_generator = torch.Generator().manual_seed(self.kid_seed)
        start = time.perf_counter()
        kids = [sq.kid(real, fake, self.kid_generator) for real in self.real_features]
        self.kid_subset_sizes = [m for _, _, m in kids]
        self.matrices["kid"].append([k for k, _, _ in kids])
        self.matrices["kid_std"].append([s for _, s, _ in kids])
        self.seconds["kid"] += time.perf_counter() - start
        start = time.perf_counter()
        scores = [sq.prdc(real, fake) for real in self.real_features]
        for name in sq.HIGHER_IS_BETTER:
            self.matrices[name].append([s[name] for s in scores])
        self.seconds["prdc"] += time.perf_counter() - start
        self.last_fid = fids[-1]   # the overall FID after the last segment: its interval is centred on it
        return fids[:-1], fids[-1]

    def summary(self, seed: int, test_binarization_seed: int | None = None) -> dict:
        """The record's sample-quality fields beyond FID (after the last row): for M in kid,
        precision, recall, density, coverage: M (overall, last segment), M_matrix [T, T] (segment
        x task), forgetting_M, bwt_M; kid_std (std over KID subsets); fid_ci, kid_ci (bootstrap of
        the overall values, seeded by `seed`); sample_quality_seconds; and `fid_info`."""
        out = {}
        for name in ("kid", *sq.HIGHER_IS_BETTER):
            rows = self.matrices[name]
            out[name] = rows[-1][-1]
            out[f"{name}_matrix"] = [r[:-1] for r in rows]
            out.update(recorded_summaries(name, out[f"{name}_matrix"]))
        out["kid_std"] = self.matrices["kid_std"][-1][-1]
        start = time.perf_counter()
        out.update(sq.bootstrap_intervals(self.real_features[-1], self.last_fake, seed,
                                          {"fid": self.last_fid, "kid": out["kid"]}))
        self.seconds["bootstrap"] = time.perf_counter() - start
        out["sample_quality_seconds"] = dict(self.seconds)
        out["fid_info"] = self.full_info(seed, test_binarization_seed)
        return out

    @property
    def info(self) -> dict:
        return {**self.extractor.info, "samples": self.n_samples,
                "protocol": "unconditional samples vs each task's binarized test set"}

    def full_info(self, bootstrap_seed: int | None = None, test_binarization_seed: int | None = None) -> dict:
        """`info` and what every sample-quality number was computed with."""
        settings = sq.settings()
        settings["kid"].update(seed=self.kid_seed, subset_size_used=self.kid_subset_sizes)
        settings["bootstrap"]["seed"] = bootstrap_seed
        return {**self.info, "real_per_task": [len(f) for f in self.real_features[:-1]],
                "real_overall": len(self.real_features[-1]), **settings,
                "test_binarization_seed": test_binarization_seed}


class SampleQualityEvaluation:
    """The sample-quality family's evaluation (bench/metrics/fid.py, kid.py, prdc.py): FID[t, j], KID
    and PRDC rows after every task segment on one set of samples; the record's fields at the end."""

    def __init__(self, context: EvaluationContext):
        from bench.evaluation.caches import cache_dir, cached_extractor

        c, profile = context, context.profile
        extractor = cached_extractor(profile.fid_features, c.cell.stream, c.data_dir).on(c.device)
        self.context = context
        self.evaluator = FIDEvaluator(extractor, f"{c.cell.stream}-{c.stream.spec.test_binarization_seed}",
                                      c.test_sets, profile.fid_samples, cache_dir(c.data_dir))
        self.matrix, self.final, self.seconds = [], None, 0.0

    def after_segment(self, model, generator: torch.Generator) -> None:
        start = time.perf_counter()
        row, self.final = self.evaluator.row(model, generator)
        self.matrix.append(row)
        self.seconds += time.perf_counter() - start

    # what a checkpoint keeps of the evaluator: its rows and generators (the real features and
    # statistics come from the disk cache again)
    EVALUATOR_STATE = ("offset_used", "matrices", "seconds", "kid_generator", "kid_seed", "kid_subset_sizes",
                       "last_fake", "last_fid")

    def checkpoint_state(self) -> dict:
        evaluator = {k: getattr(self.evaluator, k) for k in self.EVALUATOR_STATE if hasattr(self.evaluator, k)}
        return {"matrix": self.matrix, "final": self.final, "seconds": self.seconds, "evaluator": evaluator}

    def restore_state(self, state: dict) -> None:
        self.matrix, self.final, self.seconds = state["matrix"], state["final"], state["seconds"]
        for key, value in state["evaluator"].items():
            setattr(self.evaluator, key, value)

    def fields(self) -> dict:
        c = self.context
        return {"fid": self.final, "fid_matrix": self.matrix, **recorded_summaries("fid", self.matrix),
                "fid_seconds": self.seconds, "fid_offset": self.evaluator.offset_used,
                **self.evaluator.summary(c.cell.seed, c.stream.spec.test_binarization_seed)}


def cache_path(kind: str, extractor: FeatureExtractor, stream_key: str, test_sets: list[torch.Tensor],
               cache_dir: Path) -> Path:
    content = hashlib.sha256()   # the test images themselves: a stream regenerated under its name
    for x in test_sets:          # (new files, other classes) has new real statistics
        content.update(x.detach().cpu().numpy().tobytes())
    key_blob = json.dumps({"stream": stream_key, "sizes": [len(x) for x in test_sets],
                           "images": content.hexdigest(), "extractor": extractor.info}, sort_keys=True)
    key = hashlib.sha256(key_blob.encode()).hexdigest()[:16]
    return Path(cache_dir) / kind / f"{stream_key}-{extractor.name}-{key}.npz"


def cached_arrays(path: Path, shapes: dict[str, tuple], build) -> dict[str, np.ndarray]:
    """Plain arrays named and shaped as `shapes`, read from the .npz at `path` without unpickling
    and checked against the digest stored with them, else (missing, not holding them, or changed
    since they were written: reported and rebuilt) made by `build()` and written there
    atomically. The one disk cache of real-set features and statistics."""
    if path.exists():
        try:
            with np.load(path, allow_pickle=False) as f:
                arrays = {name: f[name] for name in shapes}
                stored = bytes(f[DIGEST_KEY]) if DIGEST_KEY in f else b""
            if any(arrays[name].shape != shape for name, shape in shapes.items()):
                raise ValueError("unexpected array shapes")
            if stored != arrays_digest(arrays):
                raise ValueError("its arrays do not match the digest stored with them")
            return arrays
        except Exception as err:   # noqa: BLE001 - any unreadable or changed entry is rebuilt
            refuse_cache(path, err)
    arrays = build()
    with atomic_path(path, suffix=".npz") as tmp:
        np.savez(tmp, **arrays, **{DIGEST_KEY: np.frombuffer(arrays_digest(arrays), dtype=np.uint8)})
    return arrays


DIGEST_KEY = "sha256_of_arrays"


def arrays_digest(arrays: dict[str, np.ndarray]) -> bytes:
    """SHA-256 over the arrays' names, dtypes, shapes and bytes, in name order."""
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}:{a.dtype.str}:{a.shape}".encode())
        h.update(a.tobytes())
    return h.digest()


def cached_real_features(extractor: FeatureExtractor, stream_key: str, test_sets: list[torch.Tensor],
                         cache_dir: Path) -> list[np.ndarray]:
    """Each test set's features (float64 copies of the extractor's float32 output), extracted once
    per (stream, sets, extractor)."""
    path = cache_path("fid-features", extractor, stream_key, test_sets, cache_dir)
    shapes = {f"features{i}": (len(x), extractor.dim) for i, x in enumerate(test_sets)}
    arrays = cached_arrays(path, shapes, lambda: {name: extractor(x).numpy()
                                                  for name, x in zip(shapes, test_sets)})
    return [arrays[name].astype(np.float64) for name in shapes]


def cached_real_stats(extractor: FeatureExtractor, stream_key: str, test_sets: list[torch.Tensor],
                      cache_dir: Path, features: list[np.ndarray] | None = None
                      ) -> list[tuple[np.ndarray, np.ndarray]]:
    """Statistics of each test set and of their union, computed once per (stream, sets, extractor)
    (from `features` when given, else extracted)."""
    path = cache_path("fid-stats", extractor, stream_key, test_sets, cache_dir)
    count, dim = len(test_sets) + 1, extractor.dim
    shapes = {**{f"mu{i}": (dim,) for i in range(count)}, **{f"sigma{i}": (dim, dim) for i in range(count)}}

    def build():
        sets = features if features is not None else [extractor(x).double().numpy() for x in test_sets]
        stats = [gaussian_stats(f) for f in sets] + [gaussian_stats(np.concatenate(sets))]
        return {**{f"mu{i}": m for i, (m, _) in enumerate(stats)},
                **{f"sigma{i}": s for i, (_, s) in enumerate(stats)}}
    arrays = cached_arrays(path, shapes, build)
    return [(arrays[f"mu{i}"], arrays[f"sigma{i}"]) for i in range(count)]
