"""Streams: idx loaders on files the tests write, task structure, binarization, online batches."""
import gzip

import numpy as np
import pytest
import torch

from streams.benchmark import online_experiences, task_benchmark
from streams.datasets import DatasetMissingError, load_idx_dataset
from streams.idx import CorruptDatasetError, read_idx, write_idx
from streams.stream import load_stream

STEMS = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
         "t10k-labels-idx1-ubyte")


def write_fake_dataset(folder, per_class_train=6, per_class_test=3, gz=False, seed=0):
    """A tiny MNIST-format dataset: 10 classes, pixel value = 20 * class (so origin is visible)."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    suffix = ".gz" if gz else ""
    for prefix, n in (("train", per_class_train), ("t10k", per_class_test)):
        labels = np.repeat(np.arange(10, dtype=np.uint8), n)
        rng.shuffle(labels)
        images = (labels[:, None, None] * 20 + rng.integers(0, 5, (len(labels), 28, 28))).astype(np.uint8)
        write_idx(folder / f"{prefix}-images-idx3-ubyte{suffix}", images)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte{suffix}", labels)


def test_idx_round_trip_plain_and_gzipped(tmp_path):
    array = np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 28, 28)
    write_idx(tmp_path / "a", array)
    write_idx(tmp_path / "b.gz", array)
    assert (tmp_path / "b.gz").read_bytes()[:2] == b"\x1f\x8b"
    np.testing.assert_array_equal(read_idx(tmp_path / "a"), array)
    np.testing.assert_array_equal(read_idx(tmp_path / "b.gz"), array)


def test_truncated_idx_raises(tmp_path):
    write_idx(tmp_path / "x", np.zeros((3, 28, 28), np.uint8))
    content = (tmp_path / "x").read_bytes()
    (tmp_path / "x").write_bytes(content[:-100])
    with pytest.raises(CorruptDatasetError, match="truncated"):
        read_idx(tmp_path / "x")
    (tmp_path / "y.gz").write_bytes(gzip.compress(content)[:-30])
    with pytest.raises(CorruptDatasetError):
        read_idx(tmp_path / "y.gz")


def test_checksum_mismatch_raises(tmp_path):
    write_fake_dataset(tmp_path / "mnist")
    with pytest.raises(CorruptDatasetError, match="MD5"):
        load_idx_dataset("mnist", tmp_path, verify=True)


def test_missing_dataset_names_the_fetch_command(tmp_path):
    with pytest.raises(DatasetMissingError, match=r"python -m streams\.fetch fashion --data-dir"):
        load_idx_dataset("fashion", tmp_path)


@pytest.mark.parametrize("gz", [False, True])
def test_split_stream_from_small_files(tmp_path, gz):
    write_fake_dataset(tmp_path / "mnist", gz=gz)
    stream = load_stream("split-mnist", tmp_path, verify=False)
    assert [t.classes for t in stream.tasks] == [(0, 1), (2, 3), (4, 5), (6, 7), (8, 9)]
    for task in stream.tasks:
        assert task.train_images.shape == (12, 1, 28, 28) and task.test_images.shape == (6, 1, 28, 28)
        # grey level encodes the class: every image of the task is from its two classes
        classes = set((task.train_images.mean((1, 2, 3)) * 255 / 20).round().long().tolist())
        assert classes == set(task.classes)


def test_mnist_fashion_has_ten_tasks_with_offset_classes(tmp_path):
    write_fake_dataset(tmp_path / "mnist")
    write_fake_dataset(tmp_path / "fashion", seed=1)
    stream = load_stream("mnist-fashion", tmp_path, verify=False)
    assert [t.classes for t in stream.tasks][4:6] == [(8, 9), (10, 11)]
    assert len(stream.tasks) == 10


def test_mini_stream_structure_and_fixed_test_binarization():
    stream = load_stream("mini")
    assert [t.classes for t in stream.tasks] == [(0, 1), (2, 3), (4, 5), (6, 7), (8, 9)]
    assert all(len(t.train_images) == 800 and len(t.test_images) == 200 for t in stream.tasks)
    test = stream.tasks[0].test_images
    assert set(test.unique().tolist()) == {0.0, 1.0}
    # the same binary test set at every load (fixed per stream, not per run)
    assert torch.equal(load_stream("mini").tasks[0].test_images, test)
    # grey training data; a run's order depends on its seed only
    train = stream.tasks[0].train_images
    assert 0.3 < train.unique().numel() / 256 and train.max() <= 1 and train.min() >= 0
    assert torch.equal(stream.train_images(0, seed=1), stream.train_images(0, seed=1))
    assert not torch.equal(stream.train_images(0, seed=1), stream.train_images(0, seed=2))


def test_online_presentation_is_batches_of_64_without_boundaries():
    stream = load_stream("mini")
    benchmark = task_benchmark([stream.train_images(0, 0)], [stream.test_images(0)])
    experiences = list(online_experiences(benchmark.train_stream[0]))
    assert [len(e.dataset) for e in experiences] == [64] * 12 + [32]
    assert not any(e.access_task_boundaries for e in experiences)
    first = torch.stack([experiences[0].dataset[i][0] for i in range(64)])
    assert torch.equal(first, stream.train_images(0, 0)[:64])  # presented in the run's order


def test_attached_batch_tensors_are_exactly_what_avalanche_presents():
    """The strategy slices `bench_images` instead of collating samples: every online batch's
    tensor must equal the samples Avalanche's split puts in that experience."""
    from methods.core import experience_images

    images = load_stream("mini").train_images(1, 0)
    for experience in online_experiences(task_benchmark([images], [images[:4]]).train_stream[0], 48):
        collated = torch.stack([experience.dataset[i][0] for i in range(len(experience.dataset))])
        assert torch.equal(experience_images(experience), collated)
