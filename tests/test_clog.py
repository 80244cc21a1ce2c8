"""CLoG's summaries of a per-task matrix (bench/metrics/clog.py): their definitions on a hand
matrix, the direction of a higher-is-better metric, and that the registry alone puts them in the
reports (a layout, summary.csv's columns) without writing anything into records."""
import math

import pytest

from bench.metrics import METRICS, SUMMARIES, columns, record_fields, report_layouts
from bench.metrics.clog import (
    average_final_quality,
    average_incremental_quality,
    forgetting_rate,
    step_averages,
)
from bench.metrics.continual import backward_transfer
from bench.reporting.frames import select_cells, summary_frame
from bench.reporting.tables import build_report
from synthetic_records import grid

# a[t, j]: rows = after task t, columns = task j (entries above the diagonal: tasks not learned yet)
FID = [[10.0, 90.0, 95.0],
       [14.0, 20.0, 99.0],
       [18.0, 26.0, 30.0]]


def test_the_definitions_on_a_hand_matrix():
    assert step_averages(FID) == [10.0, 17.0, pytest.approx(74 / 3)]   # only tasks learned so far
    assert average_incremental_quality(FID) == pytest.approx((10 + 17 + 74 / 3) / 3)
    assert average_final_quality(FID) == pytest.approx(74 / 3)
    # FR: (a[T, 1] - a[1, 1] + a[T, 2] - a[2, 2]) / (T - 1) = ((18 - 10) + (26 - 20)) / 2
    assert forgetting_rate(FID) == 7.0
    assert forgetting_rate(FID) == -backward_transfer(FID)   # for a lower-is-better metric


def test_a_higher_is_better_metric_forgets_with_a_positive_rate_too():
    precision = [[0.9, 0.0], [0.6, 0.8]]   # task 1 fell from 0.9 to 0.6
    assert forgetting_rate(precision, lower_is_better=False) == pytest.approx(0.3)
    assert average_incremental_quality(precision, False) == pytest.approx((0.9 + 0.7) / 2)
    column = columns()["fr_precision"]
    assert column.lower_is_better and not columns()["aiq_precision"].lower_is_better


def test_one_task_has_no_forgetting_rate():
    assert math.isnan(forgetting_rate([[5.0]])) and average_final_quality([[5.0]]) == 5.0


def test_declared_as_summaries_read_from_the_matrix_not_written():
    assert [SUMMARIES[n].recorded for n in ("aiq", "afq", "fr")] == [False] * 3
    assert "clog" in report_layouts()
    written = set(record_fields())   # what records hold: no CLoG column of any metric
    assert not {f"{n}_{m}" for n in ("aiq", "afq", "fr") for m in METRICS} & written
    assert {"forgetting_nll", "bwt_fid"} <= written   # the recorded summaries are there


def test_the_clog_layout_and_summary_columns_come_from_the_registry():
    records = grid(methods=["finetune", "ocm"], seeds=(0, 1))
    cells = select_cells(records, None)
    expected = [average_incremental_quality(r["nll_matrix"]) for r in records if r["method"] == "ocm"]
    ocm = summary_frame(cells).set_index("method").loc["ocm"]
    assert ocm["aiq_nll_mean"] == pytest.approx(sum(expected) / 2)
    assert {"afq_fid_mean", "fr_kid_mean", "aiq_precision_std"} <= set(summary_frame(cells).columns)
    text = build_report(records, "clog", "text")
    # each stream's header names what its packed cells hold, in order
    assert text.splitlines()[0].split() == ["method", "mini", "(NLL:", "AIQ", "/", "AFQ", "/", "FR;", "FID:", "AIQ",
                                            "/", "AFQ", "/", "FR)"]
    assert "AIQ" in text and "forgetting rate" in text
    # NLL's AIQ / AFQ / FR; then FID's (the records have FID)
    row = next(line for line in text.splitlines() if line.startswith("ocm"))
    assert row.count(" / ") == 4 and ";" in row
