"""The typed record (bench/record.py): every record committed under reports/ reads, its fields
typed and split (the cell, the metric registry's fields, the method's own), and writes back key for
key; the store writes the schema version and refuses a newer one; a method's extras cannot
overwrite the record's fields."""
import json
from pathlib import Path

import pytest

from bench.execution.store import ResultStore
from bench.record import SCHEMA_VERSION, Record, RecordError, Timeline, as_record

ROOT = Path(__file__).resolve().parents[1]
ALL_COMMITTED = sorted((ROOT / "reports").glob("*/records/*.json"))
# a failed cell's record (its error, no numbers) is committed while its rerun is pending
COMMITTED = [p for p in ALL_COMMITTED if json.loads(p.read_text())["status"] == "done"]
FAILED = [p for p in ALL_COMMITTED if p not in COMMITTED]


def test_there_are_committed_records_of_several_versions():
    versions = {json.loads(p.read_text())["harness_version"] for p in COMMITTED}
    assert len(COMMITTED) >= 100 and {"0.5.0", "0.7.0"} <= versions


@pytest.mark.parametrize("path", COMMITTED, ids=lambda p: f"{p.parent.parent.name}/{p.stem[:40]}")
def test_every_committed_record_reads_and_writes_back_key_for_key(path):
    data = json.loads(path.read_text())
    record = Record.from_json(data)
    assert record.to_json() == {"schema_version": 1, **data}   # nothing lost, nothing changed
    assert dict(record) == record.to_json() and record["nll"] == data["nll"]   # the mapping view
    assert record.done and record.key == data["key"] and record.seed == data["seed"]
    assert record.label == (data.get("method_label") or data["method"])
    assert record.metric("nll") == data["nll"] and record.metric("nll_matrix") == data["nll_matrix"]
    # the three parts: the record's own fields, the metric registry's, the method's own
    assert {"nll", "nll_matrix", "forgetting_nll"} <= set(record.metrics)
    assert not {"nll", "key", "seed", "memory", "timeline", "train_seconds"} & set(record.extras)
    assert record.memory == data["memory"] and record.train_seconds == data["train_seconds"]


@pytest.mark.parametrize("path", FAILED or [None], ids=lambda p: p.stem[:40] if p else "none")
def test_a_committed_failed_record_reads_back_with_its_error_and_no_numbers(path):
    if path is None:
        pytest.skip("no failed record committed now")
    data = json.loads(path.read_text())
    record = Record.from_json(data)
    assert record.to_json() == {"schema_version": 1, **data} and not record.done
    assert record.error == data["error"] and record.metrics == {} and "nll" not in record


def test_method_extras_are_the_methods_own_keys():
    ocm = next(Record.from_json(json.loads(p.read_text())) for p in COMMITTED if "__ocm-dynamic__" in p.name)
    assert {"stm_size", "ltm_size", "selections", "expansions"} <= set(ocm.extras)
    from bench.reporting.figures import method_timeline

    timeline = method_timeline(ocm)   # the keys OCM declares (its Reporting): ltm, and ltm + stm
    assert timeline.memory_key == "ltm" and timeline.pool == ("ltm", "stm")
    assert timeline.before_selection() == [e["ltm"] + e["stm"] for e in timeline.events]
    assert timeline.memory() == [e["ltm"] for e in timeline.events] and timeline.memory() != [0] * len(timeline.events)
    cndpm = next(Record.from_json(json.loads(p.read_text())) for p in COMMITTED if "__cndpm__" in p.name)
    assert {"counts", "experts", "sleeps"} <= set(cndpm.extras)
    assert method_timeline(cndpm).memory_key == "buffer" and method_timeline(cndpm).before_selection() is None
    assert Timeline(cndpm.timeline).memory() == [0] * len(cndpm.timeline)   # nothing declared, nothing read


def test_the_store_writes_the_schema_and_reads_records_back(tmp_path):
    from bench.planning.grid import expand_grid
    from bench.planning.profiles import resolve_profile

    cell = expand_grid(["finetune"], ["mini"], [0], resolve_profile("smoke"))[0]
    store = ResultStore(tmp_path)
    data = json.loads(json.dumps({**json.loads(COMMITTED[0].read_text()), **cell.spec, "key": cell.key}))
    data.pop("schema_version")   # (the numbers are another cell's: the store does not look)
    store.save(cell, data)
    written = json.loads(store.path(cell).read_text())
    assert written == {**data, "schema_version": 1}   # a dict without a schema is schema 1 ...
    data["schema_version"] = SCHEMA_VERSION          # ... as bench.evaluation.cell writes it, 2
    store.save(cell, data)
    assert store.load(cell) == as_record(data) and isinstance(store.load(cell), Record)


