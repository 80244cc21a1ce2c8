"""Which torch device a cell runs on (`--device auto|cpu|cuda[:N]`).

`auto` means: the GPU for profiles whose cells are GPU work (the paper profile: E = 100, 50 MC
samples, IWAE-1000 on full test sets), when this process sees one; the CPU otherwise (smoke and
quick cells are small enough that one CPU thread per cell is the efficient use of a machine).
The device is resolved where the cell runs (the worker, which on Ray or Slurm is not the machine
that submitted the grid), and every record says which device produced it. It is not part of the
cell's key: a cell is the same experiment on any device, though its numbers differ in the last
digits (different kernels, different random streams for the same seed).
"""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from bench.planning.defaults import GPU_PROFILES
from methods.core.labels import base_name

if TYPE_CHECKING:
    import torch

DEVICE_CHOICES = ("auto", "cpu", "cuda")


class DeviceUnavailableError(RuntimeError):
    """The requested device does not exist in this process."""


def base_profile(profile_name: str) -> str:
    """'paper[epochs=2]' -> 'paper' (overridden profiles keep their base's device preference)."""
    return base_name(profile_name)


def prefers_gpu(profile_name: str) -> bool:
    return base_profile(profile_name) in GPU_PROFILES


def check_choice(requested: str) -> str:
    kind = requested.split(":", 1)[0]
    if kind not in DEVICE_CHOICES or (kind != "cuda" and ":" in requested):
        raise ValueError(f"unknown device '{requested}'; valid: auto, cpu, cuda, cuda:N")
    return requested


GPU_DEVICE_FILES = ("/proc/driver/nvidia/gpus", "/dev/nvidia0", "/dev/kfd")   # NVIDIA driver; ROCm


def no_gpu_reason(requested: str, device_files=GPU_DEVICE_FILES) -> str | None:
    """Why `--device cuda[:N]` cannot work here, decided without importing torch (seconds): no GPU
    driver's device files on a Linux machine, or CUDA_VISIBLE_DEVICES hiding every GPU; None
    when there may be a GPU (torch decides later) or when torch is imported already."""
    if not requested.startswith("cuda") or "torch" in sys.modules or not sys.platform.startswith("linux"):
        return None
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and visible.strip() in ("", "-1"):
        return (f"--device {requested}: no CUDA GPU is visible to this process (CUDA_VISIBLE_DEVICES="
                f"'{visible}'); use --device cpu or auto")
    if any(Path(f).exists() for f in device_files):
        return None
    return (f"--device {requested}: no CUDA GPU is visible to this process (no GPU driver: none of "
            f"{', '.join(device_files)} exists); use --device cpu or auto")


def resolve_device(requested: str, profile_name: str) -> torch.device:
    """The torch device for `--device requested` under `profile_name`; CUDA gets an explicit index."""
    import torch

    check_choice(requested)
    if requested == "auto":
        requested = "cuda" if prefers_gpu(profile_name) and torch.cuda.is_available() else "cpu"
    if requested == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise DeviceUnavailableError(
            f"--device {requested}: no CUDA GPU is visible to this process (torch {torch.__version__}, "
            f"CUDA build {torch.version.cuda or 'none'}, CUDA_VISIBLE_DEVICES="
            f"{os.environ.get('CUDA_VISIBLE_DEVICES', 'unset')}); use --device cpu or auto")
    device = torch.device(requested)
    index = torch.cuda.current_device() if device.index is None else device.index
    if index >= torch.cuda.device_count():
        raise DeviceUnavailableError(
            f"--device {requested}: this process sees {torch.cuda.device_count()} GPU(s)")
    return torch.device("cuda", index)


def describe(device: torch.device) -> str:
    """'cpu' or e.g. 'cuda:0 (NVIDIA H200)', for records."""
    import torch

    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    return str(device)


def cpu_kernels() -> str:
    """The CPU kernels this process computes with (bench/__init__.py pins them): ATen's level and
    MKL's reproducibility mode, e.g. 'AVX2, MKL_CBWR=AVX2,STRICT'."""
    import torch

    return f"{torch.backends.cpu.get_cpu_capability()}, MKL_CBWR={os.environ.get('MKL_CBWR', 'unset')}"
