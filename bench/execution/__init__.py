"""Execution: many cells. The result store (one atomic JSON record per cell), claims that keep
runners sharing a directory from running a cell twice, and the executors (local processes, Ray,
Slurm). Imports evaluation and planning."""

# Where cells run (bench/execution/executor.py); here, without torch, for the command line's choices.
EXECUTORS = ("local", "ray", "slurm")
