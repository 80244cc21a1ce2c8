"""The FID classifiers ship with the harness, pinned by SHA-256, so that every machine computes
FID, KID and P/R/D/C on the same features; training on first use (users' own datasets) runs with
pinned kernels."""
import shutil

import pytest
import torch

from bench.evaluation import features
from bench.evaluation.features import (
    SHIPPED_CLASSIFIERS,
    ClassifierRecipe,
    ShippedClassifierError,
    classifier_features,
    file_sha256,
    needs_training,
    shipped_path,
    train_classifier,
    weights_hash,
)
from streams.stream import load_stream


def test_every_shipped_dataset_has_its_pinned_file_and_it_loads_as_plain_data():
    assert set(SHIPPED_CLASSIFIERS) == {"mini", "mnist", "fashion", "mnist+fashion"}
    for dataset, pinned in SHIPPED_CLASSIFIERS.items():
        path = shipped_path(dataset)
        assert file_sha256(path) == pinned and path.stat().st_size < 500 * 1024
        info = features.shipped_classifier(dataset).info
        assert info["dataset"] == dataset and info["source"].startswith("shipped")
        assert info["test_accuracy"] > 0.8


def test_the_stream_uses_the_shipped_classifier_and_never_trains(tmp_path):
    stream = load_stream("mini")
    assert not needs_training("classifier", stream, tmp_path)
    extractor = classifier_features(stream, tmp_path)
    assert extractor.info["source"].startswith("shipped") and not (tmp_path / "fid-classifier").exists()
    # the features of the shipped weights: digits of the stream's own classes separate
    x = stream.test_images(0, 200)
    assert extractor(x).shape == (200, 128)


def test_a_changed_shipped_file_is_refused_with_what_to_do(tmp_path, monkeypatch):
    shutil.copy(shipped_path("mini"), tmp_path / "mini.pt")
    monkeypatch.setattr(features, "SHIPPED_DIR", tmp_path)
    with open(tmp_path / "mini.pt", "ab") as f:
        f.write(b"\0")
    with pytest.raises(ShippedClassifierError, match="was changed; restore it"):
        classifier_features(load_stream("mini"), tmp_path / "cache")
    (tmp_path / "mini.pt").unlink()
    with pytest.raises(ShippedClassifierError, match="is missing"):
        classifier_features(load_stream("mini"), tmp_path / "cache")


def test_training_on_first_use_gives_the_same_weights_whatever_the_callers_threads():
    """The issue's measurement: the default recipe trained with one and with two threads gave
    different weights (accuracy 0.964 against 0.958). Training now pins one thread and
    deterministic kernels, and restores the caller's settings."""
    stream, recipe = load_stream("mini"), ClassifierRecipe(steps=60)
    hashes = []
    for threads in (1, 2):
        torch.set_num_threads(threads)
        model, _ = train_classifier(stream, recipe)
        assert torch.get_num_threads() == threads and not torch.are_deterministic_algorithms_enabled()
        hashes.append(weights_hash(model))
    torch.set_num_threads(1)
    assert hashes[0] == hashes[1]
    # the weights are stored and used at float16 precision
    assert all(torch.equal(p, p.half().float()) for p in model.parameters())


def test_a_users_dataset_trains_once_and_says_so(tmp_path):
    stream = load_stream("mini")
    recipe = ClassifierRecipe(steps=30)            # not the shipped recipe: trained here
    extractor = classifier_features(stream, tmp_path, recipe)
    assert extractor.info["source"].startswith("trained here")
    again = classifier_features(stream, tmp_path, recipe)
    assert again.info["weights_sha256"] == extractor.info["weights_sha256"]


def test_building_an_extractor_leaves_the_callers_random_state_as_it_was(tmp_path):
    """A cell that builds its extractor mid-training (no warm-up in its process: a Ray worker, a
    script) must train on the same random stream as one whose extractor was built beforehand."""
    stream = load_stream("mini")
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    features.get_extractor("classifier", stream, tmp_path)   # the shipped mini classifier: built now
    assert torch.equal(torch.rand(3), expected)
