"""The benchmark harness, in layers (docs/architecture.md): planning -> evaluation -> execution,
and reporting; the command-line tools (run, report, check, status, faults, perf, cli) on top."""
# Part of every cell's key; raised whenever the same cell would give different numbers, so that
# old and new records are never mixed. What changed in each version: CHANGELOG.md.
HARNESS_VERSION = "0.7.0"
