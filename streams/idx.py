"""Reading the IDX format (MNIST, Fashion-MNIST), gzipped or not, with integrity checks.

A truncated or corrupted file must raise, never yield silent garbage: the header's declared shape
is checked against the payload length, and known files are checked against their MD5.
"""
from __future__ import annotations

import gzip
import hashlib
from pathlib import Path

import numpy as np

from streams.files import write_atomic

# IDX type codes -> numpy dtypes (big-endian where it matters).
_IDX_DTYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_IDX_CODES = {dtype.newbyteorder("="): code for code, dtype in _IDX_DTYPES.items()}


class CorruptDatasetError(RuntimeError):
    """A dataset file exists but its content is not what it must be."""


def read_bytes(path: Path) -> bytes:
    """The decompressed content of `path` (gzip is recognised by its magic bytes, not its name)."""
    raw = Path(path).read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(raw)
        except (OSError, EOFError) as err:
            raise CorruptDatasetError(f"{path}: broken gzip stream ({err})") from err
    return raw


def parse_idx(content: bytes, source: str = "<bytes>") -> np.ndarray:
    """Parse IDX bytes into an array, checking that the payload matches the declared shape."""
    if len(content) < 4 or content[0] != 0 or content[1] != 0:
        raise CorruptDatasetError(f"{source}: not an IDX file (bad magic number)")
    type_code, ndim = content[2], content[3]
    if type_code not in _IDX_DTYPES:
        raise CorruptDatasetError(f"{source}: unknown IDX element type 0x{type_code:02x}")
    header_len = 4 + 4 * ndim
    if len(content) < header_len:
        raise CorruptDatasetError(f"{source}: truncated IDX header")
    shape = tuple(int.from_bytes(content[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    dtype = _IDX_DTYPES[type_code]
    expected = header_len + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(content) != expected:
        raise CorruptDatasetError(
            f"{source}: IDX header declares shape {shape} ({expected} bytes) but the file has "
            f"{len(content)} bytes (truncated or corrupted)"
        )
    return np.frombuffer(content, dtype=dtype, offset=header_len).reshape(shape).astype(
        dtype.newbyteorder("="), copy=False
    )


def md5_hex(content: bytes) -> str:
    return hashlib.md5(content).hexdigest()


def read_idx(path: Path, expected_md5: str | None = None) -> np.ndarray:
    """Read one IDX file; if `expected_md5` is given it must match the *decompressed* content.

    Checksums are taken on the decompressed bytes because the registry packages we fetch from
    recompress (or decompress) the original archives: only the content is stable.
    """
    content = read_bytes(path)
    if expected_md5 is not None and md5_hex(content) != expected_md5:
        raise CorruptDatasetError(
            f"{path}: MD5 of the content is {md5_hex(content)}, expected {expected_md5} "
            "(corrupted or not the standard file; delete it and fetch again)"
        )
    return parse_idx(content, str(path))


def write_idx(path: Path, array: np.ndarray, compress: bool | None = None) -> None:
    """Write `array` as IDX (gzip if the name ends in .gz or `compress`). Used by fetch and tests."""
    array = np.asarray(array)
    code = _IDX_CODES[array.dtype.newbyteorder("=")]
    dtype = _IDX_DTYPES[code]
    header = bytes([0, 0, code, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    content = header + array.astype(dtype, copy=False).tobytes()
    path = Path(path)
    if compress if compress is not None else path.suffix == ".gz":
        content = gzip.compress(content, mtime=0)
    write_atomic(path, content)