def test_a_record_under_another_cells_name_is_moved_aside_not_counted(tmp_path, capsys):
    """A seed-0 record copied to seed 1's file name, or a record whose settings were edited by
    hand, is not seed 1's (or that cell's): moved to records/corrupt/ with why, and the cell reruns."""
    from bench.planning.grid import expand_grid
    from bench.planning.profiles import resolve_profile

    seed0, seed1 = expand_grid(["finetune"], ["mini"], [0, 1], resolve_profile("smoke"))
    store = ResultStore(tmp_path)
    data = {**json.loads(COMMITTED[0].read_text()), **seed0.spec, "key": seed0.key, "schema_version": SCHEMA_VERSION}
    store.save(seed0, data)
    store.path(seed1).write_text(store.path(seed0).read_text())   # copied by hand
    assert store.load(seed1) is None and not store.path(seed1).exists()
    assert "seed 0 where its name says 1" in capsys.readouterr().err
    edited = {**data, "method_config": {"budget": 7}}               # its fields no longer give its key
    store.path(seed0).write_text(json.dumps(edited))
    assert store.load(seed0) is None and len(list((tmp_path / "records" / "corrupt").iterdir())) == 2
    assert [r.seed for r in store.records()] == []


def test_a_newer_schema_record_is_moved_aside_not_overwritten(tmp_path, capsys):
    from bench.planning.grid import expand_grid
    from bench.planning.profiles import resolve_profile

    cell = expand_grid(["finetune"], ["mini"], [0], resolve_profile("smoke"))[0]
    store = ResultStore(tmp_path)
    store.path(cell).parent.mkdir(parents=True)
    newer = {"status": "done", "schema_version": SCHEMA_VERSION + 1, "written_by": "a later harness"}
    store.path(cell).write_text(json.dumps(newer))
    assert store.load(cell) is None
    data = {**json.loads(COMMITTED[0].read_text()), **cell.spec, "key": cell.key, "schema_version": SCHEMA_VERSION}
    store.save(cell, data)
    kept = list((tmp_path / "records" / "newer").iterdir())
    assert len(kept) == 1 and json.loads(kept[0].read_text()) == newer
    assert store.load(cell).done


@pytest.mark.parametrize("change, why", [
    ({"nll": "oops"}, "finite number as its NLL"), ({"nll": None}, "finite number as its NLL"),
    ({"nll": float("nan")}, "finite number as its NLL"), ({"fid": "x"}, "fid is 'x'"),
    ({"nll_matrix": [[1.0, 2.0], [3.0]]}, "nll_matrix is not a square table"),
])
def test_a_finished_record_with_numbers_that_are_not_numbers_is_not_a_record(change, why):
    data = {**json.loads(COMMITTED[0].read_text()), **change}
    if change.get("nll", 0) is None:
        data.pop("nll")
    with pytest.raises(RecordError, match=why):
        Record.from_json(data)


def test_a_newer_schema_is_refused_and_left_in_place(tmp_path, capsys):
    with pytest.raises(RecordError, match="newer than this harness reads"):
        Record.from_json({"status": "done", "schema_version": SCHEMA_VERSION + 1})
    (tmp_path / "records").mkdir()
    path = tmp_path / "records" / "a.json"
    path.write_text(json.dumps({"status": "done", "schema_version": SCHEMA_VERSION + 1}))
    assert ResultStore(tmp_path).records() == [] and path.exists()
    assert "newer harness" in capsys.readouterr().err


def test_not_a_record_is_refused():
    for data in ({}, {"status": 3}, [], "done"):
        with pytest.raises(RecordError):
            Record.from_json(data)


def test_a_methods_extras_cannot_overwrite_the_records_fields():
    from bench.evaluation.cell import method_extras

    class Plugin:
        def extra_stats(self):
            return {"memory": 3, "nll": 1.0, "mine": 2}

    with pytest.raises(ValueError, match="memory, nll"):
        method_extras(Plugin())
