"""Registered names follow one rule, checked where they are registered (streams/names.py), because
they become file names, labels and command-line words: a careless name is refused at once, with
the rule, and never reaches the disk."""
import pytest

from bench.execution.store import ResultStore
from bench.metrics.registry import Metric, MetricRegistrationError, register_metric
from bench.planning.grid import expand_grid
from bench.planning.profiles import resolve_profile
from bench.run import main
from streams.datasets import NpzDataset, register_dataset
from streams.names import RULE, RegisteredNameError, check_name
from streams.registry import STREAMS, register_stream

BAD_NAMES = ["a/b", "ocm ", "", "A B", "../up", "win<b>dow</b>", "a__b", "all", "x.y", "a,b", "r[budget=1]"]

METHOD_FILE = '''
from dataclasses import dataclass
from methods import GenerativePlugin, register_method

@dataclass(frozen=True)
class Config:
    size: int = 3

@register_method({name!r}, Config, "a test method")
class Plugin(GenerativePlugin):
    pass
'''

STREAM_FILE = '''
from streams import register_stream
register_stream({name!r}, ["mini"], [[0, 1], [2, 3]])
'''


@pytest.fixture
def stream_guard():
    before = dict(STREAMS)
    yield
    STREAMS.clear()
    STREAMS.update(before)


@pytest.mark.parametrize("name", BAD_NAMES)
def test_the_rule_refuses_names_that_would_break_a_path_a_label_or_the_command_line(name):
    with pytest.raises(RegisteredNameError, match="not valid|reserved"):
        check_name("method", name)


@pytest.mark.parametrize("name", ["ocm", "ocm-iw50", "split-mnist-sorted", "nll_best_component", "a1"])
def test_the_rule_accepts_every_name_the_harness_ships(name):
    assert check_name("method", name) == name


@pytest.mark.parametrize("template, kind", [(METHOD_FILE, "method"), (STREAM_FILE, "stream")])
@pytest.mark.parametrize("name", ["a/b", "ocm ", "", "A B"])
def test_import_of_a_file_registering_a_bad_name_exits_2_with_the_rule(
        tmp_path, capsys, registry_guard, stream_guard, template, kind, name):
    path = tmp_path / "careless.py"
    path.write_text(template.format(name=name))
    out = tmp_path / "results"
    assert main(["--import", str(path), "--methods", "finetune", "--streams", "mini", "--seeds", "0",
                 "--profile", "smoke", "--out", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert f"{kind} name {name!r}" in err and RULE in err
    assert f"{path}, line" in err          # the user's file and line, not the harness's check
    assert not out.exists()                # refused before anything was written


def test_presets_datasets_and_metrics_follow_the_same_rule(stream_guard):
    from methods.core.registry import register_preset

    with pytest.raises(RegisteredNameError, match="preset name 'my preset'"):
        register_preset("my preset", "reservoir", {"budget": 5}, "a preset")
    with pytest.raises(RegisteredNameError, match="dataset name 'my/data'"):
        register_dataset(NpzDataset("my/data", path="x.npz", sha256="0" * 64))
    with pytest.raises(RegisteredNameError, match="metric name 'Fid'"):
        register_metric(Metric("Fid", "FID", True))
    with pytest.raises(RegisteredNameError, match="stream name 'all'"):
        register_stream("all", ["mini"], [[0, 1]])
    assert issubclass(RegisteredNameError, ValueError) and not issubclass(MetricRegistrationError, RegisteredNameError)


def test_a_planted_record_name_with_a_separator_writes_nothing_outside_records(tmp_path):
    """A cell whose method or stream name was never checked (built by hand, not registered) cannot
    name a record path: the store refuses it before writing anything."""
    import dataclasses

    cell = expand_grid(["finetune"], ["mini"], [0], resolve_profile("smoke"))[0]
    store = ResultStore(tmp_path / "results")
    for planted in (dataclasses.replace(cell, method="../../escape"),
                    dataclasses.replace(cell, stream="mini/evil"),
                    dataclasses.replace(cell, method="win<b>dow</b>")):
        with pytest.raises(RegisteredNameError):
            store.save(planted, {"status": "done"})
        with pytest.raises(RegisteredNameError):
            store.artifact_dir(planted)
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []
