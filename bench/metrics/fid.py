"""FID: the Frechet distance between Gaussian fits of features of generated samples and of the
binarized test images (docs/metrics.md#fid), per task (FID[t, j]) and overall, with a bootstrap
interval; computed by bench/evaluation/fid.py, with KID and PRDC on the same features and samples
(kid.py, prdc.py), all under one provenance, `fid_info`."""
from __future__ import annotations

from bench.metrics.registry import Evaluation, Metric, Provenance, register_evaluation, register_metric

# The feature extractors FID (and KID, PRDC) can be computed on, and their dimensions: the profile's
# `fid_features` choices, bench.run's --fid-features, the features bench/evaluation/features.py builds.
FEATURE_EXTRACTORS = {"classifier": 128, "inception": 2048}

# Written by bench/evaluation/fid.py (`FIDEvaluator.full_info`): the extractor and its weights'
# hash, its training recipe, the sample count, the real images per task and overall, the Frechet
# dtype, the KID/PRDC/bootstrap settings, the test binarization seed. Informational: where a
# classifier's weights came from and its accuracy (the weights' hash is compared).
SAMPLE_PROVENANCE = Provenance("FID/KID/PRDC", "sample_provenance", "fid_info",
                               informational=("source", "test_accuracy"), older_fields=("sample_quality_info",),
                               missing="run with --fid-features classifier|inception")

register_metric(Metric(
    "fid", "FID", lower_is_better=True, provenance=SAMPLE_PROVENANCE, interval="fid_ci", matrix="fid_matrix",
    recorded=("forgetting", "bwt"), tolerance=5.0, summary_tolerance={"forgetting": 0.0}, layout=True,
    matrix_table=True, summary_digits=1, fields=("fid_offset", "fid_seconds", "sample_quality_seconds"),
    description="Frechet distance of the samples' and all test images' features after the last task"))

register_evaluation(Evaluation("sample-quality", "bench.evaluation.fid:SampleQualityEvaluation",
                               runs=lambda profile: bool(profile.fid_features),
                               metrics=("fid", "kid", "precision", "recall", "density", "coverage")))
