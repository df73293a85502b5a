"""The playground's 2-D datasets, input features and user data (drawn points, CSV).

Points live on the plane ``[-6, 6]^2`` as in TensorFlow Playground. Class
labels are 0 and 1; regression targets lie in ``[-1, 1]``. Every generator
takes a ``numpy.random.Generator``, so a seed reproduces a dataset.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

#: half the side of the input plane
EXTENT = 6.0
#: points generated for a built-in dataset
N_POINTS = 500
#: most points a session may hold (drawn or loaded)
MAX_POINTS = 2000

CLASSIFICATION = ("circle", "xor", "gauss", "spiral", "fn-sine", "fn-cubic", "fn-abs")
REGRESSION = ("plane", "multigauss")
CUSTOM = ("custom",)
DATASETS = CLASSIFICATION + REGRESSION + CUSTOM

Generator = Callable[[np.random.Generator, int, float], tuple[np.ndarray, np.ndarray]]


def _circle(rng: np.random.Generator, n: int, noise: float) -> tuple[np.ndarray, np.ndarray]:
    radius = 5.0
    half = n // 2
    r = np.concatenate(
        [rng.uniform(0, 0.5 * radius, half), rng.uniform(0.7 * radius, radius, n - half)]
    )
    angle = rng.uniform(0, 2 * math.pi, n)
    X = np.stack([r * np.sin(angle), r * np.cos(angle)], axis=1)  # noqa: N806
    X += rng.uniform(-radius, radius, X.shape) * noise
    y = np.concatenate([np.ones(half), np.zeros(n - half)])  # the ring a point was drawn from
    return X, y


def _xor(rng: np.random.Generator, n: int, noise: float) -> tuple[np.ndarray, np.ndarray]:
    pad = 0.3
    X = rng.uniform(-5, 5, (n, 2))  # noqa: N806
    X += np.where(X > 0, pad, -pad)
    y = (X[:, 0] * X[:, 1] >= 0).astype(np.float64)
    X += rng.uniform(-5, 5, X.shape) * noise
    return X, y


def _gauss(rng: np.random.Generator, n: int, noise: float) -> tuple[np.ndarray, np.ndarray]:
    std = 0.5 + 3.5 * noise / 0.5  # variance grows with the noise, as in TF Playground
    half = n // 2
    X = np.concatenate(  # noqa: N806
        [rng.normal(2, math.sqrt(std), (half, 2)), rng.normal(-2, math.sqrt(std), (n - half, 2))]
    )
    y = np.concatenate([np.ones(half), np.zeros(n - half)])
    return X, y


def _spiral(rng: np.random.Generator, n: int, noise: float) -> tuple[np.ndarray, np.ndarray]:
    half = n // 2
    parts, labels = [], []
    for delta, label in ((0.0, 1.0), (math.pi, 0.0)):
        i = np.arange(half)
        r = i / half * 5
        t = 1.75 * i / half * 2 * math.pi + delta
        pts = np.stack([r * np.sin(t), r * np.cos(t)], axis=1)
        parts.append(pts + rng.uniform(-1, 1, pts.shape) * noise * 5)
        labels.append(np.full(half, label))
    return np.concatenate(parts), np.concatenate(labels)


def _boundary(f: Callable[[np.ndarray], np.ndarray]) -> Generator:
    def make(rng: np.random.Generator, n: int, noise: float) -> tuple[np.ndarray, np.ndarray]:
        X = rng.uniform(-EXTENT, EXTENT, (n, 2))  # noqa: N806
        y = (X[:, 1] > f(X[:, 0])).astype(np.float64)
        X += rng.normal(0, 1, X.shape) * noise * 2
        return X, y

    return make


def _plane(rng: np.random.Generator, n: int, noise: float) -> tuple[np.ndarray, np.ndarray]:
    X = rng.uniform(-EXTENT, EXTENT, (n, 2))  # noqa: N806
    y = (X[:, 0] + X[:, 1]) / (2 * EXTENT)
    y += rng.uniform(-1, 1, n) * noise
    return X, np.clip(y, -1, 1)


_CENTRES = np.array(
    [[-4, 2.5, 1], [0, 2.5, -1], [4, 2.5, 1], [-4, -2.5, -1], [0, -2.5, 1], [4, -2.5, -1]]
)


def _multigauss(rng: np.random.Generator, n: int, noise: float) -> tuple[np.ndarray, np.ndarray]:
    X = rng.uniform(-EXTENT, EXTENT, (n, 2))  # noqa: N806
    d2 = (X[:, None, 0] - _CENTRES[:, 0]) ** 2 + (X[:, None, 1] - _CENTRES[:, 1]) ** 2
    y = (_CENTRES[:, 2] * np.exp(-d2 / 2)).sum(axis=1)
    y += rng.uniform(-1, 1, n) * noise
    return X, np.clip(y, -1, 1)


GENERATORS: dict[str, Generator] = {
    "circle": _circle,
    "xor": _xor,
    "gauss": _gauss,
    "spiral": _spiral,
    "fn-sine": _boundary(lambda x: 3 * np.sin(x)),
    "fn-cubic": _boundary(lambda x: x**3 / 20),
    "fn-abs": _boundary(lambda x: np.abs(x) - 3),
    "plane": _plane,
    "multigauss": _multigauss,
}


def task_of(dataset: str, problem: str) -> str:
    """``"classification"`` or ``"regression"``: fixed by a built-in dataset, chosen for custom."""
    if dataset in CLASSIFICATION:
        return "classification"
    if dataset in REGRESSION:
        return "regression"
    return problem


def generate(
    dataset: str, noise: float, seed: int, n: int = N_POINTS
) -> tuple[np.ndarray, np.ndarray]:
    """Points ``X`` (n, 2) and labels ``y`` (n,) of a built-in dataset.

    Examples
    --------
    >>> X, y = generate("spiral", 0.0, seed=0)
    >>> X.shape, sorted(set(y.tolist()))
    ((500, 2), [0.0, 1.0])
    """
    if dataset not in GENERATORS:
        raise ValueError(f"unknown dataset {dataset!r}; choose one of {sorted(GENERATORS)}")
    X, y = GENERATORS[dataset](np.random.default_rng(seed), n, noise)  # noqa: N806
    return X.astype(np.float64), y.astype(np.float64)


def split(
    X: np.ndarray,
    y: np.ndarray,
    ratio: float,
    seed: int,  # noqa: N803
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Shuffle and cut into a training part (``ratio`` of the points) and a test part."""
    order = np.random.default_rng(seed + 1).permutation(len(X))
    k = max(1, int(round(ratio * len(X))))
    tr, te = order[:k], order[k:]
    return X[tr], y[tr], X[te], y[te]


