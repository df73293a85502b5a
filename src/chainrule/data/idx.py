"""Reading and writing IDX files, the format of MNIST and Fashion-MNIST.

An IDX file is a 4-byte magic number (two zero bytes, a dtype code, the number
of dimensions), then one big-endian ``uint32`` per dimension, then the payload
in C order, big-endian. Files may be gzip-compressed.
"""

from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path

import numpy as np

from .errors import DataError

__all__ = ["read_idx", "write_idx"]

# IDX dtype code -> big-endian NumPy dtype.
_CODE_TO_DTYPE: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_KIND_TO_CODE = {(dt.kind, dt.itemsize): code for code, dt in _CODE_TO_DTYPE.items()}
_GZIP_MAGIC = b"\x1f\x8b"


def _read_bytes(path: Path) -> bytes:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"IDX file {str(path)!r} does not exist") from None
    except OSError as exc:
        raise DataError(f"cannot read IDX file {str(path)!r}: {exc}") from exc
    is_gz_name = path.suffix == ".gz"
    if raw[:2] == _GZIP_MAGIC:
        try:
            return gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise DataError(
                f"IDX file {str(path)!r} is a corrupt or truncated gzip stream ({exc}); "
                "download it again"
            ) from exc
    if is_gz_name:
        raise DataError(
            f"IDX file {str(path)!r} ends in .gz but is not gzip data "
            f"(first bytes {raw[:4]!r}); download it again or remove the .gz suffix"
        )
    return raw


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an IDX file (raw or gzip-compressed) into a NumPy array.

    Every part of the file is checked: the magic number, the dtype code, the
    header length and that the payload holds exactly as many bytes as the
    header promises.

    Parameters
    ----------
    path : str or os.PathLike
        The file; gzip data is recognised by its content, whatever the name.

    Returns
    -------
    numpy.ndarray
        A writeable array in native byte order with the shape from the header
        (``uint8`` for MNIST images and labels).

    Raises
    ------
    DataError
        If the file is missing, not gzip despite a ``.gz`` name, a corrupt gzip
        stream, has a bad magic number or dtype code, is truncated, or has
        trailing bytes. The message names the file and the problem.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> from chainrule.data import read_idx, write_idx
    >>> path = os.path.join(tempfile.mkdtemp(), "a-idx2-ubyte.gz")
    >>> write_idx(path, np.arange(6, dtype=np.uint8).reshape(2, 3))
    >>> read_idx(path)
    array([[0, 1, 2],
           [3, 4, 5]], dtype=uint8)
    """
    path = Path(path)
    data = _read_bytes(path)
    name = repr(str(path))
    if len(data) < 4:
        raise DataError(f"IDX file {name} is too short ({len(data)} bytes) to hold a header")
    zero0, zero1, code, ndim = data[0], data[1], data[2], data[3]
    if zero0 != 0 or zero1 != 0:
        raise DataError(
            f"IDX file {name} has a bad magic number {data[:4].hex()} "
            "(the first two bytes must be zero); it is not an IDX file"
        )
    if code not in _CODE_TO_DTYPE:
        valid = ", ".join(f"0x{c:02X}" for c in _CODE_TO_DTYPE)
        raise DataError(f"IDX file {name} has unknown dtype code 0x{code:02X} (valid: {valid})")
    if ndim == 0:
        raise DataError(f"IDX file {name} declares 0 dimensions")
    header_len = 4 + 4 * ndim
    if len(data) < header_len:
        raise DataError(
            f"IDX file {name} is truncated: the header needs {header_len} bytes "
            f"for {ndim} dimensions but the file has {len(data)}"
        )
    shape = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    dtype = _CODE_TO_DTYPE[code]
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    actual = len(data) - header_len
    if actual < expected:
        raise DataError(
            f"IDX file {name} is truncated: shape {shape} of {dtype.name} needs "
            f"{expected} payload bytes but only {actual} are present; download it again"
        )
    if actual > expected:
        raise DataError(
            f"IDX file {name} has {actual - expected} trailing bytes after the "
            f"{expected}-byte payload of shape {shape}; the file is corrupt"
        )
    arr = np.frombuffer(data, dtype=dtype, count=expected // dtype.itemsize, offset=header_len)
    return arr.reshape(shape).astype(dtype.newbyteorder("="))


def write_idx(path: str | os.PathLike[str], array: np.ndarray) -> None:
    """Write an array as an IDX file, gzip-compressed when the name ends in ``.gz``.

    Parameters
    ----------
    path : str or os.PathLike
        Destination file.
    array : numpy.ndarray
        Array of dtype uint8, int8, int16, int32, float32 or float64 with 1 to
        255 dimensions.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> from chainrule.data import read_idx, write_idx
    >>> path = os.path.join(tempfile.mkdtemp(), "labels-idx1-ubyte")
    >>> write_idx(path, np.array([3, 1, 4], dtype=np.uint8))
    >>> read_idx(path).tolist()
    [3, 1, 4]
    """
    arr = np.asarray(array)
    code = _KIND_TO_CODE.get((arr.dtype.kind, arr.dtype.itemsize))
    if code is None:
        raise ValueError(
            f"write_idx: dtype {arr.dtype} has no IDX code; "
            "use uint8, int8, int16, int32, float32 or float64"
        )
    if not 1 <= arr.ndim <= 255:
        raise ValueError(f"write_idx: an IDX array needs 1 to 255 dimensions, got {arr.ndim}")
    header = bytes([0, 0, code, arr.ndim]) + np.asarray(arr.shape, dtype=">u4").tobytes()
    payload = np.ascontiguousarray(arr, dtype=_CODE_TO_DTYPE[code]).tobytes()
    blob = header + payload
    path = Path(path)
    if path.suffix == ".gz":
        blob = gzip.compress(blob, compresslevel=6)
    path.write_bytes(blob)
