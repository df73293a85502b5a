"""Refusing data that cannot be trained on: NaN and infinite values, named by row and column."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .errors import DataError

__all__ = ["require_finite"]


def require_finite(
    a: np.ndarray,
    what: str,
    column_names: Sequence[str] | None = None,
    *,
    use: str = "training",
) -> None:
    """Raise :class:`DataError` naming the first NaN or infinite entry of ``a``.

    Parameters
    ----------
    a : numpy.ndarray
        A table of shape (N,) or (N, D); non-float arrays are always finite.
    what : str
        The array's name in the message (a part such as ``X_train``, or a file).
    column_names : sequence of str, optional
        Names of the columns, quoted beside the column index.
    use : str
        What the data are for, in the hint ("remove or impute such values
        before training"; ``"predicting"`` for a model's inputs).

    Examples
    --------
    >>> import numpy as np
    >>> try:
    ...     require_finite(np.array([[1.0, 2.0], [3.0, np.nan]]), "X_train", ["a", "b"])
    ... except DataError as exc:
    ...     print(str(exc).split(";")[0])
    X_train: NaN at row 1, column 1 ('b')
    """
    a = np.asarray(a)
    if a.dtype.kind not in "fc":
        return
    bad = ~np.isfinite(a)
    if not bad.any():
        return
    where = np.argwhere(bad.reshape(len(a), -1) if a.ndim else bad.reshape(1, 1))[0]
    row, col = int(where[0]), int(where[1])
    value = a.reshape(len(a), -1)[row, col] if a.ndim else a[()]
    name = "NaN" if np.isnan(value) else ("inf" if value > 0 else "-inf")
    column = f"column {col}"
    if column_names is not None and col < len(column_names):
        column += f" ({column_names[col]!r})"
    count = int(bad.sum())
    raise DataError(
        f"{what}: {name} at row {row}, {column}; {count} non-finite value"
        f"{'s' if count > 1 else ''} in all; remove or impute such values before {use}"
    )
