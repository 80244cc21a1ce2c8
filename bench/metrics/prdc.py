"""Precision, recall, density and coverage (Naeem et al. 2020, `prdc.compute_prdc`, k = 5) on the FID
features and samples (docs/metrics.md#kid-precision-recall-density-coverage); computed with FID,
under its provenance. Fractions, higher is better."""
from __future__ import annotations

from bench.metrics.fid import SAMPLE_PROVENANCE
from bench.metrics.registry import Metric, RunColumn, register_metric

# tolerances: seed stds of 0.005-0.04 on the quick main job
for name, tolerance, what in (
        ("precision", 0.05, "the fraction of samples inside the real features' k-NN balls"),
        ("recall", 0.05, "the fraction of real features inside the samples' k-NN balls"),
        ("density", 0.1, "how many real k-NN balls hold a sample, on average, over k"),
        ("coverage", 0.05, "the fraction of real features whose k-NN ball holds a sample")):
    register_metric(Metric(name, name, lower_is_better=False, provenance=SAMPLE_PROVENANCE, digits=3,
                           matrix=f"{name}_matrix", recorded=("forgetting", "bwt"), tolerance=tolerance,
                           layout=True, description=what,
                           run_table=RunColumn("P/R/D/C", place="wide", group="P/R/D/C")))
