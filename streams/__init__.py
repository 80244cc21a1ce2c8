"""Streams: where images come from and how they are cut into a continual stream.

A stream of one's own: `register_stream` (streams/registry.py), its datasets from one's own files
with `register_dataset(NpzDataset(...))` or `IdxDataset` (streams/datasets.py), in a module given to
`bench.run --import` (examples/cross_domain.py)."""
import warnings

# Avalanche imports qpsolvers, which warns at import time about solvers we never use: silenced
# here, narrowly (that message, from that package), before anything imports Avalanche.
warnings.filterwarnings("ignore", message="no QP solver found", category=UserWarning, module="qpsolvers")

from streams.registry import STREAMS, UnknownNameError, get_stream_spec, register_stream  # noqa: E402,F401

_DATASETS_API = ("DatasetSource", "IdxDataset", "NpzDataset", "register_dataset", "sha256_hex")


def __getattr__(name: str):
    """The dataset API (streams/datasets.py, numpy) is imported on first use."""
    if name in _DATASETS_API:
        from streams import datasets

        return getattr(datasets, name)
    raise AttributeError(f"module 'streams' has no attribute '{name}'")
