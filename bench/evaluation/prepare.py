"""Before a grid's cells run: what evaluating them needs, checked and made ready once, in the runner.

`check` refuses, without importing torch (a second, not ten), a device that does not exist, fewer
FID samples than the extractor has features, and missing or corrupt dataset files. `warm_up`
(torch from here on) loads each stream, which forked workers then inherit, trains a FID classifier
once when none is cached, and checks that the test sets are large enough for a full-rank FID.
"""
from __future__ import annotations

import sys

from bench.evaluation import FEATURE_DIMS
from bench.evaluation.device import DeviceUnavailableError, check_choice, no_gpu_reason


def check(plan, device: str, local: bool, data_dir) -> None:
    """Raise (ValueError, DeviceUnavailableError, DatasetMissingError, CorruptDatasetError) what
    would stop the plan's cells, reading files only. `local`: the workers are this machine."""
    check_choice(device)
    if local and no_gpu_reason(device):
        raise DeviceUnavailableError(no_gpu_reason(device))
    check_fid_samples(plan.profiles)
    check_data_files(plan.streams, data_dir)


def check_fid_samples(profiles) -> None:
    """Refuse fewer FID samples than the extractor has features (a singular covariance)."""
    for profile in profiles:
        dim = FEATURE_DIMS.get(profile.fid_features)
        if dim is not None and profile.fid_samples < dim:
            raise ValueError(f"FID needs at least as many generated samples as feature dimensions: "
                             f"fid_samples={profile.fid_samples} < {dim} ({profile.fid_features} features); "
                             f"give --set fid_samples={dim} or more, or --fid-features none")


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
