"""The C kernel of the CPU evaluator (methods/models/native/bernoulli_log_likelihood.c): built on first use, cached.

Compiled with the machine's C compiler (`$CC`, else `cc`) for this CPU (-march=native) into
`$XDG_CACHE_HOME/ocm-bench/kernels` (default ~/.cache), under a name that hashes the source, the
flags, the compiler and the CPU's features, so that a home directory shared by different machines
never loads a library built for another CPU. Compiling takes about a second, once per machine.
Without a compiler, or with `BENCH_NATIVE_KERNEL=0`, `bernoulli_log_likelihood` returns None and
the evaluator uses its torch form (one warning per process): the numbers agree to float32 rounding.
"""
from __future__ import annotations

import contextlib
import ctypes
import functools
import hashlib
import os
import platform
import subprocess
import warnings
from pathlib import Path

import torch

from streams.files import atomic_path

SOURCE = Path(__file__).with_name("bernoulli_log_likelihood.c")
SWITCH = "BENCH_NATIVE_KERNEL"     # "0": never build or load it
FLAGS = ("-O3", "-shared", "-fPIC")
NATIVE_FLAGS = ("-march=native",)  # dropped if the compiler rejects it


_turned_off = False   # by `turned_off()`


def enabled() -> bool:
    return os.environ.get(SWITCH, "1") != "0" and not _turned_off


@contextlib.contextmanager
def turned_off():
    """The torch form inside the block (bench.perf times both forms in one run)."""
    global _turned_off
    before, _turned_off = _turned_off, True
    try:
        yield
    finally:
        _turned_off = before


def cache_root() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "ocm-bench" / "kernels"


def _cpu_identity() -> str:
    """The CPU's feature flags (Linux) and architecture: what -march=native compiles for."""
    try:
        text = Path("/proc/cpuinfo").read_text()
        flags = next((line for line in text.splitlines() if line.startswith(("flags", "Features"))), "")
    except OSError:
        flags = ""
    return f"{platform.machine()} {flags}"


def _compile(compiler: str, flags: tuple[str, ...], target: Path) -> None:
    """Compile into a private file, then rename: workers building at the same time never load a
    half-written library."""
    with atomic_path(target, suffix=".so") as partial:
        subprocess.run([compiler, *flags, "-o", str(partial), str(SOURCE), "-lm"], check=True,
                       capture_output=True, text=True)


def build(root: Path | None = None) -> Path:
    """The library's path, compiling it if this machine has not yet (raises if it cannot)."""
    compiler = os.environ.get("CC", "cc")
    version = subprocess.run([compiler, "--version"], check=True, capture_output=True, text=True).stdout
    errors = []
    for flags in (FLAGS + NATIVE_FLAGS, FLAGS):
        key = hashlib.sha256("\0".join([SOURCE.read_text(), *flags, version, _cpu_identity()]).encode())
        target = (root or cache_root()) / f"{SOURCE.stem}-{key.hexdigest()[:16]}.so"
        if target.exists():
            return target
        try:
            _compile(compiler, flags, target)
            return target
        except subprocess.CalledProcessError as err:
            errors.append(err.stderr.strip())
    raise RuntimeError(f"{compiler} could not compile {SOURCE.name}: {errors[-1]}")


def _function():
    """The C function, or None (turned off, or no working compiler)."""
    return _loaded() if enabled() else None


@functools.cache
def _loaded():
    """The C function, built and loaded once per process; None without a compiler (warned once)."""
    try:
        library = ctypes.CDLL(str(build()))
    except (OSError, RuntimeError, subprocess.CalledProcessError) as err:
        warnings.warn(f"the evaluator's C kernel is unavailable ({err}); using the slower torch form. "
                      f"Install a C compiler (e.g. gcc), or set {SWITCH}=0 to skip it.", stacklevel=3)
        return None
    function = library.bernoulli_log_likelihood
    function.argtypes = [ctypes.c_void_p] * 3 + [ctypes.c_int64] * 3 + [ctypes.c_void_p]
    function.restype = None
    return function


def available() -> bool:
    """Whether `bernoulli_log_likelihood` runs the C kernel in this process (builds it if needed)."""
    return _function() is not None


def bernoulli_log_likelihood(raw: torch.Tensor, bias: torch.Tensor, centred: torch.Tensor) -> torch.Tensor | None:
    """sum_i x_i l_i - softplus(l_i) per row, for logits l log2(e) = raw + bias ([rows, D] and [D])
    and centred = x - 1/2 ([B, D], row r is image r % B) -> [rows] (nats); see the C source.
    None where the kernel does not apply: it is unavailable, or the tensors are not contiguous
    float32 CPU tensors."""
    function = _function()
    tensors = (raw, bias, centred)
    if function is None or any(t.dtype != torch.float32 or t.device.type != "cpu" or not t.is_contiguous()
                               for t in tensors):
        return None
    rows, cols = raw.shape
    if bias.shape != (cols,) or centred.dim() != 2 or centred.shape[1] != cols:
        raise ValueError(f"shapes do not match: raw {tuple(raw.shape)}, bias {tuple(bias.shape)}, "
                         f"centred {tuple(centred.shape)}")
    out = torch.empty(rows, dtype=torch.float32)
    function(*(t.data_ptr() for t in tensors), rows, cols, len(centred), out.data_ptr())
    return out
