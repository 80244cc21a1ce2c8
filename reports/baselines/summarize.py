"""Print the baselines study's table (reports/baselines.md) from its committed records:
`python reports/baselines/summarize.py`."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.execution.store import ResultStore  # noqa: E402
from bench.reporting.frames import select_cells  # noqa: E402
from bench.reporting.tables import run_table  # noqa: E402

print(run_table(select_cells(ResultStore(Path(__file__).parent).records(), None)), end="")
