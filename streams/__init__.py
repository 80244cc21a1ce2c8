"""Streams: where images come from and how they are cut into a continual stream."""
from streams.registry import STREAMS, UnknownNameError, get_stream_spec  # noqa: F401
