"""`python -m bench.perf`: see bench/perf/benchmarks.py."""
import sys

from bench.perf.benchmarks import main

sys.exit(main())
