"""Streams: where images come from and how they are cut into a continual stream."""
import warnings

# Avalanche imports qpsolvers, which warns at import time about solvers we never use: silenced
# here, narrowly (that message, from that package), before anything imports Avalanche.
warnings.filterwarnings("ignore", message="no QP solver found", category=UserWarning, module="qpsolvers")

from streams.registry import STREAMS, UnknownNameError, get_stream_spec  # noqa: F401
