"""KID, PRDC and bootstrap intervals (bench.evaluation.sample_quality) against hand computations,
their coverage, and the record fields of a cell run with FID."""
import itertools
import math
import time

import numpy as np
import pytest
import torch
from torchmetrics.image.kid import maximum_mean_discrepancy, poly_kernel

from bench.evaluation import sample_quality as sq
from bench.evaluation.context import recorded_summaries
from bench.evaluation.fid import frechet_distance, gaussian_stats


def poly_k(a, b):
    return (float(np.dot(a, b)) / len(a) + 1.0) ** 3


def hand_mmd2(x, y):
    """Unbiased MMD^2 with k(a, b) = (a.b / d + 1)^3, by loops."""
    n, m = len(x), len(y)
    xx = sum(poly_k(x[i], x[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    yy = sum(poly_k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(poly_k(a, b) for a in x for b in y) / (n * m)
    return xx + yy - 2 * xy


def hand_prdc(real, fake, k):
    """Naeem et al.'s definitions, by loops (radius: distance to the k-th neighbour, self excluded)."""
    def radii(x):
        return [sorted(np.linalg.norm(x - p, axis=1))[k] for p in x]
    r_real, r_fake = radii(real), radii(fake)
    d = np.linalg.norm(real[:, None] - fake[None], axis=2)   # [real, fake]
    precision = np.mean([any(d[i, j] < r_real[i] for i in range(len(real))) for j in range(len(fake))])
    recall = np.mean([any(d[i, j] < r_fake[j] for j in range(len(fake))) for i in range(len(real))])
    density = np.mean([sum(d[i, j] < r_real[i] for i in range(len(real))) for j in range(len(fake))]) / k
    coverage = np.mean([d[i].min() < r_real[i] for i in range(len(real))])
    return dict(precision=precision, recall=recall, density=density, coverage=coverage)


# ---- KID ----------------------------------------------------------------------------------------

def test_kid_equals_the_hand_computed_mmd_when_every_subset_is_the_whole_set():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(6, 3)), rng.normal(4.0, 1.0, size=(6, 3))   # far apart
    mean, std, m = sq.kid(x, y, torch.Generator().manual_seed(0), subsets=7, subset_size=6)
    expected = hand_mmd2(x, y)
    assert m == 6 and expected > 100
    assert mean == pytest.approx(expected, rel=1e-6) and std < 1e-6 * expected   # float32, as torchmetrics


def test_kid_of_identical_sets_and_of_one_distribution_is_about_zero_and_seeded():
    rng = np.random.default_rng(1)
    x, x2 = rng.normal(size=(400, 8)), rng.normal(size=(400, 8))
    far = sq.kid(x, x + 3.0, torch.Generator().manual_seed(0), subsets=50, subset_size=100)[0]
    assert far > 1.0
    # identical sets, whole-set subsets: -2 (mean k(x, x) - mean k(x, y)) / (n - 1), by hand
    small = x[:40]
    identical = sq.kid(small, small, torch.Generator().manual_seed(0), subsets=3, subset_size=40)[0]
    assert identical == pytest.approx(hand_mmd2(small, small), rel=1e-5) and abs(identical) < 1e-2 * far
    # two samples of one distribution: zero within the spread over subsets
    same, same_std, m = sq.kid(x, x2, torch.Generator().manual_seed(0), subsets=50, subset_size=100)
    assert m == 100 and abs(same) < same_std and abs(same) < 1e-2 * far
    assert sq.kid(x, x2, torch.Generator().manual_seed(0), subsets=50, subset_size=100)[0] == same


def test_kid_subset_size_is_capped_by_the_smaller_set():
    rng = np.random.default_rng(2)
    assert sq.kid(rng.normal(size=(30, 4)), rng.normal(size=(50, 4)), torch.Generator())[2] == 30


# ---- PRDC ---------------------------------------------------------------------------------------

def test_prdc_of_identical_sets_and_of_far_apart_sets():
    x = np.random.default_rng(3).normal(size=(40, 5))
    same = sq.prdc(x, x, nearest_k=3)
    assert same["precision"] == same["recall"] == same["coverage"] == 1.0
    assert same["density"] == pytest.approx(hand_prdc(x, x, 3)["density"])
    far = sq.prdc(x, x + 100.0, nearest_k=3)
    assert far == {"precision": 0.0, "recall": 0.0, "density": 0.0, "coverage": 0.0}


def test_prdc_matches_the_definitions_on_overlapping_sets():
    rng = np.random.default_rng(4)
    real, fake = rng.normal(size=(30, 4)), rng.normal(0.7, 1.3, size=(25, 4))
    got, expected = sq.prdc(real, fake, nearest_k=4), hand_prdc(real, fake, 4)
    assert 0 < got["precision"] < 1 and 0 < got["coverage"] < 1
    for name in expected:
        assert got[name] == pytest.approx(expected[name], abs=1e-6), name


def test_forgetting_and_bwt_of_a_higher_is_better_matrix_are_positive_and_negative_when_worse():
    matrix = [[0.9, 0.1], [0.5, 0.8]]   # task 0 dropped from 0.9 to 0.5
    higher = recorded_summaries("precision", matrix)   # the registry: precision is higher-is-better
    assert higher == {"forgetting_precision": pytest.approx(0.4), "bwt_precision": pytest.approx(-0.4)}
    lower = recorded_summaries("kid", [[0.1, 0.0], [0.3, 0.2]])   # KID rose: worse
    assert lower == {"forgetting_kid": pytest.approx(0.2), "bwt_kid": pytest.approx(-0.2)}


# ---- bootstrap ----------------------------------------------------------------------------------

def test_fid_replicates_are_the_frechet_distance_of_the_resample():
    rng = np.random.default_rng(5)
    real, fake = rng.normal(size=(300, 4)), rng.normal(0.5, 1.5, size=(200, 4))
    wr, wf = sq.resample_counts(300, 3, rng), sq.resample_counts(200, 3, rng)
    values = sq.fid_replicates(real, fake, wr, wf)
    for r in range(3):
        resampled = np.repeat(real, wr[r], axis=0), np.repeat(fake, wf[r], axis=0)
        expected = frechet_distance(gaussian_stats(resampled[0]), gaussian_stats(resampled[1]))
        assert values[r] == pytest.approx(expected, rel=1e-9)


def test_kid_replicates_are_the_unbiased_mmd_of_the_resample_without_copy_pairs():
    rng = np.random.default_rng(6)
    x, y = rng.normal(size=(7, 3)), rng.normal(1.0, 1.0, size=(7, 3))
    ones = np.ones((1, 7), dtype=int)   # the identity resample: torchmetrics' own estimator
    tx, ty = torch.tensor(x), torch.tensor(y)
    k = [poly_kernel(a, b) for a, b in ((tx, tx), (tx, ty), (ty, ty))]
    assert sq.kid_replicates(x, y, ones, ones)[0] == pytest.approx(float(maximum_mean_discrepancy(*k)), rel=1e-5)
    wx, wy = np.array([[2, 0, 1, 1, 0, 3, 0]]), np.array([[1, 1, 1, 0, 2, 0, 2]])
    px, py = [i for i in range(7) for _ in range(wx[0, i])], [j for j in range(7) for _ in range(wy[0, j])]
    xx = [poly_k(x[a], x[b]) for a, b in itertools.product(px, px) if a != b]
    yy = [poly_k(y[a], y[b]) for a, b in itertools.product(py, py) if a != b]
    xy = [poly_k(x[a], y[b]) for a, b in itertools.product(px, py)]
    expected = np.mean(xx) + np.mean(yy) - 2 * np.mean(xy)
    assert sq.kid_replicates(x, y, wx, wy)[0] == pytest.approx(expected, rel=1e-5)


def binomial_band(p, n, sds=3.0):
    sd = math.sqrt(p * (1 - p) / n)
    return p - sds * sd, min(1.0, p + sds * sd)


def test_fid_bootstrap_intervals_cover_the_closed_form_at_about_their_level():
    """N(0, diag(1, 1)) vs N((1, 0), diag(4, 1)): FID = 1 + (1 + 4 - 2 * 2) = 2."""
    trials, hits, rng = 150, 0, np.random.default_rng(7)
    for _ in range(trials):
        real = rng.normal(size=(1000, 2))
        fake = rng.normal(size=(1000, 2)) * np.array([2.0, 1.0]) + np.array([1.0, 0.0])
        counts = sq.resample_counts(1000, 200, rng), sq.resample_counts(1000, 200, rng)
        low, high = sq.percentile_interval(sq.fid_replicates(real, fake, *counts))
        hits += low <= 2.0 <= high
    low, high = binomial_band(0.95, trials)
    assert low <= hits / trials <= high


def test_kid_bootstrap_intervals_cover_the_closed_form_at_about_their_level():
    """1-d: k(x, y) = (xy + 1)^3, so E k(x, y) = 1 + 3 m1 m1' + 3 m2 m2' + m3 m3' (raw moments) and
    MMD^2 = 3 (m1 - m1')^2 + 3 (m2 - m2')^2 + (m3 - m3')^2. N(0, 1) vs N(0.5, 1): 0.75 + 0.1875 + 2.640625."""
    moments = lambda a: (a, a * a + 1, a ** 3 + 3 * a)   # noqa: E731
    (a1, a2, a3), (b1, b2, b3) = moments(0.0), moments(0.5)
    truth = 3 * (a1 - b1) ** 2 + 3 * (a2 - b2) ** 2 + (a3 - b3) ** 2
    trials, hits, rng = 150, 0, np.random.default_rng(8)
    for _ in range(trials):
        real, fake = rng.normal(size=(400, 1)), rng.normal(0.5, 1.0, size=(400, 1))
        counts = sq.resample_counts(400, 200, rng), sq.resample_counts(400, 200, rng)
        low, high = sq.percentile_interval(sq.kid_replicates(real, fake, *counts))
        hits += low <= truth <= high
    low, high = binomial_band(0.95, trials, sds=4.0)   # heavy tails (x^6): percentile intervals run short
    assert low <= hits / trials <= high


def test_bootstrap_intervals_are_seeded_and_centred_on_the_estimate():
    """Resampling duplicates points and inflates FID: the plain percentile interval sits above the
    estimate (here the estimate is below its middle half); the centred one has the same width and
    the estimate at its middle."""
    rng = np.random.default_rng(9)
    real, fake = rng.normal(size=(500, 6)), rng.normal(0.3, 1.0, size=(300, 6))
    fid = frechet_distance(gaussian_stats(real), gaussian_stats(fake))
    kid = sq.kid(real, fake, torch.Generator().manual_seed(0))[0]
    estimates = {"fid": fid, "kid": kid}
    first = sq.bootstrap_intervals(real, fake, seed=3, estimates=estimates)
    assert first == sq.bootstrap_intervals(real, fake, seed=3, estimates=estimates)
    assert sq.bootstrap_intervals(real, fake, seed=4, estimates=estimates) != first
    counts_rng = np.random.default_rng(3)
    counts = sq.resample_counts(500, sq.BOOTSTRAP_REPS, counts_rng), sq.resample_counts(300, sq.BOOTSTRAP_REPS, counts_rng)
    plain = sq.percentile_interval(sq.fid_replicates(real, fake, *counts))
    position = (fid - plain[0]) / (plain[1] - plain[0])
    assert position < 0.25                                   # the plain interval: biased upwards
    for name, value in estimates.items():
        low, high = first[f"{name}_ci"]
        assert low + (high - low) / 4 < value < high - (high - low) / 4, name   # the middle half
    assert first["fid_ci"][1] - first["fid_ci"][0] == pytest.approx(plain[1] - plain[0])


# ---- a cell ---------------------------------------------------------------------------------------

def test_a_cell_with_fid_records_kid_prdc_intervals_and_provenance(tmp_path, monkeypatch):
    import bench.evaluation.caches as caches
    import bench.evaluation.cell as cell_module
    from bench.evaluation.features import ClassifierRecipe, classifier_features
    from bench.planning.grid import expand_grid
    from bench.planning.profiles import resolve_profile
    from streams.stream import load_stream

    extractor = classifier_features(load_stream("mini"), tmp_path / "classifier", ClassifierRecipe(steps=100))
    monkeypatch.setattr(caches, "cached_extractor", lambda name, stream, data_dir: extractor)
    profile = resolve_profile("smoke", ["fid_features=classifier", "fid_samples=200",
                                        "eval_test_per_task=160"])
    cell = expand_grid(["finetune"], ["mini"], [0], profile)[0]
    start = time.perf_counter()
    record = cell_module.train_and_evaluate(cell, data_dir=tmp_path, device="cpu")
    seconds = time.perf_counter() - start
    T = 5
    for name in ("fid", "kid", "precision", "recall", "density", "coverage"):
        matrix = np.array(record[f"{name}_matrix"])
        assert matrix.shape == (T, T) and np.isfinite(matrix).all(), name
        assert np.isfinite(record[f"forgetting_{name}"]) and np.isfinite(record[f"bwt_{name}"])
    assert record["kid"] > 0 and record["kid_std"] >= 0
    for name in ("precision", "recall", "coverage"):
        assert 0 <= record[name] <= 1 and ((0 <= np.array(record[f"{name}_matrix"])) &
                                            (np.array(record[f"{name}_matrix"]) <= 1)).all()
    assert record["density"] >= 0
    for name in ("fid", "kid"):
        low, high = record[f"{name}_ci"]
        assert low < high and low <= record[name] * 1.5 and high >= record[name] * 0.5, (name, low, high)
    info = record["fid_info"]
    assert info["weights_sha256"] == extractor.info["weights_sha256"] and info["samples"] == 200
    assert info["real_per_task"] == [160] * T and info["real_overall"] == 160 * T
    assert info["frechet_dtype"] == "float64" and info["test_binarization_seed"] is not None
    assert info["kid"]["subsets"] == sq.KID_SUBSETS and info["kid"]["degree"] == 3
    assert info["kid"]["subset_size_used"] == [160] * T + [200] and info["kid"]["seed"] == 0
    assert info["prdc"]["nearest_k"] == sq.PRDC_NEAREST_K
    assert info["bootstrap"] == {**sq.settings()["bootstrap"], "seed": 0}
    spent = record["sample_quality_seconds"]
    assert set(spent) == {"fid", "kid", "prdc", "bootstrap"} and sum(spent.values()) < seconds
    print("sample-quality seconds:", spent, "cell:", round(seconds, 1))


def test_the_bootstrap_interval_has_the_level_it_reports():
    """A 95% percentile interval cuts 2.5% off each tail: on the values 0..1000 it is [25, 975]
    (a 90% one, [50, 950], passes the coverage tests above within their noise)."""
    assert sq.BOOTSTRAP_LEVEL == 0.95
    assert sq.percentile_interval(np.arange(1001)) == pytest.approx([25.0, 975.0])
    assert sq.percentile_interval(np.arange(1001), level=0.9) == pytest.approx([50.0, 950.0])
    # the cell's intervals are these percentiles of its replicates, at the level its record states
    rng = np.random.default_rng(11)
    real, fake = rng.normal(size=(300, 4)), rng.normal(0.2, 1.0, size=(200, 4))
    fid = frechet_distance(gaussian_stats(real), gaussian_stats(fake))
    got = sq.bootstrap_intervals(real, fake, seed=5, estimates={"fid": fid, "kid": 0.0}, reps=50)
    counts_rng = np.random.default_rng(5)
    counts = sq.resample_counts(300, 50, counts_rng), sq.resample_counts(200, 50, counts_rng)
    replicates = sq.fid_replicates(real, fake, *counts)
    shift = np.median(replicates) - fid
    assert got["fid_ci"] == pytest.approx((np.percentile(replicates, [2.5, 97.5]) - shift).tolist())
