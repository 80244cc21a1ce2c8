"""A continual stream in memory: per-task training images and fixed binarized test sets.

Images are float32 tensors [N, C, H, W] in [0, 1]. Training images stay grey: every use draws a
fresh Bernoulli binarization (`binarize`). Test images are binarized once, with the stream's
fixed seed, when the stream is loaded.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from streams.datasets import get_dataset
from streams.idx import CorruptDatasetError
from streams.registry import StreamSpec, class_offsets, get_stream_spec


def binarize(images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """One Bernoulli draw per pixel with p = grey level (the dynamic binarization of the paper)."""
    return torch.bernoulli(images, generator=generator)


@dataclass
class Task:
    classes: tuple[int, ...]
    train_images: torch.Tensor   # grey, in the dataset's order
    test_images: torch.Tensor    # binarized once, fixed order
    train_labels: torch.Tensor   # global class ids (for the FID classifier; methods never see them)
    test_labels: torch.Tensor


@dataclass
class ContinualStream:
    spec: StreamSpec
    tasks: list[Task]

    @property
    def name(self) -> str:
        return self.spec.name

    def train_order(self, task: int, seed: int, limit: int | None = None) -> torch.Tensor:
        """Indices into task `task`'s training images, in the order a run with `seed` presents them.

        The images are a seeded random subset (all of them without `limit`); in the "sorted" order
        the same subset is sorted by class label, then by position in the dataset file, as in the
        authors' code, where a task's images arrive one class after the other."""
        images = self.tasks[task].train_images
        order = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed * 1009 + task))
        order = order[:limit] if limit else order
        if self.spec.order == "sorted":
            order = order.sort().values   # file order, then a stable sort by label
            order = order[torch.argsort(self.tasks[task].train_labels[order], stable=True)]
        return order

    def train_images(self, task: int, seed: int, limit: int | None = None) -> torch.Tensor:
        """Task `task`'s training images in the order a run with `seed` presents them."""
        return self.tasks[task].train_images[self.train_order(task, seed, limit)]

    def test_images(self, task: int, limit: int | None = None) -> torch.Tensor:
        """The first `limit` images of the task's fixed binary test set (same for every run)."""
        images = self.tasks[task].test_images
        return images[:limit] if limit else images


def _as_float(images: np.ndarray) -> torch.Tensor:
    tensor = torch.from_numpy(np.ascontiguousarray(images)).float().div_(255.0)
    return tensor.unsqueeze(1) if tensor.dim() == 3 else tensor.permute(0, 3, 1, 2).contiguous()


def image_shape(images: np.ndarray) -> tuple[int, ...]:
    """C, H, W of uint8 images [N, H, W] (grey) or [N, H, W, C]."""
    return (1, *images.shape[1:]) if images.ndim == 3 else (images.shape[3], *images.shape[1:3])


class DegenerateStreamError(ValueError):
    """A stream that cannot give a meaningful number: a task or a class without images."""


def check_classes_present(spec: StreamSpec, train_y: np.ndarray, test_y: np.ndarray) -> None:
    """Refuse a stream one of whose tasks' classes has no training or no test image: a task
    without test images has no NLL (a NaN column), one without training images trains nothing
    (yet an NLL would be reported), and a class without images is not the task declared."""
    for i, classes in enumerate(spec.tasks):
        for split, labels in (("training", train_y), ("test", test_y)):
            empty = [int(c) for c in classes if not np.any(labels == c)]
            if empty:
                raise DegenerateStreamError(
                    f"stream '{spec.name}': task {i + 1} (classes {', '.join(map(str, classes))}) has no "
                    f"{split} image of class{'es' if len(empty) > 1 else ''} {', '.join(map(str, empty))} "
                    "in its datasets; fix the stream's tasks or its data")


def load_stream(name: str, data_dir=None, verify: bool = True) -> ContinualStream:
    """Build stream `name` from its datasets (raises DatasetMissingError if files are absent).

    `verify=False` skips the standard-checksum check (for small files that tests write)."""
    spec = get_stream_spec(name)
    train_x, train_y, test_x, test_y = [], [], [], []
    for dataset_name, offset in zip(spec.datasets, class_offsets(spec.datasets)):
        data = get_dataset(dataset_name).load(data_dir, verify)
        shape = image_shape(data.train_x)
        if shape != tuple(spec.image_shape):
            raise CorruptDatasetError(f"stream '{name}': dataset '{dataset_name}' has images of shape "
                                      f"{list(shape)} (C, H, W), the stream declares {list(spec.image_shape)}: give "
                                      f"register_stream(..., image_shape={tuple(shape)}) for these images")
        train_x.append(data.train_x), test_x.append(data.test_x)
        train_y.append(data.train_y + offset), test_y.append(data.test_y + offset)
    train_x, test_x = np.concatenate(train_x), np.concatenate(test_x)
    train_y, test_y = np.concatenate(train_y), np.concatenate(test_y)

    check_classes_present(spec, train_y, test_y)
    test_rng = torch.Generator().manual_seed(spec.test_binarization_seed)
    tasks = []
    for classes in spec.tasks:
        train_mask, test_mask = np.isin(train_y, classes), np.isin(test_y, classes)
        test_grey = _as_float(test_x[test_mask])
        # A fixed shuffle so that a test subset (`limit`) covers the task's classes evenly.
        order = torch.randperm(len(test_grey), generator=test_rng)
        tasks.append(Task(tuple(classes), _as_float(train_x[train_mask]),
                          binarize(test_grey[order], test_rng), torch.from_numpy(train_y[train_mask]),
                          torch.from_numpy(test_y[test_mask])[order]))
    return ContinualStream(spec, tasks)
