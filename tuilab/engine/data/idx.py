"""Reading IDX files (the MNIST format), raw or gzip-compressed, with clear errors."""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from tuilab.errors import TuilabError

# IDX type byte -> big-endian dtype
_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def parse_idx(data: bytes, name: str = "IDX data") -> np.ndarray:
    """The array held in the bytes of one IDX file."""
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise TuilabError(f"{name} is not an IDX file (bad magic number); re-download it")
    code, ndim = data[2], data[3]
    if code not in _TYPES or ndim == 0:
        raise TuilabError(f"{name} is not an IDX file (type 0x{code:02x}, {ndim} dimensions)")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise TuilabError(f"{name} is truncated (header cut short); re-download it")
    shape = tuple(int(d) for d in np.frombuffer(data, ">u4", ndim, 4))
    dtype = np.dtype(_TYPES[code])
    expected = header + int(np.prod(shape)) * dtype.itemsize
    if len(data) != expected:
        what = "truncated" if len(data) < expected else "longer than its header says"
        raise TuilabError(
            f"{name} is {what} ({len(data)} bytes, header says {expected}); re-download it")
    return np.frombuffer(data, dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def read_idx(path) -> np.ndarray:
    """An IDX file as an array; `.gz` files are decompressed."""
    path = Path(path)
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as f:
                data = f.read()
        else:
            data = path.read_bytes()
    except (OSError, EOFError, zlib.error) as exc:
        raise TuilabError(f"cannot read {path}: {exc}; re-download it") from None
    return parse_idx(data, str(path))


def write_idx(path, array: np.ndarray) -> None:
    """Write an array as an IDX file (gzip-compressed when the name ends in .gz)."""
    array = np.asarray(array)
    code = {np.dtype(v).newbyteorder("="): k for k, v in _TYPES.items()}[array.dtype]
    header = bytes([0, 0, code, array.ndim]) + np.array(array.shape, ">u4").tobytes()
    body = header + array.astype(np.dtype(_TYPES[code])).tobytes()
    path = Path(path)
    if path.suffix == ".gz":
        with gzip.GzipFile(path, "wb", mtime=0) as f:
            f.write(body)
    else:
        path.write_bytes(body)
