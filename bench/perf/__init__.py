"""`python -m bench.perf`: the harness measured against its limits (benchmarks.py)."""
