"""The fidelity study's mechanisms: first-k, the authors' stream order, matched budgets, matched
compute, timelines and sweeps."""
import json

import pytest
import torch
from test_baselines import BatchSpy
from test_streams import write_fake_dataset

from bench.execution.store import ResultStore
from bench.planning.grid import MatchError, expand_grid, resolve_matches
from bench.planning.plan import sweep_combinations
from bench.planning.profiles import resolve_profile, split_label
from bench.report import main as report_main
from bench.run import main
from methods.core.strategy import GenerativeStrategy
from methods.finetune import FinetunePlugin
from methods.first_k import FirstKConfig, FirstKPlugin
from methods.models.vae import BernoulliVAE
from methods.ocm import DynamicOCMConfig, DynamicOCMPlugin, OCMConfig, OCMPlugin
from methods.reservoir import ReservoirConfig, ReservoirPlugin
from streams.benchmark import online_experiences, task_benchmark
from streams.stream import load_stream

SMOKE = ["--streams", "mini", "--seeds", "0", "--profile", "smoke", "--no-progress", "--workers", "1"]


def numbered_stream(batches=5, batch=8):
    """Images whose first pixel holds their stream position (so a binarized copy still shows
    which image it was: the image is all zeros except a block of ones that encodes the index)."""
    n = batches * batch
    images = torch.zeros(n, 1, 28, 28)
    for i in range(n):
        images[i, 0, i // 28, i % 28] = 1.0   # one pixel on, at position i; Bernoulli(1) = 1
    return task_benchmark([images], [images[:4]]), images


def image_ids(batch: torch.Tensor) -> list[int]:
    return batch.flatten(1).argmax(1).tolist()


def train_online(plugin, benchmark, batch=8, epochs=1, steps_per_batch=None):
    model = BatchSpy(BernoulliVAE())
    strategy = GenerativeStrategy(model=model, optimizer=torch.optim.Adam(model.parameters(), 1e-3),
                                  train_mb_size=batch, train_epochs=epochs, plugins=[plugin],
                                  steps_per_batch=steps_per_batch)
    per_batch = []
    for task in benchmark.train_stream:
        for experience in online_experiences(task, batch):
            before = len(model.batches)
            strategy.train(experience)
            per_batch.append(sorted(i for b in model.batches[before:] for i in image_ids(b)))
    return strategy, per_batch


@pytest.mark.parametrize("train_incoming", [False, True])
def test_first_k_keeps_the_first_k_images_in_order_and_trains_on_the_memory_once_full(train_incoming):
    benchmark, images = numbered_stream(batches=5, batch=8)
    plugin = FirstKPlugin(FirstKConfig(budget=20, train_incoming=train_incoming))
    _, seen = train_online(plugin, benchmark)
    assert torch.equal(plugin.memory, images[:20])           # exactly the first 20, in order
    assert plugin.memory_size == 20 and plugin.memory_peak == 20
    assert seen[0] == list(range(8)) and seen[1] == list(range(16))   # growing: all kept so far
    # batch 3 (images 16-23): 16-19 fit, 20-23 are cut off
    assert seen[2] == (list(range(24)) if train_incoming else list(range(20)))
    for b in (3, 4):   # full: the memory only, or memory + the whole incoming batch
        incoming = list(range(8 * b, 8 * b + 8))
        assert seen[b] == (list(range(20)) + incoming if train_incoming else list(range(20)))


def test_sorted_order_has_non_decreasing_labels_and_the_same_images(tmp_path):
    write_fake_dataset(tmp_path / "mnist", per_class_train=30)
    shuffled = load_stream("split-mnist", tmp_path, verify=False)
    ordered = load_stream("split-mnist-sorted", tmp_path, verify=False)
    for t in range(5):
        for limit in (None, 17):
            a, b = shuffled.train_order(t, 3, limit), ordered.train_order(t, 3, limit)
            labels = shuffled.tasks[t].train_labels[b]
            assert (labels[1:] >= labels[:-1]).all()                   # sorted by class
            assert sorted(a.tolist()) == sorted(b.tolist())            # the same images
            assert not torch.equal(shuffled.tasks[t].train_labels[a], labels)   # shuffled is mixed
        # the same fixed test set as the shuffled stream
        assert torch.equal(shuffled.test_images(t), ordered.test_images(t))
    mini_sorted = load_stream("mini-sorted")
    images = mini_sorted.train_images(0, seed=0)
    assert len(images) == 800 and images.shape[1:] == (1, 28, 28)


def test_sorted_variants_are_listed_and_keyed(capsys):
    assert main(["--list"]) == 0
    listed = capsys.readouterr().out
    assert "split-mnist-sorted" in listed and "mini-sorted" in listed and "first-k" in listed
    profile = resolve_profile("smoke")
    a, b = expand_grid(["ocm"], ["mini", "mini-sorted"], [0], profile)
    assert a.key != b.key and a.method_config == b.method_config


def test_matched_budget_resolves_to_the_reference_cells_peak_memory(tmp_path, capsys):
    out = tmp_path / "r"
    methods = "ocm,reservoir[budget=match:ocm],first-k[budget=match:ocm]"
    assert main(SMOKE + ["--methods", methods, "--out", str(out)]) == 0
    table = capsys.readouterr().out
    by_label = {r["method_label"]: r for r in ResultStore(out).records()}
    peak = by_label["ocm"]["memory_peak"]
    assert peak > by_label["ocm"]["memory"] > 0          # the STM is full just before a selection
    for label in ("reservoir[budget=match:ocm]", "first-k[budget=match:ocm]"):
        record = by_label[label]
        assert record["method_config"]["budget"] == peak and record["matched"] == {"budget": "ocm"}
        assert record["memory"] == peak                      # it filled the matched budget
        assert f"{label} = {peak}" in table                  # the table's label names the number
    # the resolved number is in the key: a different reference memory is a different cell
    cell = next(c for c in expand_grid(["reservoir[budget=match:ocm]"], ["mini"], [0], resolve_profile("smoke")))
    records = ResultStore(out).records()
    resolved = resolve_matches(cell, records)
    assert resolved.key == by_label["reservoir[budget=match:ocm]"]["key"]
    changed = [dict(r, memory_peak=peak + 1) if r["method"] == "ocm" else r for r in records]
    assert resolve_matches(cell, changed).key != resolved.key


def test_matched_budget_without_its_reference_fails_clearly(tmp_path, capsys):
    # not in the grid and no record: refused before anything runs
    assert main(SMOKE + ["--methods", "reservoir[budget=match:ocm]", "--out", str(tmp_path / "a")]) == 2
    err = capsys.readouterr().err
    assert "budget=match:ocm needs a finished record of 'ocm' on mini, seed 0" in err
    assert not (tmp_path / "a" / "records").exists()
    with pytest.raises(MatchError, match="needs a finished record of 'ocm'"):
        cell = expand_grid(["reservoir"], ["mini"], [0], resolve_profile("smoke", ["reservoir.budget=match:ocm"]))[0]
        resolve_matches(cell, [])
    # an unknown reference method lists the valid ones
    assert main(SMOKE + ["--methods", "reservoir[budget=match:nope]", "--out", str(tmp_path / "b")]) == 2
    assert "valid methods:" in capsys.readouterr().err


def test_matched_compute_gives_every_method_the_same_step_count():
    steps = {}
    for plugin in (FinetunePlugin(), ReservoirPlugin(ReservoirConfig(budget=30)),
                   FirstKPlugin(FirstKConfig(budget=20)), OCMPlugin(OCMConfig(stm_capacity=16))):
        benchmark, _ = numbered_stream(batches=6, batch=8)
        strategy, seen = train_online(plugin, benchmark, steps_per_batch=3)
        steps[plugin.name] = strategy.clock.train_iterations
        assert all(len(s) > 0 for s in seen)
    assert set(steps.values()) == {6 * 3}
    # while the paper's schedule (E passes over batch + memory) differs by method
    benchmark, _ = numbered_stream(batches=6, batch=8)
    paper = train_online(ReservoirPlugin(ReservoirConfig(budget=30)), benchmark)[0].clock.train_iterations
    assert paper > 6 * 3


def test_matched_compute_in_the_grid_records_equal_steps(tmp_path):
    out = tmp_path / "r"
    assert main(SMOKE + ["--methods", "finetune,reservoir,ocm,joint", "--set", "steps_per_batch=2",
                         "--out", str(out)]) == 0
    records = ResultStore(out).records()
    batches = sum((n + 63) // 64 for n in records[0]["train_sizes"])
    assert {r["gradient_steps"] for r in records} == {2 * batches}
    for r in records:
        assert r["images_trained"] >= r["gradient_steps"] and r["stream_length"] == sum(r["train_sizes"])


def test_ocm_timeline_has_one_entry_per_selection():
    benchmark, _ = numbered_stream(batches=12, batch=8)
    plugin = OCMPlugin(OCMConfig(stm_capacity=16))
    train_online(plugin, benchmark)
    assert len(plugin.timeline) == plugin.selections == 4     # after batches 3, 6, 9, 12 (|STM| 24 > 16)
    assert [e["position"] for e in plugin.timeline] == [24, 48, 72, 96]
    assert all(e["stm"] == 24 for e in plugin.timeline)
    ltm = [e["ltm"] for e in plugin.timeline]
    assert ltm == sorted(ltm) and ltm[-1] == len(plugin.ltm)
    assert [e["added"] for e in plugin.timeline] == [b - a for a, b in zip([8] + ltm, ltm)]


def test_dynamic_ocm_timeline_marks_its_expansions():
    benchmark, _ = numbered_stream(batches=12, batch=8)
    plugin = DynamicOCMPlugin(DynamicOCMConfig(stm_capacity=16, lambda2=-1.0, expansion_k=2, max_components=3))
    strategy, _ = train_online(plugin, benchmark)
    expanded = [e for e in plugin.timeline if e["expanded"]]
    assert len(plugin.timeline) == 4 and len(expanded) == plugin.expansions == 2   # capped at 3 components
    assert [e["components"] for e in plugin.timeline] == [1, 2, 3, 3]
    assert all(isinstance(e["r"], float) for e in plugin.timeline)


def test_sweep_runs_every_combination_under_its_own_label(tmp_path, capsys):
    assert sweep_combinations(["epochs=1,2", "lr=0.1,0.2"]) == [
        ["epochs=1", "lr=0.1"], ["epochs=1", "lr=0.2"], ["epochs=2", "lr=0.1"], ["epochs=2", "lr=0.2"]]
    assert split_label("quick[epochs=3,lr=0.0001]") == ("quick", {"epochs": "3", "lr": "0.0001"})
    # the label is the same whatever the order the settings were given in
    assert (resolve_profile("quick", ["lr=0.1", "epochs=2"]).name
            == resolve_profile("quick", ["epochs=2", "lr=0.1"]).name == "quick[epochs=2,lr=0.1]")
    out = tmp_path / "s"
    assert main(SMOKE + ["--methods", "finetune,reservoir", "--sweep", "epochs=1,2", "--out", str(out)]) == 0
    records = ResultStore(out).records()
    assert sorted((r["method"], r["profile_name"], r["profile"]["epochs"]) for r in records) == [
        ("finetune", "smoke[epochs=1]", 1), ("finetune", "smoke[epochs=2]", 2),
        ("reservoir", "smoke[epochs=1]", 1), ("reservoir", "smoke[epochs=2]", 2)]
    steps = {(r["method"], r["profile"]["epochs"]): r["gradient_steps"] for r in records}
    assert steps[("finetune", 2)] == 2 * steps[("finetune", 1)]
    capsys.readouterr()
    assert report_main([str(out), "--sweep", "epochs", "--figures"]) == 0
    table = capsys.readouterr().out
    header = table.splitlines()[0].split()
    assert header[-2:] == ["1", "2"]
    nll = {(r["method"], r["profile"]["epochs"]): r["nll"] for r in records}
    assert f"{nll[('reservoir', 2)]:.2f}" in next(line for line in table.splitlines() if "reservoir" in line)
    assert (out / "figures" / "sweep-epochs-mini.png").exists()
    assert report_main([str(out), "--sweep", "lr"]) == 2   # no record of a sweep over lr


def test_report_figures_draw_timelines(tmp_path):
    out = tmp_path / "t"
    assert main(SMOKE + ["--methods", "ocm-dynamic", "--out", str(out)]) == 0
    record = ResultStore(out).records()[0]
    assert len(record["timeline"]) == record["selections"] > 0
    assert json.dumps(record["timeline"])   # plain JSON
    assert report_main([str(out), "--figures"]) == 0
    assert list((out / "figures").glob("timeline-mini-*.png"))
