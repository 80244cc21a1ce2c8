"""Streams of one's own: `register_stream` from a module given to --import (or an entry point), its
datasets from one's own .npz or IDX files with their checksums, tasks as class lists, method
settings declared beside the stream, models sized by the stream; and examples/cross_domain.py, the
paper's kind of cross-domain sequence (MNIST, Fashion, a third dataset written here)."""
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from bench.execution.store import ResultStore
from bench.planning.grid import expand_grid, method_config
from bench.planning.profiles import resolve_profile
from bench.record import SCHEMA_VERSION
from bench.run import main
from methods import get_method
from methods.core import user_methods
from streams import STREAMS, IdxDataset, NpzDataset, register_dataset, register_stream
from streams.datasets import DATASETS, DatasetMissingError, check_dataset
from streams.idx import CorruptDatasetError, write_idx
from streams.registry import StreamRegistrationError, get_stream_spec
from streams.stream import load_stream

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data"
HAS_MNIST_FASHION = all((DATA / name).is_dir() for name in ("mnist", "fashion"))


@pytest.fixture
def registry_guard(monkeypatch):
    """Leave the stream and dataset registries and $OCM_BENCH_IMPORTS as they were."""
    import os
    import sys

    streams_before, datasets_before = dict(STREAMS), dict(DATASETS)
    environment_before = os.environ.get(user_methods.ENV_VAR)
    modules_before = set(sys.modules)
    yield
    STREAMS.clear(), STREAMS.update(streams_before)
    DATASETS.clear(), DATASETS.update(datasets_before)
    if environment_before is None:
        os.environ.pop(user_methods.ENV_VAR, None)
    else:
        os.environ[user_methods.ENV_VAR] = environment_before
    for name in set(sys.modules) - modules_before:
        if name.startswith((user_methods.FILE_PACKAGE + ".", "tmp_ocm_")):
            del sys.modules[name]


