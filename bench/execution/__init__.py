"""Execution: many cells. The result store (one atomic JSON record per cell), claims that keep
runners sharing a directory from running a cell twice, and the executors (local processes, Ray,
Slurm). Imports evaluation and planning.

Executors are registered like methods (`register_executor`): a name, the function that runs a
list of cells ('module:function', imported when cells run: torch comes with it), a dataclass of
the executor's own settings (bounds declared with `setting()`), the command-line flags that set
them, and whether its workers are this machine. `bench.run --executor NAME` takes any registered
one, a user's from `--import` included; `--executor-option KEY=VALUE` sets its settings. The
built-in ones are declared here, without torch, so that the command line lists and checks them
in a second.

The run function: `run(cells, store, common, own, bar) -> {cell key: outcome}`, with `common`
the options every executor gets (`CommonOptions`), `own` its settings, `bar` a progress bar
(`bar.update()` once per finished cell); each cell runs through
`bench.execution.executor.execute_cell`, which claims, skips finished cells and saves the record.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from methods.core.settings import setting
from streams.names import check_name


class Terminated(KeyboardInterrupt):
    """SIGTERM (a scheduler's or a user's `kill`): the runner stops as Ctrl-C stops it, exit 143."""


@dataclass(frozen=True)
class Keeping:
    """What a cell keeps beside its record (bench/evaluation/checkpoint.py): a checkpoint every
    `checkpoint_minutes` (0: at task boundaries only; None: none), kept after the record with
    `keep_checkpoints`; its final model with `keep_models`."""
    checkpoint_minutes: float | None = 5.0
    keep_checkpoints: bool = False
    keep_models: bool = False
    # the code the runner started with (bench/planning/code_digest.py): a worker whose code on disk differs
    # refuses its cell, and a checkpoint resumes only under the code that wrote it
    code_digest: str | None = None


@dataclass(frozen=True)
class CommonOptions:
    """What every executor is given: the worker count, the device and training step each cell
    resolves in its worker, how many GPU cells share a GPU, the data directory."""
    workers: int = 1
    device: str = "auto"
    training_step: str = "auto"
    cells_per_gpu: int | None = None
    data_dir: object = None
    keeping: Keeping = field(default_factory=Keeping)



@dataclass(frozen=True)
class Executor:
    name: str
    run: str                      # 'module:function'
    options: type                 # a dataclass of the executor's settings (each `setting()` with bounds)
    description: str
    local: bool = False           # its workers are this machine (devices are checked here)
    flags: dict = field(default_factory=dict, hash=False)   # {setting: (flag, help)} bench.run offers

    def make_options(self, values: dict | None = None):
        """Its settings: the dataclass's defaults, updated by `values` (unknown keys raise)."""
        known = {f.name for f in dataclasses.fields(self.options)}
        unknown = sorted(set(values or {}) - known)
        if unknown:
            raise ValueError(f"executor '{self.name}' has no setting {', '.join(unknown)}; valid: "
                             f"{', '.join(sorted(known)) or 'none'}")
        return self.options(**(values or {}))


EXECUTORS: dict[str, Executor] = {}


def register_executor(executor: Executor) -> Executor:
    """Make `executor` a choice of `bench.run --executor` (the same declaration again is fine)."""
    check_name("executor", executor.name)
    existing = EXECUTORS.get(executor.name)
    if existing is not None and existing != executor:
        raise ValueError(f"executor '{executor.name}' is already registered")
    if not dataclasses.is_dataclass(executor.options):
        raise ValueError(f"executor '{executor.name}': its options must be a dataclass")
    EXECUTORS[executor.name] = executor
    return executor


def get_executor(name: str) -> Executor:
    if name not in EXECUTORS:
        raise ValueError(f"unknown executor '{name}'; valid: {', '.join(EXECUTORS)} (one of your own is "
                         "registered with register_executor in a module given to --import)")
    return EXECUTORS[name]


# ------------------------------------------------------------------------------- the built-ins
@dataclass(frozen=True)
class LocalOptions:
    def check(self, common: CommonOptions, warn) -> None:
        if common.cells_per_gpu is not None and common.device == "cpu":
            warn("--cells-per-gpu has no effect with --device cpu (--workers sets how many cells run at once)")


@dataclass(frozen=True)
class RayOptions:
    address: str | None = None                  # join this Ray cluster (default: a local Ray)
    gpus_per_cell: float | None = setting(None, min=0.0)   # Ray takes fractions: 0.25 packs four cells

    def check(self, common: CommonOptions, warn) -> None:
        if common.cells_per_gpu is not None and self.gpus_per_cell is not None:
            raise ValueError("give --cells-per-gpu N (Ray then asks for 1/N GPU per cell) or --gpus-per-cell, "
                             "not both")
        if common.cells_per_gpu is not None and common.device == "cpu":
            warn("--cells-per-gpu has no effect with --device cpu (--workers sets how many cells run at once)")


@dataclass(frozen=True)
class SlurmOptions:
    partition: str | None = None
    time_minutes: int = setting(60, min=1)       # per cell
    gpus_per_cell: float | None = setting(None, min=0.0)
    cluster: str | None = None                   # submitit's: default auto; 'local' runs the array here

    def check(self, common: CommonOptions, warn) -> None:
        if common.cells_per_gpu not in (None, 1):
            raise ValueError("--cells-per-gpu packs cells on the local and Ray executors; a Slurm job "
                             "runs one cell (pack with the Ray executor on the allocation instead)")


GPUS_HELP = ("GPUs each Ray task / Slurm job asks for (Ray takes fractions, e.g. 0.25 packs four cells "
             "per GPU); default 1 for GPU cells, else 0")
register_executor(Executor("local", "bench.execution.executor:run_local", LocalOptions,
                           "processes on this machine, one cell each (forked; spawned for CUDA)", local=True))
register_executor(Executor("ray", "bench.execution.executor:run_ray", RayOptions,
                           "one Ray task per cell (pip install '.[ray]'); a local Ray, or --ray-address",
                           flags={"address": ("--ray-address", "join this Ray cluster (default: a local Ray)"),
                                  "gpus_per_cell": ("--gpus-per-cell", GPUS_HELP)}))
register_executor(Executor("slurm", "bench.execution.executor:run_slurm", SlurmOptions,
                           "a Slurm job array through submitit, one job per cell (pip install '.[slurm]')",
                           flags={"partition": ("--slurm-partition", "the Slurm partition"),
                                  "time_minutes": ("--slurm-time", "minutes per cell (default: 60)"),
                                  "gpus_per_cell": ("--gpus-per-cell", GPUS_HELP),
                                  "cluster": ("--slurm-cluster", "submitit cluster: default auto (Slurm when "
                                              "available); 'local' runs the job array on this machine")}))
