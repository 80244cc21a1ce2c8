"""Execution: many cells. The result store (one atomic JSON record per cell), claims that keep
runners sharing a directory from running a cell twice, and the executors (local processes, Ray,
Slurm). Imports evaluation and planning."""
