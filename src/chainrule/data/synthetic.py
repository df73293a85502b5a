"""Generated datasets: 2-D classification toys and 1-D regression functions.

Every generator takes a ``numpy.random.Generator`` (or an int seed) and returns
``(X, y)`` with ``X`` float64 of shape (N, D); the same seed gives identical
arrays.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = [
    "REGRESSION_FUNCTIONS",
    "make_circles",
    "make_moons",
    "make_regression_1d",
    "make_spiral",
    "make_xor",
    "make_xor_cloud",
    "regression_function",
]

RngLike = np.random.Generator | int | None


def _rng(rng: RngLike) -> np.random.Generator:
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


def _class_sizes(n: int, k: int) -> np.ndarray:
    """Split ``n`` samples over ``k`` classes as evenly as possible."""
    if n < k:
        raise ValueError(f"need at least {k} samples for {k} classes, got n_samples={n}")
    return np.full(k, n // k) + (np.arange(k) < n % k)


def _shuffled(rng: np.random.Generator, X: np.ndarray, y: np.ndarray):
    perm = rng.permutation(len(X))
    return X[perm], y[perm]


def make_moons(
    n_samples: int = 500, noise: float = 0.2, rng: RngLike = None
) -> tuple[np.ndarray, np.ndarray]:
    """Two interleaving half circles (labels 0 and 1) with Gaussian noise.

    Examples
    --------
    >>> from chainrule.data import make_moons
    >>> X, y = make_moons(10, noise=0.1, rng=0)
    >>> X.shape, y.tolist().count(1)
    ((10, 2), 5)
    """
    rng = _rng(rng)
    n0, n1 = _class_sizes(n_samples, 2)
    t0 = rng.uniform(0.0, np.pi, n0)
    t1 = rng.uniform(0.0, np.pi, n1)
    upper = np.column_stack([np.cos(t0), np.sin(t0)])
    lower = np.column_stack([1.0 - np.cos(t1), 0.5 - np.sin(t1)])
    X = np.vstack([upper, lower]) + noise * rng.standard_normal((n_samples, 2))
    y = np.repeat(np.arange(2, dtype=np.int64), [n0, n1])
    return _shuffled(rng, X, y)


def make_circles(
    n_samples: int = 500, noise: float = 0.1, rng: RngLike = None, factor: float = 0.5
) -> tuple[np.ndarray, np.ndarray]:
    """An outer circle (label 0) around an inner circle of radius ``factor`` (label 1).

    Examples
    --------
    >>> from chainrule.data import make_circles
    >>> X, y = make_circles(8, noise=0.0, rng=0)
    >>> sorted(set(round(float(r), 6) for r in (X ** 2).sum(axis=1) ** 0.5))
    [0.5, 1.0]
    """
    rng = _rng(rng)
    n0, n1 = _class_sizes(n_samples, 2)
    t = rng.uniform(0.0, 2.0 * np.pi, n_samples)
    radius = np.concatenate([np.ones(n0), np.full(n1, factor)])
    X = radius[:, None] * np.column_stack([np.cos(t), np.sin(t)])
    X = X + noise * rng.standard_normal((n_samples, 2))
    y = np.repeat(np.arange(2, dtype=np.int64), [n0, n1])
    return _shuffled(rng, X, y)


def make_xor() -> tuple[np.ndarray, np.ndarray]:
    """The four points of the XOR truth table, in the order 00, 01, 10, 11.

    Examples
    --------
    >>> from chainrule.data import make_xor
    >>> X, y = make_xor()
    >>> X.tolist(), y.tolist()
    ([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]], [0, 1, 1, 0])
    """
    X = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    y = np.array([0, 1, 1, 0], dtype=np.int64)
    return X, y


def make_xor_cloud(
    n_samples: int = 400, noise: float = 0.25, rng: RngLike = None
) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian clouds around the four XOR corners (-1, -1), (-1, 1), (1, -1), (1, 1).

    The label is 1 when exactly one coordinate of the corner is positive.

    Examples
    --------
    >>> from chainrule.data import make_xor_cloud
    >>> X, y = make_xor_cloud(40, noise=0.1, rng=0)
    >>> bool(((X[:, 0] * X[:, 1] < 0) == (y == 1)).all())
    True
    """
    rng = _rng(rng)
    sizes = _class_sizes(n_samples, 4)
    corners = np.array([[-1.0, -1.0], [-1.0, 1.0], [1.0, -1.0], [1.0, 1.0]])
    which = np.repeat(np.arange(4), sizes)
    X = corners[which] + noise * rng.standard_normal((n_samples, 2))
    y = np.array([0, 1, 1, 0], dtype=np.int64)[which]
    return _shuffled(rng, X, y)


