"""Longest cells first: the order pending cells go to the workers (bench/planning/schedule.py)."""
import heapq

from bench.planning.defaults import RELATIVE_COST
from bench.planning.grid import expand_grid
from bench.planning.profiles import resolve_profile
from bench.planning.schedule import expected_seconds, longest_first

DEFAULT_METHODS = ["finetune", "reservoir", "joint", "ocm", "ocm-dynamic"]


def makespan(seconds: list[float], workers: int = 2) -> float:
    """Wall time when each freed worker takes the next cell in order."""
    free_at = [0.0] * workers
    for s in seconds:
        heapq.heappush(free_at, heapq.heappop(free_at) + s)
    return max(free_at)


def test_without_records_the_measured_relative_costs_order_the_grid():
    cells = expand_grid(DEFAULT_METHODS, ["mini"], [0, 1, 2], resolve_profile("quick"))
    ordered = longest_first(cells, [])
    assert [c.method for c in ordered[::3]] == ["reservoir", "joint", "ocm-dynamic", "ocm", "finetune"]
    assert [c.seed for c in ordered[:3]] == [0, 1, 2]                   # ties keep the grid's order
    # the quick grid's cell times: the grid's order ends on ocm-dynamic, longest-first on finetune
    def times(order):
        return [10.4 * RELATIVE_COST[c.method] for c in order]
    shared = sum(times(cells)) / 2                                       # 170.0 s
    assert makespan(times(cells)) > 1.05 * shared                        # 178.9 s
    assert makespan(times(ordered)) < 1.01 * shared                      # 171.6 s


def test_recorded_times_come_first_and_scale_the_methods_not_yet_run():
    profile = resolve_profile("smoke")
    cells = expand_grid(["finetune", "reservoir", "ocm"], ["mini", "split-mnist"], [0], profile)
    records = [
        {"status": "done", "method": "finetune", "stream": "split-mnist", "profile_name": "smoke", "wall_seconds": 90.0, "nll": 100.0},
        {"status": "done", "method": "finetune", "stream": "split-mnist", "profile_name": "smoke", "wall_seconds": 110.0, "nll": 100.0},
        {"status": "done", "method": "ocm", "stream": "mini", "profile_name": "smoke", "wall_seconds": 50.0, "nll": 100.0},
        {"status": "failed", "method": "reservoir", "stream": "mini", "profile_name": "smoke"},
        {"status": "done", "method": "ocm", "stream": "mini", "profile_name": "quick", "wall_seconds": 900.0, "nll": 100.0},
    ]
    expected = {(c.method, c.stream): s for c in cells for k, s in expected_seconds(cells, records).items()
                if k == c.key}
    assert expected[("finetune", "split-mnist")] == 100.0                     # median of its records
    assert expected[("reservoir", "split-mnist")] == 100.0 * RELATIVE_COST["reservoir"]
    assert expected[("ocm", "mini")] == 50.0                                  # its own profile only
    assert expected[("finetune", "mini")] == 50.0 / RELATIVE_COST["ocm"]
    order = [(c.method, c.stream) for c in longest_first(cells, records)]
    assert order[:3] == [("reservoir", "split-mnist"), ("ocm", "split-mnist"), ("reservoir", "mini")]
    assert order[-1] == ("finetune", "mini")
