"""Streams as Avalanche benchmarks: one experience per task, and the online (task-free) view.

Every dataset made here carries its images as one tensor (`dataset.bench_images`), so that the
strategy gets an experience's images by slicing, not by a per-sample `__getitem__` + collate pass
(which cost 3 ms per 64-image online experience, a quarter of a training step).
"""
from __future__ import annotations

import torch
from avalanche.benchmarks import benchmark_from_datasets
from avalanche.benchmarks.scenarios.online import split_online_stream
from avalanche.benchmarks.utils import make_avalanche_dataset
from torch.utils.data import TensorDataset

ONLINE_BATCH_SIZE = 64


IMAGES_ATTRIBUTE = "bench_images"


def _dataset(images: torch.Tensor):
    # Labels are not used by generative methods; zeros keep Avalanche's (x, y, t) convention.
    zeros = torch.zeros(len(images), dtype=torch.long)
    dataset = make_avalanche_dataset(TensorDataset(images, zeros, zeros))
    setattr(dataset, IMAGES_ATTRIBUTE, images)
    return dataset


def task_benchmark(train_tasks: list[torch.Tensor], test_tasks: list[torch.Tensor]):
    """An Avalanche scenario with one train and one test experience per task (task order kept)."""
    return benchmark_from_datasets(train=[_dataset(x) for x in train_tasks],
                                   test=[_dataset(x) for x in test_tasks])


def online_experiences(task_experience, batch_size: int = ONLINE_BATCH_SIZE):
    """The task cut into consecutive batches, each an experience seen once, with no task
    boundaries or ids exposed (Avalanche's `split_online_stream`, access_task_boundaries=False)."""
    images = getattr(task_experience.dataset, IMAGES_ATTRIBUTE, None)
    stream = split_online_stream([task_experience], experience_size=batch_size, shuffle=False,
                                 access_task_boundaries=False)
    for i, experience in enumerate(stream):
        if images is not None:   # consecutive, unshuffled: batch i is images[i*bs:(i+1)*bs]
            setattr(experience.dataset, IMAGES_ATTRIBUTE, images[i * batch_size:(i + 1) * batch_size])
        yield experience
