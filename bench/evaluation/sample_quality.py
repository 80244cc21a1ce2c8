"""Sample-quality metrics beside FID, on the same features and samples (docs/metrics.md#fid).

- KID: torchmetrics' polynomial-kernel MMD^2 (`torchmetrics.image.kid.poly_mmd`, unbiased,
  k(x, y) = (x.y / d + 1)^3) with torchmetrics' subset scheme: `KID_SUBSETS` random subsets of
  `KID_SUBSET_SIZE` real and as many generated features (fewer when a set is smaller), mean and
  (biased) std over subsets; the subsets come from a seeded torch generator. Lower is better.
- PRDC: precision, recall, density, coverage of Naeem et al. (2020), `prdc.compute_prdc` (PyPI
  prdc 0.2) with `PRDC_NEAREST_K` neighbours. Higher is better.
- Bootstrap confidence intervals (`fid_ci`, `kid_ci`): both feature sets resampled with
  replacement `BOOTSTRAP_REPS` times (numpy generator seeded by the cell's seed), the 95% percentile
  interval re-centred on the point estimate (`centred_interval`): resampling duplicates points, and
  duplicates inflate FID (the replicates sat above the estimate, which fell at a median 0.38 of the
  plain percentile interval on the Table-1 records); moving the interval by the replicates' median
  minus the estimate keeps its width and puts the estimate at its median (harness 0.8.0; the
  record's `fid_info.bootstrap_centring`). FID replicates take tr sqrt(S1 S2) from symmetric eigendecompositions (the same
  quantity as pytorch-fid's sqrtm, ~100x cheaper). Run on one BLAS thread, like the cell's torch. KID replicates are the unbiased MMD^2 of the whole resampled
  sets, with pairs of two copies of the same point left out (keeping them would add each point's
  self-similarity k(x, x) and bias the replicates upward): the kernel matrices are torchmetrics'
  `poly_kernel`, computed once in blocks, and each replicate is a weighting of them by its resample
  counts. Its sampling variance is that of the subset KID up to the subsets' Monte-Carlo noise.
- Forgetting / BWT of every matrix: bench/metrics/continual.py (those of a higher-is-better
  matrix are taken on -M, so positive forgetting and negative BWT still mean worse).
"""
from __future__ import annotations

import contextlib
import io

import joblib
import numpy as np
import torch
from prdc import compute_prdc
from threadpoolctl import threadpool_limits
from torchmetrics.image.kid import poly_kernel, poly_mmd

# torchmetrics' subset size and degree; 10 subsets instead of its 100 and its float32: KID is
# computed 30 times per 5-task cell (each task and overall, after each task), and 100 float64
# subsets took 4.8 s a call at the quick profile's sizes (2,500 real, 1,000 generated, 128
# features), 10 float32 ones 0.19 s. The subsets' spread is `kid_std`; the interval is the bootstrap's.
KID_SUBSETS = 10
KID_SUBSET_SIZE = 1000
KID_DEGREE = 3
KID_DTYPE = torch.float32
PRDC_NEAREST_K = 5       # Naeem et al.'s default
BOOTSTRAP_REPS = 200
BOOTSTRAP_LEVEL = 0.95

HIGHER_IS_BETTER = ("precision", "recall", "density", "coverage")


def settings() -> dict:
    """What the sample-quality numbers are computed with (part of the record's `fid_info`)."""
    return {"frechet_dtype": "float64",
            "kid": {"implementation": "torchmetrics.image.kid.poly_mmd", "subsets": KID_SUBSETS,
                    "subset_size": KID_SUBSET_SIZE, "degree": KID_DEGREE, "gamma": "1/dim", "coef": 1.0,
                    "dtype": str(KID_DTYPE).replace("torch.", "")},
            "prdc": {"implementation": "prdc 0.2 compute_prdc", "nearest_k": PRDC_NEAREST_K},
            "bootstrap": {"reps": BOOTSTRAP_REPS, "level": BOOTSTRAP_LEVEL, "interval": "percentile",
                          "resampled": "generated and real features, with replacement"},
            # informational (the width, the only part reports show, is the percentile interval's)
            "bootstrap_centring": CENTRING}


def _tensor(x) -> torch.Tensor:
    return torch.as_tensor(np.asarray(x)).to(KID_DTYPE)


def kid(real, fake, generator: torch.Generator, subsets: int = KID_SUBSETS,
        subset_size: int = KID_SUBSET_SIZE) -> tuple[float, float, int]:
    """(mean, std over subsets, subset size used): torchmetrics' KernelInceptionDistance.compute on
    feature arrays, with the subsets drawn from `generator` instead of the global torch RNG."""
    real, fake = _tensor(real), _tensor(fake)
    m = min(subset_size, len(real), len(fake))
    if m < 2:
        raise ValueError("KID needs at least 2 real and 2 generated features")
    scores = []
    for _ in range(subsets):
        f_real = real[torch.randperm(len(real), generator=generator)[:m]]
        f_fake = fake[torch.randperm(len(fake), generator=generator)[:m]]
        scores.append(poly_mmd(f_real, f_fake, KID_DEGREE))
    scores = torch.stack(scores)
    return float(scores.mean()), float(scores.std(unbiased=False)), m