FEATURES: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "x1": lambda a, b: a,
    "x2": lambda a, b: b,
    "x1^2": lambda a, b: a * a,
    "x2^2": lambda a, b: b * b,
    "x1*x2": lambda a, b: a * b,
    "sin(x1)": lambda a, b: np.sin(a),
    "sin(x2)": lambda a, b: np.sin(b),
}


def features(X: np.ndarray, names: list[str]) -> np.ndarray:  # noqa: N803
    """The chosen input features of points ``X`` (n, 2), one column per name.

    Examples
    --------
    >>> features(np.array([[2.0, 3.0]]), ["x1", "x1*x2", "x2^2"])
    array([[2., 6., 9.]])
    """
    return np.stack([FEATURES[n](X[:, 0], X[:, 1]) for n in names], axis=1)


def parse_csv(text: str, task: str, max_rows: int = MAX_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """Points and labels from CSV text ``x1,x2,label`` (an optional header line).

    Every bad row is named in the error: its line number and what is wrong.
    Coordinates must lie in ``[-6, 6]``; labels are 0/1 for classification and
    in ``[-1, 1]`` for regression.

    Raises
    ------
    ValueError
        With one line per bad row (at most 10 shown).

    Examples
    --------
    >>> X, y = parse_csv("x1,x2,label\\n1,2,1\\n-3,0.5,0\\n", "classification")
    >>> X.shape, y.tolist()
    ((2, 2), [1.0, 0.0])
    """
    lines = [(i + 1, ln) for i, ln in enumerate(text.splitlines()) if ln.strip()]
    if lines and not _numeric(lines[0][1].split(",")[0]):
        lines = lines[1:]  # a header
    if not lines:
        raise ValueError("CSV: no data rows; expected lines 'x1,x2,label'")
    if len(lines) > max_rows:
        raise ValueError(f"CSV: {len(lines)} rows, at most {max_rows} are allowed")
    rows, errors = [], []
    for no, line in lines:
        err = _row_error(line.split(","), task)
        if err:
            errors.append(f"line {no}: {err}")
        else:
            rows.append([float(v) for v in line.split(",")])
    if errors:
        more = f" (and {len(errors) - 10} more)" if len(errors) > 10 else ""
        raise ValueError("CSV: " + "; ".join(errors[:10]) + more)
    table = np.array(rows, dtype=np.float64)
    return table[:, :2], table[:, 2]


def _numeric(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


def _row_error(cells: list[str], task: str) -> str | None:
    if len(cells) != 3:
        return f"expected 3 values x1,x2,label, got {len(cells)}"
    if not all(_numeric(c) for c in cells):
        return f"not a finite number in {','.join(c.strip() for c in cells)!r}"
    x1, x2, label = (float(c) for c in cells)
    if abs(x1) > EXTENT or abs(x2) > EXTENT:
        return f"point ({x1}, {x2}) lies outside [-6, 6]^2"
    if task == "classification" and label not in (0.0, 1.0):
        return f"class label {label} is not 0 or 1"
    if task == "regression" and abs(label) > 1:
        return f"regression target {label} is outside [-1, 1]"
    return None
