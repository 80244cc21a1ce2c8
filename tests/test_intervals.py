"""Effect sizes with intervals (bench/reporting/intervals.py and the claims table), each checked
against a hand computation or a published table."""
import math

import numpy as np
import pytest

from bench.reporting.claims import (
    CANNOT_TELL,
    HOLDS,
    STREAM_DEPENDENT,
    Claim,
    claims_frame,
    over_streams,
    verdict,
)
from bench.reporting.frames import select_cells
from bench.reporting.intervals import seeds_for_power, sign_test, stratified, t_interval, tost


def test_t_interval_by_hand():
    # d = 1, 2, 3: mean 2, sd 1, t(0.975, 2) = 4.302653 -> half-width 4.302653 / sqrt(3) = 2.484138
    mean, low, high = t_interval(np.array([1.0, 2.0, 3.0]))
    assert mean == 2.0 and low == pytest.approx(2 - 2.484138, abs=1e-6) and high == pytest.approx(2 + 2.484138, abs=1e-6)
    assert math.isnan(t_interval(np.array([4.0]))[1])


def test_equivalence_is_the_90_percent_interval_inside_the_bound():
    # d = 0.1, 0.2, -0.1: mean 0.0667, sd 0.1528, t(0.95, 2) = 2.919986 -> 90% CI [-0.191, 0.324]
    assert tost(np.array([0.1, 0.2, -0.1]), 1.0)
    assert not tost(np.array([0.1, 0.2, -0.1]), 0.3)          # 0.324 > 0.3
    assert not tost(np.array([0.5, 1.5, 1.0]), 1.0)           # mean 1: never within +-1
    assert not tost(np.array([0.2]), 1.0)                     # one seed: no interval


def test_stratified_welch_satterthwaite_by_hand():
    # streams d = (1, 2, 3) and (4, 6): means 2 and 5 -> 3.5; variance of the mean of means:
    # (1/3)/4 + (2/2)/4 = 1/3; df = (1/3)^2 / ((1/12)^2/2 + (1/4)^2/1) = 1.684211
    from scipy import stats

    mean, low, high = stratified([np.array([1.0, 2.0, 3.0]), np.array([4.0, 6.0])])
    half = stats.t.ppf(0.975, (1 / 3) ** 2 / ((1 / 12) ** 2 / 2 + (1 / 4) ** 2)) * math.sqrt(1 / 3)
    assert mean == 3.5 and low == pytest.approx(3.5 - half) and high == pytest.approx(3.5 + half)


def test_sign_test_and_power_against_published_values():
    assert sign_test(np.array([-1.0] * 9)) == (9, 9, pytest.approx(2 * 0.5 ** 9))
    assert sign_test(np.array([-1.0, 0.0, 2.0]))[:2] == (1, 2)   # ties left out
    # G*Power, paired t-test, two-sided alpha 0.05, power 0.8: d_z = 1 -> 10 pairs, 0.5 -> 34
    assert seeds_for_power(1.0, 1.0) == 10 and seeds_for_power(2.0, 1.0) == 34
    assert seeds_for_power(0.76, 5.0) == 3    # a huge effect: scipy's NaN far tail read as 0
    assert seeds_for_power(10.0, 0.1) is None   # beyond 1,000 seeds


def test_a_constant_difference_on_two_seeds_is_no_evidence():
    assert verdict(np.array([-3.0, -3.0])) == (CANNOT_TELL, pytest.approx(float("nan"), nan_ok=True))
    assert verdict(np.array([-3.0, -3.0, -3.0]))[0] == HOLDS     # three seeds: p = 0 by the limit


def record(method, stream, seed, nll):
    return {"status": "done", "profile_name": "quick", "harness_version": "0.7.0", "stream": stream,
            "method": method, "seed": seed, "needs_task_boundaries": False, "nll": nll,
            "nll_best_component": nll, "memory": 10, "components": 1, "parameters": 1, "train_seconds": 1.0,
            "eval_seconds": 1.0, "profile": {"eval_k": 16, "eval_test_per_task": 64},
            "nll_matrix": [[nll]], "key": f"{stream}{method}{seed}"}


def test_over_streams_says_stream_dependent_when_streams_decide_both_ways():
    base = {"a": [100.0, 101.0, 102.0], "b": [200.0, 201.0, 203.0], "c": [50.0, 52.0, 51.0]}
    records = []
    for stream, values in base.items():
        for seed, v in enumerate(values):
            records.append(record("ocm", stream, seed, v))
            offset = {"a": -5.0 - seed * 0.1, "b": +5.0 + seed * 0.2, "c": -0.5 + seed * 0.5}[stream]
            records.append(record("reservoir", stream, seed, v + offset))
    frame = claims_frame(select_cells(records, None), [Claim("reservoir", "ocm", "ours")])
    by_stream = frame.set_index("stream")
    assert by_stream.loc["a", "verdict"] == HOLDS and by_stream.loc["b", "verdict"] == "fails"
    summary = over_streams(frame)
    assert summary["verdict"] == STREAM_DEPENDENT and (summary["below"], summary["nonzero"]) == (4, 8)
    # the per-stream interval is the t-interval of that stream's differences
    assert by_stream.loc["a", "low"] == pytest.approx(t_interval(np.array([-5.0, -5.1, -5.2]))[1])


def test_per_image_nlls_round_trip_and_give_the_paired_image_se_by_hand():
    import torch

    from bench.evaluation.nll import encode_per_image
    from bench.metrics.nll import paired_image_se, per_image_nll

    a = torch.tensor([100.0, 102.0, 98.0, 101.0])
    b = torch.tensor([99.0, 100.0, 98.5, 99.5])   # differences 1, 2, -0.5, 1.5: sd 1.0801, / 2
    ra, rb = {"nll_per_image": encode_per_image(a)}, {"nll_per_image": encode_per_image(b)}
    assert per_image_nll(ra).tolist() == a.tolist()
    assert paired_image_se(ra, rb) == pytest.approx(np.std([1.0, 2.0, -0.5, 1.5], ddof=1) / 2)
    assert paired_image_se(ra, {}) is None and per_image_nll({}) is None   # records before 0.8.0


def test_a_cell_records_its_per_image_nlls_and_their_mean_is_its_nll():
    import dataclasses

    from bench.evaluation.cell import run_cell
    from bench.metrics.nll import per_image_nll
    from bench.planning.grid import expand_grid
    from bench.planning.profiles import resolve_profile

    profile = dataclasses.replace(resolve_profile("smoke"), max_train_per_task=64)
    record = run_cell(expand_grid(["finetune"], ["mini"], [0], profile)[0])
    values = per_image_nll(record)
    assert len(values) == sum(record["test_sizes"]) and values.mean() == pytest.approx(record["nll"], rel=1e-6)