def prdc(real, fake, nearest_k: int = PRDC_NEAREST_K) -> dict[str, float]:
    """prdc.compute_prdc (its 'Num real/fake' print swallowed), as plain floats. Its distances run
    on joblib's sequential backend: prdc asks scikit-learn for 8 threads, which on one worker's
    core made a quick-profile call 10x slower (0.32 s against 0.03 s)."""
    with contextlib.redirect_stdout(io.StringIO()), joblib.parallel_backend("sequential"):
        values = compute_prdc(np.asarray(real, dtype=np.float32), np.asarray(fake, dtype=np.float32),
                              nearest_k)
    return {k: float(v) for k, v in values.items()}


# ---- bootstrap ---------------------------------------------------------------------------------

def resample_counts(n: int, reps: int, rng: np.random.Generator) -> np.ndarray:
    """[reps, n]: how often each of n points is drawn in each resample of size n with replacement."""
    return rng.multinomial(n, np.full(n, 1.0 / n), size=reps)


def percentile_interval(values, level: float = BOOTSTRAP_LEVEL) -> list[float]:
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(np.asarray(values, dtype=float), [tail, 100 - tail])
    return [float(low), float(high)]


CENTRING = "percentile interval moved by (median of the replicates - estimate)"


def centred_interval(values, estimate: float, level: float = BOOTSTRAP_LEVEL) -> list[float]:
    """The percentile interval of the replicates, shifted by their median bias so that the point
    estimate is its median: the same width, no resampling inflation."""
    values = np.asarray(values, dtype=float)
    low, high = percentile_interval(values, level)
    bias = float(np.median(values)) - float(estimate)
    return [low - bias, high - bias]


def _weighted_stats(x: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance (ddof 1) of the resample that holds row i of x w[i] times."""
    n = w.sum()
    mu = w @ x / n
    centred = x - mu
    return mu, (centred.T * w) @ centred / (n - 1)


def frechet_eig(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]) -> float:
    """||mu1 - mu2||^2 + tr(S1) + tr(S2) - 2 tr sqrt(S1 S2), the trace as sum sqrt(eig(R S2 R)) with
    R = S1^(1/2) (symmetric eigendecompositions: S1 S2 and R S2 R have the same eigenvalues, >= 0
    up to rounding, clipped)."""
    vals, vecs = np.linalg.eigh(a[1])
    root = (vecs * np.sqrt(vals.clip(min=0))) @ vecs.T
    eig = np.linalg.eigvalsh(root @ b[1] @ root).clip(min=0)
    return float(((a[0] - b[0]) ** 2).sum() + np.trace(a[1]) + np.trace(b[1]) - 2 * np.sqrt(eig).sum())


def fid_replicates(real, fake, real_counts: np.ndarray, fake_counts: np.ndarray) -> np.ndarray:
    real, fake = np.asarray(real, dtype=np.float64), np.asarray(fake, dtype=np.float64)
    return np.array([frechet_eig(_weighted_stats(real, wr), _weighted_stats(fake, wf))
                     for wr, wf in zip(real_counts, fake_counts)])


def _quadratic_forms(x: torch.Tensor, y: torch.Tensor, wx: torch.Tensor, wy: torch.Tensor,
                     block: int = 2048) -> torch.Tensor:
    """[reps]: wx[r]^T K(x, y) wy[r] with K torchmetrics' poly_kernel, built block by block."""
    total = torch.zeros(len(wx), dtype=KID_DTYPE)
    for i in range(0, len(x), block):
        k = poly_kernel(x[i:i + block], y, KID_DEGREE, 1.0 / x.shape[1])
        total += ((k @ wy.T) * wx[:, i:i + block].T).sum(0)
    return total


def kid_replicates(real, fake, real_counts: np.ndarray, fake_counts: np.ndarray) -> np.ndarray:
    """Unbiased MMD^2 of each resample (pairs of copies of one point left out), batched over
    replicates: sum_{a != b} k over a resample with counts w is w^T K w - sum_i w_i^2 k(x_i, x_i)."""
    x, y = _tensor(real), _tensor(fake)
    wx, wy = torch.as_tensor(real_counts).to(KID_DTYPE), torch.as_tensor(fake_counts).to(KID_DTYPE)
    gamma = 1.0 / x.shape[1]
    diag_x = (((x * x).sum(1) * gamma + 1) ** KID_DEGREE)
    diag_y = (((y * y).sum(1) * gamma + 1) ** KID_DEGREE)
    pairs_x = len(x) ** 2 - (wx ** 2).sum(1)
    pairs_y = len(y) ** 2 - (wy ** 2).sum(1)
    xx = (_quadratic_forms(x, x, wx, wx) - (wx ** 2) @ diag_x) / pairs_x
    yy = (_quadratic_forms(y, y, wy, wy) - (wy ** 2) @ diag_y) / pairs_y
    xy = _quadratic_forms(x, y, wx, wy) / (len(x) * len(y))
    return (xx + yy - 2 * xy).numpy()


def bootstrap_intervals(real, fake, seed: int, estimates: dict[str, float], reps: int = BOOTSTRAP_REPS,
                        level: float = BOOTSTRAP_LEVEL) -> dict[str, list[float]]:
    """fid_ci and kid_ci: intervals over the same `reps` resamples of both sets, each centred on
    its point estimate (`estimates`: 'fid' and 'kid', as recorded)."""
    rng = np.random.default_rng(seed)
    real_counts, fake_counts = resample_counts(len(real), reps, rng), resample_counts(len(fake), reps, rng)
    with threadpool_limits(limits=1):
        return {"fid_ci": centred_interval(fid_replicates(real, fake, real_counts, fake_counts), estimates["fid"], level),
                "kid_ci": centred_interval(kid_replicates(real, fake, real_counts, fake_counts), estimates["kid"], level)}
