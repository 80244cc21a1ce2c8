"""NLL: the IWAE estimate of -log p(x) in nats (docs/metrics.md#nll-the-iwae-estimate), the mixture's
(the primary number) and the paper's best-component score, each with its per-task matrix
NLL[t, j]; computed by bench/evaluation/nll.py after every task segment."""
from __future__ import annotations

import typing

if typing.TYPE_CHECKING:
    import numpy as np

from bench.metrics.registry import (
    Evaluation,
    Metric,
    Provenance,
    RunColumn,
    register_evaluation,
    register_metric,
)


def implied_nll_info(record: dict) -> dict:
    """What a record older than `nll_info` was computed with: its profile's IWAE-K on its test
    images, float32, the stream's test binarization seed of that harness version."""
    from streams import STREAMS

    return {"estimator": f"IWAE-{(record.get('profile') or {}).get('eval_k')}",
            "test_images": record.get("test_sizes"), "dtype": "float32",
            "binarization_seed": getattr(STREAMS.get(str(record.get("stream"))), "test_binarization_seed", None)}


def joined(values) -> str:
    return ", ".join(dict.fromkeys(str(v) for v in values))


def scored_images_text(cells) -> str:
    """'up to 500 test images per task' / 'all test images', from the cells' profiles."""
    per_task = {None if v != v else int(v) for v in cells["eval_test_per_task"]}   # v != v: NaN, all of them
    if per_task == {None}:
        return "all test images"
    return "up to " + joined(sorted(v for v in per_task if v is not None)) + " test images per task" + (
        " (all, for some profiles)" if None in per_task else "")


def nll_caption(cells) -> str:
    """The NLL's protocol, for every caption (the mixture weights' clause is the caption's: the
    methods say what their weights are)."""
    k = joined(sorted(int(v) for v in cells["eval_k"].unique()))
    return (f"NLL = IWAE-{k} estimate of -log p(x) in nats on {scored_images_text(cells)}, test sets "
            "binarized once with a fixed seed per stream, training data dynamically binarized")


def per_image_nll(record) -> np.ndarray | None:
    """A record's final per-image NLLs (float32, the test sets' order), None for records before
    they were stored (harness 0.8.0)."""
    import base64

    import numpy as np

    data = record.get("nll_per_image")
    if not data:
        return None
    return np.frombuffer(base64.b64decode(data), dtype="<f4").astype(np.float64)


def paired_image_se(a, b) -> float | None:
    """The test-image standard error of the difference of two cells' NLLs on the same images:
    std over images of (NLL_a - NLL_b) / sqrt(images); None without per-image NLLs on both or on
    different images."""
    x, y = per_image_nll(a), per_image_nll(b)
    if x is None or y is None or len(x) != len(y) or len(x) < 2:
        return None
    return float((x - y).std(ddof=1) / len(x) ** 0.5)


# Written by bench/evaluation/nll.py: the estimator (IWAE-K), the test images per task, the test
# binarization seed, the dtype, and the evaluator's decoder form, which is informational (the C
# kernel and the torch form agree to float rounding: tests/test_native_kernel.py).
NLL_PROVENANCE = Provenance("NLL", "nll_provenance", "nll_info", informational=("decoder_form",),
                            implied=implied_nll_info, caption=nll_caption)

register_metric(Metric(
    "nll", "NLL (nats)", lower_is_better=True, provenance=NLL_PROVENANCE, short="NLL", unit="nats",
    matrix="nll_matrix", recorded=("forgetting", "bwt"),
    # 2 nats is about 5 seeds' standard error on the smoke grid; forgetting moves more
    tolerance=2.0, summary_tolerance={"forgetting": 5.0}, layout=True, matrix_table=True,
    fields=("nll_decoder_form", "eval_seconds", "nll_per_image"),
    description="IWAE estimate of -log p(x) on the union of all test sets after the last task, the "
                "mixture's -log sum_c w_c p_c(x) (nats)",
    run_table=RunColumn("NLL (nats)"), primary=True, paper=True, headline=True, heatmap=True,
    summary_run_table={"forgetting": RunColumn("forgetting", drop=2), "bwt": RunColumn("BWT", place="wide")}))
register_metric(Metric(
    "nll_best_component", "best-component NLL (nats)", lower_is_better=True, provenance=NLL_PROVENANCE,
    short="best-component NLL", unit="nats", matrix="nll_best_component_matrix", tolerance=2.0, layout=True,
    paper=True,
    fields=("nll_best_component_se",),
    description="the paper's score: -max_c log p_c(x) per image, then the mean (nats)",
    run_table=RunColumn("best comp.", wide_header="NLL best comp.", drop=3),
    # only where some row is a mixture: for one component it is the NLL
    shown_when=lambda summary: bool((summary["components_mean"] > 1).any()),
    not_shown="no mixture in these records (every model has one component), so it equals the NLL"))
register_metric(Metric(
    "nll_se", "NLL standard error (nats)", lower_is_better=True, provenance=NLL_PROVENANCE, unit="nats",
    description="the final NLL's sampling error over the test images: std / sqrt(images) (nats)",
    run_table=RunColumn("SE", place="wide", hidden_as="the NLL's SE")))

register_evaluation(Evaluation("nll", "bench.evaluation.nll:NLLEvaluation",
                               metrics=("nll", "nll_best_component", "nll_se")))
