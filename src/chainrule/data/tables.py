"""Reading raw input tables (``.npy`` or comma-separated ``.csv``) with messages naming the file."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .checks import require_finite
from .errors import DataError

__all__ = ["load_inputs"]


def load_inputs(path: str | Path) -> np.ndarray:
    """Read raw inputs, one sample per row, from ``.npy`` or ``.csv`` (optional header row).

    Raises
    ------
    FileNotFoundError
        When ``path`` is not a file.
    DataError
        Naming the file and what is wrong: empty, header only, not text, another
        separator than the comma, non-numeric cells, ragged rows, NaN or inf.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "x.csv"
    >>> _ = p.write_text("a,b\\n1,2\\n3,4\\n")
    >>> load_inputs(p)
    array([[1., 2.],
           [3., 4.]])
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such input file")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        X = _read_npy(path)
    elif suffix == ".csv":
        X = _read_csv(path)
    else:
        raise DataError(f"{path}: unsupported input type {suffix!r}; use .csv or .npy")
    if X.dtype.kind not in "biuf":
        raise DataError(f"{path}: inputs must be numbers, got dtype {X.dtype}")
    X = X.reshape(1, -1) if X.ndim == 1 else X
    if X.ndim != 2 or X.size == 0:
        raise DataError(
            f"{path}: expected a non-empty (N, D) table of numbers, got shape {X.shape}"
        )
    X = X.astype(np.float64)
    require_finite(X, str(path), use="predicting")
    return X


def _read_npy(path: Path) -> np.ndarray:
    if path.stat().st_size == 0:
        raise DataError(f"{path}: empty file, not a .npy array; save one with numpy.save")
    try:
        return np.asarray(np.load(path, allow_pickle=False))
    except (ValueError, EOFError, OSError) as exc:
        raise DataError(
            f"{path}: not a readable .npy array ({exc}); save one with numpy.save"
        ) from None


def _read_csv(path: Path) -> np.ndarray:
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{path}: not a text CSV file (byte {raw[exc.start]:#04x} at offset {exc.start} "
            "is not UTF-8); give comma-separated numbers or a .npy array"
        ) from None
    lines = [(i + 1, ln) for i, ln in enumerate(text.splitlines()) if ln.strip()]
    if not lines:
        raise DataError(f"{path}: empty file; give one row of comma-separated numbers per sample")
    if not _numeric(lines[0][1].split(",")):
        lines = lines[1:]  # a header
        if not lines:
            raise DataError(f"{path}: a header row but no data rows")
    table = []
    for number, line in lines:
        cells = line.split(",")
        if not _numeric(cells):
            raise DataError(
                f"{path}: line {number} is not a numeric CSV row (comma-separated numbers): "
                f"{line[:60]!r}{_separator_hint(line)}"
            )
        table.append([float(v) for v in cells])
    widths = sorted({len(r) for r in table})
    if len(widths) > 1:
        raise DataError(f"{path}: rows have different numbers of columns ({widths})")
    return np.array(table, dtype=np.float64)


def _numeric(cells: list[str]) -> bool:
    try:
        [float(v) for v in cells]
    except ValueError:
        return False
    return True


def _separator_hint(line: str) -> str:
    for sep, name in ((";", "semicolons"), ("\t", "tabs")):
        if sep in line and _numeric(line.split(sep)):
            return f" (the values are separated by {name}; use commas)"
    return ""
