"""What a process loads once and keeps: streams, and FID feature extractors (a classifier trained
once per dataset), and where their on-disk caches live. The runner loads them before forking its
workers, which inherit them."""
from __future__ import annotations

import functools
from pathlib import Path

from bench.evaluation.features import get_extractor
from streams.datasets import resolve_data_dir
from streams.stream import load_stream


@functools.lru_cache(maxsize=4)
def cached_stream(name: str, data_dir):
    """Streams loaded once per process (the runner loads them before forking its workers)."""
    return load_stream(name, data_dir)


@functools.lru_cache(maxsize=4)
def cached_extractor(name: str, stream_name: str, data_dir):
    """FID feature extractors, built (a classifier trained) once per process."""
    return get_extractor(name, cached_stream(stream_name, data_dir), cache_dir(data_dir))


def cache_dir(data_dir) -> Path:
    """Where FID classifiers and real-set statistics are cached (inside the data directory)."""
    return resolve_data_dir(data_dir) / "cache"