def make_spiral(
    n_samples: int = 300, noise: float = 0.2, rng: RngLike = None, n_classes: int = 3
) -> tuple[np.ndarray, np.ndarray]:
    """``n_classes`` interleaved spiral arms (the CS231n toy problem).

    Arm ``j`` has radius ``r`` from 0 to 1 and angle ``t`` from ``4j`` to
    ``4(j + 1)`` radians plus ``noise`` times Gaussian jitter; the point is
    ``(r sin t, r cos t)``.

    Examples
    --------
    >>> from chainrule.data import make_spiral
    >>> X, y = make_spiral(30, rng=0, n_classes=3)
    >>> X.shape, sorted(set(y.tolist()))
    ((30, 2), [0, 1, 2])
    """
    rng = _rng(rng)
    parts_X, parts_y = [], []
    for j, size in enumerate(_class_sizes(n_samples, n_classes)):
        r = np.linspace(0.0, 1.0, size)
        t = np.linspace(4.0 * j, 4.0 * (j + 1), size) + noise * rng.standard_normal(size)
        parts_X.append(np.column_stack([r * np.sin(t), r * np.cos(t)]))
        parts_y.append(np.full(size, j, dtype=np.int64))
    return _shuffled(rng, np.vstack(parts_X), np.concatenate(parts_y))


_BUMP_CENTRES = np.array([-0.7, -0.3, 0.1, 0.45, 0.8])
_BUMP_HEIGHTS = np.array([1.0, -0.6, 0.8, -0.4, 0.7])
_BUMP_WIDTH = 0.1


def _bumps(x: np.ndarray) -> np.ndarray:
    d = (np.asarray(x)[..., None] - _BUMP_CENTRES) / _BUMP_WIDTH
    return (_BUMP_HEIGHTS * np.exp(-0.5 * d**2)).sum(axis=-1)


# name -> (true function, input interval)
REGRESSION_FUNCTIONS: dict[str, tuple[Callable[[np.ndarray], np.ndarray], tuple[float, float]]] = {
    "sine": (np.sin, (-np.pi, np.pi)),
    "abs": (np.abs, (-1.0, 1.0)),
    "step": (lambda x: (np.asarray(x) > 0).astype(np.float64), (-1.0, 1.0)),
    "bumps": (_bumps, (-1.0, 1.0)),
}


def regression_function(
    name: str,
) -> tuple[Callable[[np.ndarray], np.ndarray], tuple[float, float]]:
    """The noise-free target function of a 1-D regression dataset and its interval.

    Examples
    --------
    >>> from chainrule.data import regression_function
    >>> f, (lo, hi) = regression_function("abs")
    >>> float(f(-0.5)), lo, hi
    (0.5, -1.0, 1.0)
    """
    try:
        return REGRESSION_FUNCTIONS[name]
    except KeyError:
        raise ValueError(
            f"unknown regression function {name!r}; valid: {', '.join(REGRESSION_FUNCTIONS)}"
        ) from None


def make_regression_1d(
    name: str, n_samples: int = 200, noise: float = 0.0, rng: RngLike = None
) -> tuple[np.ndarray, np.ndarray]:
    """Sample ``y = f(x) + noise * N(0, 1)`` with ``x`` uniform on the function's interval.

    ``name`` is one of ``sine`` (on [-pi, pi]), ``abs``, ``step`` (0 for x <= 0,
    1 above) and ``bumps`` (a fixed sum of Gaussian bumps), the last three on
    [-1, 1].

    Returns
    -------
    tuple of numpy.ndarray
        ``X`` of shape (N, 1) and ``y`` of shape (N, 1), both float64.

    Examples
    --------
    >>> from chainrule.data import make_regression_1d
    >>> X, y = make_regression_1d("sine", 5, rng=0)
    >>> X.shape, y.shape, bool(abs(y - __import__("numpy").sin(X)).max() == 0)
    ((5, 1), (5, 1), True)
    """
    f, (lo, hi) = regression_function(name)
    rng = _rng(rng)
    x = rng.uniform(lo, hi, n_samples)
    y = f(x) + noise * rng.standard_normal(n_samples)
    return x[:, None], np.asarray(y, dtype=np.float64)[:, None]
