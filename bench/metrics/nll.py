"""NLL: the IWAE estimate of -log p(x) in nats (docs/metrics.md#nll-the-iwae-estimate), the mixture's
(the primary number) and the paper's best-component score, each with its per-task matrix
NLL[t, j]; computed by bench/evaluation/nll.py after every task segment."""
from __future__ import annotations

from bench.metrics.registry import Evaluation, Metric, Provenance, register_evaluation, register_metric


def implied_nll_info(record: dict) -> dict:
    """What a record older than `nll_info` was computed with: its profile's IWAE-K on its test
    images, float32, the stream's test binarization seed of that harness version."""
    from streams import STREAMS

    return {"estimator": f"IWAE-{(record.get('profile') or {}).get('eval_k')}",
            "test_images": record.get("test_sizes"), "dtype": "float32",
            "binarization_seed": getattr(STREAMS.get(str(record.get("stream"))), "test_binarization_seed", None)}


# Written by bench/evaluation/nll.py: the estimator (IWAE-K), the test images per task, the test
# binarization seed, the dtype, and the evaluator's decoder form, which is informational (the C
# kernel and the torch form agree to float rounding: tests/test_native_kernel.py).
NLL_PROVENANCE = Provenance("NLL", "nll_provenance", "nll_info", informational=("decoder_form",),
                            implied=implied_nll_info)

register_metric(Metric(
    "nll", "NLL (nats)", lower_is_better=True, provenance=NLL_PROVENANCE, short="NLL", unit="nats",
    matrix="nll_matrix", recorded=("forgetting", "bwt"),
    # 2 nats is about 5 seeds' standard error on the smoke grid; forgetting moves more
    tolerance=2.0, summary_tolerance={"forgetting": 5.0}, layout=True, matrix_table=True,
    fields=("nll_decoder_form", "eval_seconds"),
    description="IWAE estimate of -log p(x) on the union of all test sets after the last task, the "
                "mixture's -log sum_c w_c p_c(x) (nats)"))
register_metric(Metric(
    "nll_best_component", "best-component NLL (nats)", lower_is_better=True, provenance=NLL_PROVENANCE,
    short="best-component NLL", unit="nats", matrix="nll_best_component_matrix", tolerance=2.0, layout=True,
    fields=("nll_best_component_se",),
    description="the paper's score: -max_c log p_c(x) per image, then the mean (nats)"))
register_metric(Metric(
    "nll_se", "NLL standard error (nats)", lower_is_better=True, provenance=NLL_PROVENANCE, unit="nats",
    description="the final NLL's sampling error over the test images: std / sqrt(images) (nats)"))

register_evaluation(Evaluation("nll", "bench.evaluation.nll:NLLEvaluation",
                               metrics=("nll", "nll_best_component", "nll_se")))
