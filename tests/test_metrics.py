import math

import pytest

from bench.metrics.continual import backward_transfer, forgetting

MATRIX = [[100.0, 300.0, 310.0],
          [130.0, 110.0, 305.0],
          [150.0, 120.0, 105.0]]


def test_forgetting_is_final_minus_best_previous():
    # task 0: 150 - min(100, 130) = 50; task 1: 120 - 110 = 10
    assert forgetting(MATRIX) == 30.0


def test_backward_transfer():
    # ((100 - 150) + (110 - 120)) / 2
    assert backward_transfer(MATRIX) == -30.0


def test_forgetting_uses_the_best_not_the_first_value():
    assert forgetting([[100.0, 0], [90.0, 0], [95.0, 0]]) == 2.5  # (95 - 90 + 0) / 2


def test_single_task_is_undefined():
    assert math.isnan(forgetting([[1.0]])) and math.isnan(backward_transfer([[1.0]]))


def test_a_cell_takes_only_the_fields_each_evaluation_declares():
    """The record is built from every evaluation's fields in one step: a field its metrics do not
    declare, or one two evaluations write, is refused instead of landing silently in the record."""
    from bench.evaluation.context import merged_fields
    from bench.metrics import EVALUATIONS

    nll, quality = EVALUATIONS["nll"], EVALUATIONS["sample-quality"]
    merged = merged_fields([(nll, {"nll": 1.0, "nll_matrix": [[1.0]], "nll_info": {}}), (quality, {"fid": 2.0})])
    assert merged == {"nll": 1.0, "nll_matrix": [[1.0]], "nll_info": {}, "fid": 2.0}
    with pytest.raises(ValueError, match="evaluation 'nll' writes nll_typo, which none of its metrics"):
        merged_fields([(nll, {"nll": 1.0, "nll_typo": 3})])
    from bench.metrics import Evaluation

    another = Evaluation("another-nll", "nowhere:Nothing", metrics=("nll",))   # two families claiming one field
    with pytest.raises(ValueError, match="evaluation 'another-nll' writes nll, already written"):
        merged_fields([(nll, {"nll": 1.0}), (another, {"nll": 2.0})])


TOY_METRIC = '''
import torch

from bench.metrics import Evaluation, Metric, RunColumn, register_evaluation, register_metric

register_metric(Metric("sample_ink", "sample ink", lower_is_better=False, digits=3, layout=True,
                       run_table=RunColumn("ink"), description="mean pixel probability of 64 samples"))


class SampleInk:
    """After each task segment: the mean pixel probability of 64 samples of the model."""

    def __init__(self, context):
        self.value = None

    def after_segment(self, model, generator):
        with torch.no_grad():
            self.value = float(model.sample(64, generator).mean())

    def fields(self):
        return {"sample_ink": self.value}


register_evaluation(Evaluation("sample-ink", f"{__name__}:SampleInk", metrics=("sample_ink",)))
'''


def test_a_metric_measured_in_a_cell_is_its_module_and_shows_everywhere(tmp_path):
    """A toy metric, declared and computed in one file given to --import: bench.run's table has its
    column, bench.report its Table-1 layout, the page its section; no other file is touched."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    module = tmp_path / "sample_ink.py"
    module.write_text(TOY_METRIC)
    out = tmp_path / "results"

    def run(*args):
        done = subprocess.run([sys.executable, "-m", *args], cwd=root, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-2000:]
        return done.stdout

    table = run("bench.run", "--import", str(module), "--methods", "finetune,reservoir", "--streams", "mini",
                "--seeds", "0,1", "--profile", "smoke", "--no-progress", "--workers", "1", "--out", str(out))
    assert "ink ↑" in table.splitlines()[0]
    layout = run("bench.report", str(out), "--import", str(module), "--metric", "sample_ink")
    assert "sample ink" in layout and "reservoir" in layout
    run("bench.report", str(out), "--import", str(module), "--html")
    assert 'data-layout="sample_ink"' in (out / "report.html").read_text()
