"""The benchmark harness, in layers (docs/architecture.md): planning -> evaluation -> execution,
and reporting; the command-line tools (run, report, check, status, faults, perf, cli) on top.

Importing it pins the CPU kernels to a level every x86-64 machine of the last decade has (AVX2),
before torch runs its first operation: ATen picks its vectorised kernels by the CPU (AVX-512,
AVX2 or scalar) and MKL and oneDNN theirs, and their results differ in the last bits. Those bits
are amplified by discrete choices (OCM's selection: the regression gate's ocm-iw50 cell moved
by 1.3 nats between AVX-512 and AVX2 kernels on one machine, reports/reliability.md). A variable
the user set is kept; on other architectures nothing is set."""
import os
import platform
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent   # the repository (a source checkout's root)

# The harness's version (the package's; every record names the version that wrote it). What
# changed in each version: CHANGELOG.md.
HARNESS_VERSION = "0.8.0"
# The version in which the shared protocol's numbers (streams, training loop, evaluation) last
# changed. A cell's key holds the later of it and its method's own `numbers_version` (declared
# with the method), so old and new records are never mixed, and a release that changes one
# baseline reruns that baseline only (bench/planning/keys.py). Raise it whenever every cell
# would give different numbers.
NUMBERS_VERSION = "0.7.0"


def version_tuple(version: str) -> tuple:
    """'0.10.1' -> (0, 10, 1), for comparing versions (a part that is not a number sorts first)."""
    return tuple(int(p) if p.isdigit() else -1 for p in str(version).split("."))

# ATen's kernel level, MKL's conditional numerical reproducibility, oneDNN's ISA ceiling (the FID
# classifier's convolutions). Measured here: the AVX2 kernels were as fast as AVX-512 for the
# paper's MLP (3.1-3.3 against 3.3-3.6 ms per step) and faster with 5 importance samples.
PORTABLE_CPU_KERNELS = {"ATEN_CPU_CAPABILITY": "avx2", "MKL_CBWR": "AVX2,STRICT", "ONEDNN_MAX_CPU_ISA": "AVX2"}


def pin_portable_cpu_kernels() -> None:
    if platform.machine().lower() in ("x86_64", "amd64"):
        for name, value in PORTABLE_CPU_KERNELS.items():
            os.environ.setdefault(name, value)
        # torch.compile's kernel cache does not key on ATen's level: a kernel built for AVX-512
        # and reused under AVX2 failed ("tuple args required"); a cache of its own for the level
        user = os.environ.get("USER") or str(os.getuid()) if hasattr(os, "getuid") else "user"
        os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", os.path.join(
            tempfile.gettempdir(), f"torchinductor_{user}_{os.environ['ATEN_CPU_CAPABILITY']}"))


pin_portable_cpu_kernels()
