"""Atomic file writes, for every layer (streams is the lowest package): a reader or a crash never
sees a half-written file, and writers racing for the same path each leave a whole one."""
from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(path: Path | str, suffix: str = "", durable: bool = False):
    """Yield a private temporary path beside `path`; when the block succeeds, the file written
    there replaces `path` in one rename (with `durable`, flushed to disk first); when it fails, the
    temporary file is removed and `path` is untouched. `suffix` keeps writers that append an
    extension (numpy's savez: '.npz') writing where they are told."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    os.close(fd)
    try:
        yield Path(tmp)
        if durable:
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def write_atomic(path: Path | str, data: bytes | str, durable: bool = False) -> Path:
    """Write `data` (text as UTF-8) to `path` atomically (`atomic_path`): a reader, a crash or a
    full disk leaves the old file or the new one, never a truncated one."""
    path = Path(path)
    with atomic_path(path, suffix=path.suffix, durable=durable) as tmp:
        tmp.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return path
