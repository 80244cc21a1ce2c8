"""Streams as Avalanche benchmarks: one experience per task, and the online (task-free) view."""
from __future__ import annotations

import torch
from avalanche.benchmarks import benchmark_from_datasets
from avalanche.benchmarks.scenarios.online import split_online_stream
from avalanche.benchmarks.utils import make_avalanche_dataset
from torch.utils.data import TensorDataset

ONLINE_BATCH_SIZE = 64


def _dataset(images: torch.Tensor):
    # Labels are not used by generative methods; zeros keep Avalanche's (x, y, t) convention.
    zeros = torch.zeros(len(images), dtype=torch.long)
    return make_avalanche_dataset(TensorDataset(images, zeros, zeros))


def task_benchmark(train_tasks: list[torch.Tensor], test_tasks: list[torch.Tensor]):
    """An Avalanche scenario with one train and one test experience per task (task order kept)."""
    return benchmark_from_datasets(train=[_dataset(x) for x in train_tasks],
                                   test=[_dataset(x) for x in test_tasks])


def online_experiences(task_experience, batch_size: int = ONLINE_BATCH_SIZE):
    """The task cut into consecutive batches, each an experience seen once, with no task
    boundaries or ids exposed (Avalanche's `split_online_stream`, access_task_boundaries=False)."""
    return split_online_stream([task_experience], experience_size=batch_size, shuffle=False,
                               access_task_boundaries=False)