def shapes(classes: int, per_class: int, seed: int, size: int = 28) -> tuple[np.ndarray, np.ndarray]:
    """Small made-up grey images: class c is a bright band at row 4 c + 2, with noise."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(classes), per_class)
    images = rng.integers(0, 40, size=(len(labels), size, size), dtype=np.uint8)
    for i, c in enumerate(labels):
        images[i, 4 * c + 2: 4 * c + 5, 3:-3] = 230
    order = rng.permutation(len(labels))
    return images[order], labels[order].astype(np.int64)


def write_npz(path: Path, classes: int = 3, train: int = 60, test: int = 20) -> str:
    x_train, y_train = shapes(classes, train, 0)
    x_test, y_test = shapes(classes, test, 1)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_stream_from_an_npz_file_with_its_checksum(tmp_path, registry_guard):
    digest = write_npz(tmp_path / "bands.npz")
    register_dataset(NpzDataset("bands", classes=3, path=str(tmp_path / "bands.npz"), sha256=digest))
    spec = register_stream("bands-stream", ("bands",), [[0, 1], [2]], test_binarization_seed=77)
    assert spec.tasks == ((0, 1), (2,)) and STREAMS["bands-stream-sorted"].order == "sorted"
    stream = load_stream("bands-stream")
    assert [len(t.train_images) for t in stream.tasks] == [120, 60]
    assert stream.tasks[0].train_images.shape[1:] == (1, 28, 28) and stream.tasks[1].classes == (2,)
    # the test set is binarized once, with the stream's seed
    assert set(np.unique(stream.tasks[0].test_images.numpy())) <= {0.0, 1.0}
    check_dataset("bands")   # no torch: the command line's check


def test_a_file_that_is_not_the_declared_one_is_refused(tmp_path, registry_guard):
    write_npz(tmp_path / "bands.npz")
    register_dataset(NpzDataset("bands", classes=3, path=str(tmp_path / "bands.npz"), sha256="0" * 64))
    with pytest.raises(CorruptDatasetError, match="SHA-256 of the content is"):
        check_dataset("bands")
    register_dataset(NpzDataset("absent", classes=3, path=str(tmp_path / "none.npz"), sha256="0" * 64))
    with pytest.raises(DatasetMissingError, match="none.npz is missing"):
        check_dataset("absent")
    digest = write_npz(tmp_path / "few.npz", classes=3)
    register_dataset(NpzDataset("few", classes=2, path=str(tmp_path / "few.npz"), sha256=digest))
    with pytest.raises(CorruptDatasetError, match=r"labels must lie in 0..1"):
        check_dataset("few")


def test_a_stream_from_idx_files_and_tasks_given_per_dataset(tmp_path, registry_guard):
    (x_train, y_train), (x_test, y_test) = shapes(2, 30, 2), shapes(2, 10, 3)
    files, digests = {}, {}
    for part, array in (("train_images", x_train), ("train_labels", y_train.astype(np.uint8)),
                        ("test_images", x_test), ("test_labels", y_test.astype(np.uint8))):
        files[part] = f"idx/{part}.gz"   # relative: in the data directory
        (tmp_path / "idx").mkdir(exist_ok=True)
        write_idx(tmp_path / files[part], array)
        import gzip
        digests[part] = hashlib.sha256(gzip.decompress((tmp_path / files[part]).read_bytes())).hexdigest()
    register_dataset(IdxDataset("lines", classes=2, files=files, sha256=digests))
    spec = register_stream("mini-then-lines", ("mini", "lines"), [{"mini": [0, 1]}, {"lines": [0, 1]}])
    assert spec.tasks == ((0, 1), (10, 11))      # the second dataset's classes follow mini's 10
    stream = load_stream("mini-then-lines", tmp_path)
    assert [len(t.train_images) for t in stream.tasks] == [800, 60]
    assert stream.tasks[1].train_labels.unique().tolist() == [10, 11]
    with pytest.raises(StreamRegistrationError, match="not one of the stream's"):
        register_stream("wrong", ("mini",), [{"fashion": [0]}])
    with pytest.raises(StreamRegistrationError, match="classes are 0..9"):
        register_stream("wrong", ("mini",), [[10]])


def test_method_settings_are_declared_beside_the_stream(registry_guard):
    spec = get_method("ocm-dynamic")
    assert method_config(spec, "split-fashion")["max_components"] == 10      # the built-in stream's
    assert method_config(spec, "split-fashion-sorted")["max_components"] == 10   # and its variant's
    register_stream("plain", ("mini",), [[0, 1], [2, 3]])
    from methods.core.settings import keyed_values

    defaults = keyed_values(spec.config_class())
    assert method_config(spec, "plain") == defaults      # declares none: the method's own defaults
    register_stream("tuned", ("mini",), [[0, 1], [2, 3]],
                    method_settings={"ocm-dynamic": {"lambda2": 0.5, "expansion_after": 30}})
    config = method_config(spec, "tuned")
    assert config["lambda2"] == 0.5 and config["expansion_after"] == 30
    # the profile's and the user's own settings win over the stream's
    profile = resolve_profile("smoke", ["ocm-dynamic.lambda2=3"])
    assert expand_grid(["ocm-dynamic"], ["tuned"], [0], profile)[0].method_config["lambda2"] == 3.0


def test_the_same_stream_registered_again_is_fine_another_is_refused(registry_guard):
    register_stream("twice", ("mini",), [[0, 1]])
    register_stream("twice", ("mini",), [[0, 1]])            # its module imported twice
    with pytest.raises(StreamRegistrationError, match="already registered"):
        register_stream("twice", ("mini",), [[2, 3]])
    with pytest.raises(StreamRegistrationError, match="already registered"):
        register_stream("mini", ("mini",), [[0, 1]])


def test_a_worker_finds_a_stream_its_process_has_not_imported(tmp_path, registry_guard, monkeypatch):
    """A name the registry does not know loads $OCM_BENCH_IMPORTS first (as a method name does)."""
    module = tmp_path / "my_streams.py"
    module.write_text('from streams import register_stream\nregister_stream("late", ("mini",), [[0, 1]])\n')
    monkeypatch.setenv(user_methods.ENV_VAR, str(module))
    user_methods._env_problems.clear()
    assert "late" not in STREAMS and get_stream_spec("late").tasks == ((0, 1),)


def test_a_stream_of_other_sized_images_sizes_the_models(tmp_path, registry_guard):
    """14 x 14 images: every method's model takes its input size from the stream."""
    x_train, y_train = shapes(2, 40, 4, size=14)
    x_test, y_test = shapes(2, 20, 5, size=14)
    np.savez(tmp_path / "small.npz", x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    digest = hashlib.sha256((tmp_path / "small.npz").read_bytes()).hexdigest()
    register_dataset(NpzDataset("small", classes=2, path="small.npz", sha256=digest))
    register_stream("small-stream", ("small",), [[0], [1]], image_shape=(1, 14, 14))
    out = tmp_path / "out"
    methods = "finetune,reservoir,ocm-dynamic,curl,cndpm,limix"
    assert main(["--methods", methods, "--streams", "small-stream", "--seeds", "0", "--profile", "smoke",
                 "--data-dir", str(tmp_path), "--out", str(out), "--no-progress", "--workers", "1"]) == 0
    records = ResultStore(out).records()
    assert len(records) == 6 and all(r.done for r in records)
    assert all(r.parameters < 200_000 for r in records if r.method == "finetune")   # 196 inputs, not 784


@pytest.mark.skipif(not HAS_MNIST_FASHION, reason="needs MNIST and Fashion-MNIST (python -m streams.fetch mnist fashion)")
def test_the_cross_domain_example_runs_with_the_papers_settings(tmp_path, registry_guard, monkeypatch):
    """examples/cross_domain.py: MNIST, Fashion, then a dataset written here; ocm-dynamic gets the
    cross-domain settings the stream declares (lambda2 0.5, 10 components, the expansion test only
    after 30 selections)."""
    digest = write_npz(tmp_path / "mine.npz", classes=4, train=80, test=30)
    monkeypatch.setenv("CROSS_DOMAIN_NPZ", str(tmp_path / "mine.npz"))
    monkeypatch.setenv("CROSS_DOMAIN_SHA256", digest)
    monkeypatch.setenv("CROSS_DOMAIN_CLASSES", "4")
    out = tmp_path / "out"
    assert main(["--import", str(ROOT / "examples" / "cross_domain.py"), "--streams", "cross-domain-mine",
                 "--methods", "ocm-dynamic", "--seeds", "0", "--profile", "smoke", "--data-dir", str(DATA),
                 "--out", str(out), "--no-progress", "--workers", "1"]) == 0
    [record] = ResultStore(out).records()
    assert record.done and record.stream == "cross-domain-mine" and len(record.metric("nll_matrix")) == 3
    assert {k: record.method_config[k] for k in ("lambda2", "max_components", "expansion_after")} == {
        "lambda2": 2.0, "max_components": 10, "expansion_after": 30}   # smoke's own lambda2 wins
    assert method_config(get_method("ocm-dynamic"), "cross-domain-mine")["lambda2"] == 0.5   # the stream's
    assert record.train_sizes == [256, 256, 256] and record.test_sizes == [64, 64, 64]
    # fewer than 30 selections on this short stream: no expansion test ran
    assert record.extras["selections"] < 30 and all("r" not in e for e in record.timeline)
    assert json.loads(next((out / "records").glob("*.json")).read_text())["schema_version"] == SCHEMA_VERSION


def test_installed_packages_register_streams_through_their_entry_point(tmp_path, registry_guard, monkeypatch):
    import importlib.metadata

    (tmp_path / "tmp_ocm_streams_ep.py").write_text(
        'from streams import register_stream\nregister_stream("from-a-package", ("mini",), [[0, 1], [2, 3]])\n')
    monkeypatch.syspath_prepend(str(tmp_path))
    ep = importlib.metadata.EntryPoint("mine", "tmp_ocm_streams_ep", user_methods.STREAM_ENTRY_POINT_GROUP)
    monkeypatch.setattr(importlib.metadata, "entry_points",
                        lambda group=None: [ep] if group == user_methods.STREAM_ENTRY_POINT_GROUP else [])
    monkeypatch.setattr(user_methods, "_entry_points_seen", {})
    assert get_stream_spec("from-a-package").tasks == ((0, 1), (2, 3))


def test_an_import_that_registers_only_a_stream_is_not_warned_about(tmp_path, registry_guard):
    module = tmp_path / "only_a_stream.py"
    module.write_text('from streams import register_stream\nregister_stream("only", ("mini",), [[0, 1]])\n')
    said = []
    user_methods.import_modules([str(module)], warn=said.append)
    assert said == [] and "only" in STREAMS


def test_a_users_data_mistakes_get_the_cause_and_the_fix(tmp_path, registry_guard):
    """A text file named .npz is not advised to allow pickles; images in [0, 1] are told to scale
    by 255; 32 x 32 images point at register_stream(image_shape=)."""
    (tmp_path / "text.npz").write_text("x_train,y_train\n1,2\n")
    digest = hashlib.sha256((tmp_path / "text.npz").read_bytes()).hexdigest()
    register_dataset(NpzDataset("text", classes=2, path=str(tmp_path / "text.npz"), sha256=digest))
    with pytest.raises(CorruptDatasetError, match="not an .npz archive") as err:
        check_dataset("text")
    assert "pickle" not in str(err.value)

    x_train, y_train = shapes(2, 20, 0)
    x_test, y_test = shapes(2, 10, 1)
    np.savez(tmp_path / "floats.npz", x_train=x_train / 255.0, y_train=y_train, x_test=x_test / 255.0, y_test=y_test)
    digest = hashlib.sha256((tmp_path / "floats.npz").read_bytes()).hexdigest()
    register_dataset(NpzDataset("floats", classes=2, path=str(tmp_path / "floats.npz"), sha256=digest))
    with pytest.raises(CorruptDatasetError, match=r"\(x \* 255\).round\(\).astype\(np.uint8\)"):
        check_dataset("floats")

    x_train, y_train = shapes(2, 20, 0, size=32)
    x_test, y_test = shapes(2, 10, 1, size=32)
    np.savez(tmp_path / "big.npz", x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    digest = hashlib.sha256((tmp_path / "big.npz").read_bytes()).hexdigest()
    register_dataset(NpzDataset("big", classes=2, path=str(tmp_path / "big.npz"), sha256=digest))
    register_stream("big-stream", ("big",), [[0], [1]])
    with pytest.raises(CorruptDatasetError, match=r"register_stream\(\.\.\., image_shape=\(1, 32, 32\)\)"):
        load_stream("big-stream", tmp_path)
