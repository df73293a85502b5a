"""Seeded (stratified) train/validation/test splits and standardisation."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import DataError

__all__ = ["Standardizer", "stratified_subsample", "train_val_test_split"]


@dataclass(frozen=True, eq=False)
class Standardizer:
    """Per-feature standardisation ``(X - mean) / std``, fitted on training data.

    Attributes
    ----------
    mean, std : numpy.ndarray
        Per-feature statistics of shape (D,). A constant feature has its std
        replaced by 1, so it maps to 0 instead of dividing by zero.

    Examples
    --------
    >>> import numpy as np
    >>> from chainrule.data import Standardizer
    >>> s = Standardizer.fit(np.array([[0.0, 5.0], [2.0, 5.0]]))
    >>> s.mean, s.std
    (array([1., 5.]), array([1., 1.]))
    >>> s.transform(np.array([[3.0, 5.0]]))
    array([[2., 0.]])
    """

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, X: np.ndarray, per_feature: bool = True) -> Standardizer:
        """Fit the statistics of ``X`` (shape (N, D), N >= 1).

        With ``per_feature=False`` one mean and one std over all entries serve
        every feature (stored per feature, all equal): the usual choice for
        images, whose border pixels have almost no variance, so that per-pixel
        scaling would blow up a shifted or rotated digit.
        """
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[0] == 0:
            raise ValueError(f"Standardizer.fit needs a non-empty (N, D) array, got {X.shape}")
        if per_feature:
            mean = X.mean(axis=0)
            std = X.std(axis=0)
        else:
            mean = np.full(X.shape[1], X.mean())
            std = np.full(X.shape[1], X.std())
        std[std == 0.0] = 1.0
        return cls(mean=mean, std=std)

    def transform(self, X: np.ndarray) -> np.ndarray:
        """Return ``(X - mean) / std`` as float64."""
        return (np.asarray(X, dtype=np.float64) - self.mean) / self.std

    def inverse_transform(self, X: np.ndarray) -> np.ndarray:
        """Return ``X * std + mean``, undoing :meth:`transform`."""
        return np.asarray(X, dtype=np.float64) * self.std + self.mean

    def far_share(self, X: np.ndarray, k: float = 10.0) -> float:
        """Share of the entries of ``X`` more than ``k`` training stds from the training mean.

        A large share means inputs on another scale than the training data
        (say raw 0..16 digits for a model trained on pixels in [0, 1]).

        Examples
        --------
        >>> import numpy as np
        >>> s = Standardizer(mean=np.zeros(2), std=np.ones(2))
        >>> s.far_share(np.array([[0.5, 20.0], [1.0, -3.0]]))
        0.25
        """
        if np.size(X) == 0:
            return 0.0
        return float(np.mean(np.abs(self.transform(X)) > k))


def _split_indices(
    idx: np.ndarray, y: np.ndarray | None, n_take: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Split ``idx`` into (rest, taken) with ``n_take`` taken, stratified by ``y``."""
    if n_take == 0:
        return idx, idx[:0]
    if n_take >= len(idx):
        return idx[:0], idx
    from sklearn.model_selection import train_test_split

    strat = None if y is None else y[idx]
    try:
        rest, taken = train_test_split(idx, test_size=n_take, random_state=seed, stratify=strat)
    except ValueError as exc:
        raise DataError(
            f"cannot split {len(idx)} samples stratified into {len(idx) - n_take} + {n_take}: "
            f"{exc}. Use more samples or smaller fractions."
        ) from exc
    return np.asarray(rest), np.asarray(taken)


def _check_fraction(name: str, value: float) -> None:
    if not 0.0 <= value < 1.0:
        raise ValueError(f"{name} must be in [0, 1), got {value!r}")


def train_val_test_split(
    X: np.ndarray,
    y: np.ndarray,
    *,
    val_fraction: float = 0.15,
    test_fraction: float = 0.2,
    seed: int = 0,
    stratify: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Split into training, validation and test sets, stratified and seeded.

    First ``test_fraction`` of all samples goes to the test set; then
    ``val_fraction`` of what remains (the training pool) goes to validation.

    Parameters
    ----------
    X : numpy.ndarray
        Inputs, shape (N, D).
    y : numpy.ndarray
        Targets, length N. Class labels when ``stratify`` is true.
    val_fraction : float
        Share of the training pool held out for validation, in [0, 1).
    test_fraction : float
        Share of all samples held out for testing, in [0, 1).
    seed : int
        Seed of the shuffles; the same seed gives the same split.
    stratify : bool
        Keep the class proportions of ``y`` in every part (classification).

    Returns
    -------
    tuple of numpy.ndarray
        ``X_train, y_train, X_val, y_val, X_test, y_test``; empty parts have
        zero rows.

    Raises
    ------
    DataError
        If a stratified split is impossible (a class with too few samples).

    Examples
    --------
    >>> import numpy as np
    >>> from chainrule.data import train_val_test_split
    >>> X, y = np.arange(40.0).reshape(20, 2), np.repeat([0, 1], 10)
    >>> parts = train_val_test_split(X, y, val_fraction=0.25, test_fraction=0.2)
    >>> [len(p) for p in parts]
    [12, 12, 4, 4, 4, 4]
    """
    X = np.asarray(X)
    y = np.asarray(y)
    if len(X) != len(y):
        raise ValueError(f"X has {len(X)} rows but y has {len(y)}")
    _check_fraction("test_fraction", test_fraction)
    _check_fraction("val_fraction", val_fraction)
    labels = y if stratify else None
    idx = np.arange(len(X))
    n_test = int(round(test_fraction * len(idx)))
    pool, test = _split_indices(idx, labels, n_test, seed)
    n_val = int(round(val_fraction * len(pool)))
    train, val = _split_indices(pool, labels, n_val, seed + 1)
    return X[train], y[train], X[val], y[val], X[test], y[test]


def stratified_subsample(
    X: np.ndarray, y: np.ndarray, n: int, *, seed: int = 0, stratify: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``n`` samples without replacement, keeping class proportions.

    Parameters
    ----------
    X, y : numpy.ndarray
        Inputs (N, ...) and labels (N,).
    n : int
        Number of samples to keep; ``n >= N`` returns the data unchanged.
    seed : int
        Seed of the draw.
    stratify : bool
        Keep the class proportions of ``y``.

    Returns
    -------
    tuple of numpy.ndarray
        The subsample ``(X_sub, y_sub)``.

    Examples
    --------
    >>> import numpy as np
    >>> from chainrule.data import stratified_subsample
    >>> Xs, ys = stratified_subsample(np.zeros((100, 3)), np.repeat([0, 1], 50), 10)
    >>> Xs.shape, int(ys.sum())
    ((10, 3), 5)
    """
    if n <= 0:
        raise ValueError(f"n must be positive, got {n}")
    if n >= len(X):
        return X, y
    _, keep = _split_indices(np.arange(len(X)), np.asarray(y) if stratify else None, n, seed)
    return X[keep], y[keep]
