import math

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
