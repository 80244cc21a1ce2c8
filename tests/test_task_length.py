"""Settings that mean "one task's length" resolve from the stream that actually runs."""
import dataclasses

import pytest

from bench.evaluation.cell import run_cell
from bench.planning.grid import expand_grid
from bench.planning.profiles import resolve_profile
from bench.planning.validate import SettingError
from methods.core.task_length import require_count, resolve_task_lengths, task_length_fields, task_multiple
from methods.curl import CURLConfig
from methods.limix import LIMixConfig


def test_task_length_fields_are_declared_by_the_configs():
    assert task_length_fields(CURLConfig) == ("burn_in", "spacing", "refresh_images")
    assert task_length_fields(LIMixConfig) == ("replay_samples",)
    assert CURLConfig().refresh_images == "task" and LIMixConfig().replay_samples == "task"


def test_resolution_of_task_and_multiples():
    assert task_multiple("task") == 1.0 and task_multiple("task*2.5") == 2.5 and task_multiple(300) is None
    for bad in ("tasks", "task*0", "task*-1", "task*x", "12k", True):
        with pytest.raises(ValueError):
            task_multiple(bad)
    config = resolve_task_lengths(CURLConfig(refresh_images="task*1.5"), 4000)
    assert config.refresh_images == 6000
    assert resolve_task_lengths(CURLConfig(refresh_images=700), 4000).refresh_images == 700
    assert resolve_task_lengths(LIMixConfig(), 800).replay_samples == 800
    # CURL's waits: the authors' 100 of 10,000 steps per class period, 1% of a task
    assert (resolve_task_lengths(CURLConfig(), 4000).burn_in, resolve_task_lengths(CURLConfig(), 12000).spacing) == (40, 120)
    with pytest.raises(ValueError, match="one task's length"):
        require_count(CURLConfig(), "refresh_images")


def test_task_length_settings_parse_from_the_command_line():
    profile = resolve_profile("quick", ["curl.refresh_images=task*2", "limix.replay_samples=500"])
    assert profile.methods["curl"]["refresh_images"] == "task*2"
    assert profile.methods["limix"]["replay_samples"] == 500
    with pytest.raises(SettingError, match="image count or 'task'"):
        resolve_profile("quick", ["curl.refresh_images=often"])


def subsampled(method: str, per_task: int):
    profile = dataclasses.replace(resolve_profile("smoke"), max_train_per_task=per_task)
    return expand_grid([method], ["mini"], [0], profile)[0]


@pytest.mark.parametrize("per_task", [128, 192])
def test_curl_takes_one_snapshot_per_subsampled_task(per_task):
    """On `mini` cut to `per_task` images per task, CURL's period is that length: one snapshot at
    the end of each of the 5 tasks. A fixed 12,000 (the old per-stream number) would take none."""
    cell = subsampled("curl", per_task)
    assert cell.method_config["refresh_images"] == "task"
    record = run_cell(cell)
    assert record["status"] == "done", record.get("traceback")
    assert record["train_sizes"] == [per_task] * 5
    wait = round(0.01 * per_task)   # the waits: 1% of a task
    assert record["resolved_settings"] == {"burn_in": wait, "spacing": wait, "refresh_images": per_task}
    assert record["snapshots"] == 5


def test_limix_replays_one_subsampled_task_of_samples():
    record = run_cell(subsampled("limix[threshold=1e9]", 128))
    assert record["status"] == "done", record.get("traceback")
    assert record["resolved_settings"] == {"replay_samples": 128}
    # threshold 1e9: every task after the first reuses component 0 and replays 128 of its samples
    assert record["replay_generated"] == 4 * 128


def test_curl_expands_where_its_buffer_of_poorly_explained_samples_fills():
    """CURL's waits follow the stream (1% of a task: 3 images of a 256-image task, resolved in the
    record), so the threshold decides when it expands. Nothing is poorly explained: no expansion.
    Everything is: an expansion as soon as the buffer can fill (two batches after each wait). The
    authors' -200 nats: the well explained samples are passed over, so the buffer fills later."""
    def expansions(threshold):
        record = run_cell(subsampled(f"curl[threshold={threshold}]", 256))
        assert record["status"] == "done", record.get("traceback")
        assert record["resolved_settings"]["burn_in"] == record["resolved_settings"]["spacing"] == 3
        return record["components"], [(e["position"], e["eligible_from"]) for e in record["timeline"]]

    assert expansions(-1e9) == (1, [])
    components_all, all_poor = expansions(1e9)
    components, default = expansions(-200)
    assert components_all == len(all_poor) + 1 and components == len(default) + 1 >= 3
    for position, eligible_from in all_poor + default:
        assert position >= eligible_from + 128   # the buffer of 100 takes two batches of 64 at least
    waited = sum(p - e for p, e in default) / len(default)
    assert waited > sum(p - e for p, e in all_poor) / len(all_poor)
