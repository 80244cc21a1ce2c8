"""Before a grid's cells run: what evaluating them needs, checked and made ready once, in the runner.

`check` refuses, without importing torch (a second, not ten), a device that does not exist, fewer
FID samples than the extractor has features, and missing or corrupt dataset files. `warm_up`
(torch from here on) loads each stream, which forked workers then inherit, trains a FID classifier
once when none is cached, and checks that the test sets are large enough for a full-rank FID.
"""
from __future__ import annotations

import os
import sys

from bench.evaluation.device import DeviceUnavailableError, check_choice, no_gpu_reason
from bench.metrics import EXTRACTORS


def check(plan, device: str, local: bool, data_dir) -> None:
    """Raise (ValueError, DeviceUnavailableError, DatasetMissingError, CorruptDatasetError) what
    would stop the plan's cells, reading files only. `local`: the workers are this machine."""
    check_choice(device)
    if local and no_gpu_reason(device):
        raise DeviceUnavailableError(no_gpu_reason(device))
    check_fid_samples(plan.profiles)
    check_memory(plan.cells)
    check_data_files(plan.streams, data_dir)


def check_fid_samples(profiles) -> None:
    """Refuse fewer FID samples than the extractor has features (a singular covariance)."""
    for profile in profiles:
        dim = EXTRACTORS[profile.fid_features].dim if profile.fid_features in EXTRACTORS else None
        if dim is not None and profile.fid_samples < dim:
            raise ValueError(f"FID needs at least as many generated samples as feature dimensions: "
                             f"fid_samples={profile.fid_samples} < {dim} ({profile.fid_features} features); "
                             f"give --set fid_samples={dim} or more, or --fid-features none")


def machine_memory_bytes() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def check_memory(cells) -> None:
    """Refuse a cell whose declared memories (settings declared `stores_images`: budgets, buffers)
    cannot fit in this machine's memory as float32 images: a budget of 10^12 would otherwise ask
    for petabytes when its cell starts."""
    import math

    from methods import get_method
    from methods.core.settings import stored_images
    from streams import get_stream_spec

    available = machine_memory_bytes()
    if available is None:
        return
    for cell in cells:
        images = stored_images(get_method(cell.method).config_class, cell.method_config)
        needed = images * math.prod(get_stream_spec(cell.stream).image_shape) * 4
        if needed > available:
            raise ValueError(f"{cell.label}: its settings keep up to {images:,} images in memory, "
                             f"{needed / 2**30:,.0f} GiB as float32, more than this machine's "
                             f"{available / 2**30:,.0f} GiB; give a smaller budget")


def check_data_files(streams: list[str], data_dir) -> None:
    """Refuse missing or corrupt dataset files (reading the files only: no torch)."""
    from streams import get_stream_spec
    from streams.datasets import check_dataset

    for name in dict.fromkeys(d for stream in streams for d in get_stream_spec(stream).datasets):
        check_dataset(name, data_dir)


def warm_up(plan, device: str, local: bool, data_dir) -> None:
    """Torch from here on: resolve the device where the workers are this machine, load every stream
    (forked workers inherit them), build each FID extractor once and check that the test sets can
    give a full-rank FID."""
    import torch

    torch.set_num_threads(1)
    from bench.evaluation.caches import cache_dir, cached_extractor, cached_stream
    from bench.evaluation.device import resolve_device
    from bench.evaluation.features import needs_training
    from bench.evaluation.fid import check_feasible

    for profile in plan.profiles:
        if local and device != "auto":
            resolve_device(device, profile.name)
        for stream in plan.streams:
            loaded = cached_stream(stream, data_dir)
            if profile.fid_features:
                if needs_training(profile.fid_features, loaded, cache_dir(data_dir)):
                    print(f"FID features for {stream}: training the '{profile.fid_features}' extractor "
                          "(a small CNN on the stream's training images) once, about 20 s on one core; "
                          f"then cached in {cache_dir(data_dir) / 'fid-classifier'}", file=sys.stderr)
                extractor = cached_extractor(profile.fid_features, stream, data_dir)
                check_feasible(extractor, profile.fid_samples,
                               [len(loaded.test_images(t, profile.eval_test_per_task))
                                for t in range(len(loaded.tasks))])


def estimate_line(cells, data_dir, workers: int) -> str | None:
    """'this grid: about N CPU-hours ...' for `cells` (those still to run) when their estimated work
    exceeds ESTIMATE_SHOWN_ABOVE_SECONDS (bench/planning/schedule.py: rough, within 2-3x), else None.
    Streams are the warm-up's (already loaded)."""
    from bench.evaluation.caches import cached_stream
    from bench.planning.defaults import ESTIMATE_SHOWN_ABOVE_SECONDS
    from bench.planning.schedule import describe_hours, estimated_cpu_seconds

    seconds = []
    for cell in cells:
        stream = cached_stream(cell.stream, data_dir)
        limit, per_task = cell.profile.max_train_per_task, cell.profile.eval_test_per_task
        train = sum(min(len(t.train_images), limit or len(t.train_images)) for t in stream.tasks)
        test = round(sum(min(len(t.test_images), per_task or len(t.test_images)) for t in stream.tasks)
                     / len(stream.tasks))
        seconds.append(estimated_cpu_seconds(cell, train, len(stream.tasks), test))
    total = sum(seconds)
    if total < ESTIMATE_SHOWN_ABOVE_SECONDS:
        return None
    wall = max(total / max(1, min(workers, len(cells))), max(seconds))
    return (f"this grid: about {describe_hours(total)} of CPU work in {len(cells)} cell(s), about "
            f"{describe_hours(wall)} on {workers} worker(s) (the longest cell about {describe_hours(max(seconds))}; "
            "a rough estimate). Ctrl-C stops it; the same command resumes it")
