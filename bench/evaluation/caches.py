"""What a process loads once and keeps: streams, and FID feature extractors (a classifier trained
once per dataset), and where their on-disk caches live. The runner loads them before forking its
workers, which inherit them."""
from __future__ import annotations

import functools
import json
from pathlib import Path

from bench.evaluation.features import get_extractor
from streams.datasets import resolve_data_dir
from streams.registry import stream_definition
from streams.stream import load_stream


def definition_key(stream_name: str) -> str:
    """What the stream is now (its definition: datasets and checksums, tasks, seed): a stream
    registered again under its name with other data is loaded again, not served from memory."""
    return json.dumps(stream_definition(stream_name), sort_keys=True)


def cached_stream(name: str, data_dir):
    """Streams loaded once per process (the runner loads them before forking its workers)."""
    return _loaded_stream(name, data_dir, definition_key(name))


@functools.lru_cache(maxsize=4)
def _loaded_stream(name: str, data_dir, definition: str):
    return load_stream(name, data_dir)


def cached_extractor(name: str, stream_name: str, data_dir):
    """FID feature extractors, built (a classifier trained) once per process and stream definition."""
    return _built_extractor(name, stream_name, data_dir, definition_key(stream_name))


@functools.lru_cache(maxsize=4)
def _built_extractor(name: str, stream_name: str, data_dir, definition: str):
    return get_extractor(name, cached_stream(stream_name, data_dir), cache_dir(data_dir))



def cache_dir(data_dir) -> Path:
    """Where FID classifiers and real-set statistics are cached (inside the data directory)."""
    return resolve_data_dir(data_dir) / "cache"
