"""KID: torchmetrics' unbiased polynomial-kernel MMD^2 on the FID features and samples, mean over
random subsets (docs/metrics.md#kid-precision-recall-density-coverage); computed with FID
(bench/evaluation/fid.py, sample_quality.py), under its provenance."""
from __future__ import annotations

from bench.metrics.fid import SAMPLE_PROVENANCE
from bench.metrics.registry import Metric, RunColumn, register_metric

# Its scale is the features': on the classifier features the quick main job's KIDs are 1,000-3,600
# with seed stds of 50-150 (use --tolerance kid=0.005 on Inception features, where KID is about 0.01).
register_metric(Metric(
    "kid", "KID", lower_is_better=True, provenance=SAMPLE_PROVENANCE, digits=None, interval="kid_ci",
    matrix="kid_matrix", recorded=("forgetting", "bwt"), tolerance=250.0, layout=True, fields=("kid_std",),
    description="unbiased polynomial-kernel MMD^2 of the samples' and all test images' features",
    run_table=RunColumn("KID", place="wide")))
