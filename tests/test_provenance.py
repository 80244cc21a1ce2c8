"""Provenance by construction: every setting the evaluation writes in `nll_info` and `fid_info`
(the provenances the metric registry declares, bench/metrics) is compared; changing any one of them
in one seed's record makes the report refuse to mix, and the gate refuse to compare it with a
reference computed the other way."""
import copy
import json

import pytest

from bench.check import reference_from, refuse_other_provenance
from bench.metrics import provenances
from bench.metrics.fid import SAMPLE_PROVENANCE
from bench.metrics.nll import NLL_PROVENANCE
from bench.reporting.frames import ReportError, select_cells

FID_INFO = {   # as bench/evaluation/fid.py writes it (a quick-profile Split-Fashion cell)
    "bootstrap": {"interval": "percentile", "level": 0.95, "reps": 200, "seed": 0,
                  "resampled": "generated and real features, with replacement"},
    "dataset": "fashion", "dim": 128, "extractor": "classifier", "frechet_dtype": "float64",
    "kid": {"coef": 1.0, "degree": 3, "dtype": "float32", "gamma": "1/dim", "seed": 0,
            "implementation": "torchmetrics.image.kid.poly_mmd", "subset_size": 1000,
            "subset_size_used": [500, 500, 1000], "subsets": 10},
    "prdc": {"implementation": "prdc 0.2 compute_prdc", "nearest_k": 5},
    "protocol": "unconditional samples vs each task's binarized test set",
    "real_overall": 1000, "real_per_task": [500, 500], "samples": 1000,
    "recipe": {"batch_size": 64, "lr": 0.001, "seed": 0, "steps": 1500, "storage": "float16"},
    "source": "shipped (fashion.pt, sha256 d55c2a3581086529)", "test_accuracy": 0.8391,
    "test_binarization_seed": 1003, "weights_sha256": "9a60a69d7ce2da9d"}
NLL_INFO = {"estimator": "IWAE-100", "test_images": [500, 500], "binarization_seed": 1003,
            "dtype": "float32", "decoder_form": "native C kernel"}


def record(seed):
    return {"status": "done", "profile_name": "quick", "harness_version": "0.7.0", "stream": "split-fashion",
            "method": "ocm", "seed": seed, "needs_task_boundaries": False, "nll": 250.0 + seed,
            "nll_best_component": 250.0, "forgetting_nll": 1.0, "bwt_nll": -1.0, "memory": 500,
            "components": 1, "parameters": 1, "train_seconds": 1.0, "eval_seconds": 1.0,
            "profile": {"eval_k": 100, "eval_test_per_task": 500}, "nll_matrix": [[250.0]],
            "fid": 70.0, "kid": 1000.0, "nll_info": copy.deepcopy(NLL_INFO), "fid_info": copy.deepcopy(FID_INFO)}


def settings(info: dict, prefix=()):
    """Every leaf setting of an info dict (path, value), seeds aside."""
    for key, value in info.items():
        if key == "seed":
            continue
        if isinstance(value, dict):
            yield from settings(value, (*prefix, key))
        else:
            yield (*prefix, key), value


def changed(value):
    if isinstance(value, bool):
        return not value
    if isinstance(value, (int, float)):
        return value + 1
    if isinstance(value, list):
        return [*value, 1]
    return f"{value} (other)"


def with_setting(info: dict, path: tuple, value) -> None:
    for key in path[:-1]:
        info = info[key]
    info[path[-1]] = value


def test_the_registry_declares_the_two_provenances_the_evaluation_writes():
    assert [p.field for p in provenances()] == ["nll_info", "fid_info"]


@pytest.mark.parametrize("provenance", [SAMPLE_PROVENANCE, NLL_PROVENANCE], ids=lambda p: p.field)
def test_every_written_setting_is_compared(provenance):
    field, informational = provenance.field, provenance.informational
    base = [record(0), record(1)]
    select_cells(base, None)   # the same settings: no complaint
    checked = 0
    for path, value in settings(base[0][field]):
        other = copy.deepcopy(base)
        with_setting(other[1][field], path, changed(value))
        if path[0] in informational:
            select_cells(other, None)   # not a provenance setting: mixed freely
            continue
        with pytest.raises(ReportError, match="computed differently"):
            select_cells(other, None)
        checked += 1
    assert checked >= (14 if field == "fid_info" else 4)


@pytest.mark.parametrize("provenance", [SAMPLE_PROVENANCE, NLL_PROVENANCE], ids=lambda p: p.field)
def test_the_gate_refuses_a_reference_computed_with_any_other_setting(provenance):
    """The reference's provenance column is the registry's: each written setting changed in the
    current records (both seeds) makes the gate refuse the comparison (exit 2), not call it a
    regression; an informational one does not."""
    field, informational = provenance.field, provenance.informational
    reference = reference_from(select_cells([record(0), record(1)], None))
    assert reference["provenance"].notna().all()
    refuse_other_provenance(reference_from(select_cells([record(0), record(1)], None)), reference)
    checked = 0
    for path, value in settings(record(0)[field]):
        now = [record(0), record(1)]
        for r in now:
            with_setting(r[field], path, changed(value))
        current = reference_from(select_cells(now, None))
        if path[0] in informational:
            refuse_other_provenance(current, reference)
            continue
        with pytest.raises(ReportError, match="computed differently from the reference"):
            refuse_other_provenance(current, reference)
        checked += 1
    assert checked >= (14 if field == "fid_info" else 4)


def test_the_cells_random_seeds_are_not_provenance():
    records = [record(0), record(1)]
    records[1]["fid_info"]["kid"]["seed"] = 1
    records[1]["fid_info"]["bootstrap"]["seed"] = 1
    assert len(select_cells(records, None)) == 2
    assert json.loads(select_cells(records, None)["sample_provenance"].iloc[0])["real_per_task"] == [500, 500]
