"""Named datasets behind one function, :func:`load`.

Every dataset is available offline: scikit-learn's bundled tables, NumPy
generators, and MNIST-style IDX files from a local directory.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import synthetic
from .checks import require_finite
from .mnist import load_idx_dataset
from .splits import Standardizer, stratified_subsample, train_val_test_split

__all__ = ["Dataset", "dataset_shape", "list_datasets", "load"]


@dataclass(frozen=True, eq=False)
class Dataset:
    """A dataset split into training, validation and test parts.

    Attributes
    ----------
    X_train, X_val, X_test : numpy.ndarray
        float64 inputs of shape (N, D).
    y_train, y_val, y_test : numpy.ndarray
        int64 class labels of shape (N,) for classification, float64 targets
        of shape (N, 1) for regression.
    task : str
        ``"classification"`` or ``"regression"``.
    n_classes : int or None
        Number of classes (None for regression).
    name : str
        The registry name.
    feature_names : tuple of str
        One name per column of ``X``.
    class_names : tuple of str or None
        One name per class, when known.
    image_shape : tuple of int or None
        ``(H, W)`` for image data whose rows are flattened images, else None.
    scaler : Standardizer or None
        The standardisation fitted on ``X_train`` and applied to every part;
        None when loaded with ``standardize=False``.

    Raises
    ------
    DataError
        When a part holds NaN or infinite values (naming the part, row and column).
    """

    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    task: str
    n_classes: int | None
    name: str
    feature_names: tuple[str, ...]
    class_names: tuple[str, ...] | None = None
    image_shape: tuple[int, int] | None = None
    scaler: Standardizer | None = None

    def __post_init__(self) -> None:
        # NaN or inf would only show up later as a diverged loss: refuse them here
        for part in ("X_train", "y_train", "X_val", "y_val", "X_test", "y_test"):
            names = self.feature_names if part.startswith("X") else None
            require_finite(getattr(self, part), f"dataset {self.name!r}, {part}", names)

    @property
    def n_features(self) -> int:
        """Number of input features D."""
        return self.X_train.shape[1]

    def __repr__(self) -> str:
        sizes = f"train={len(self.X_train)}, val={len(self.X_val)}, test={len(self.X_test)}"
        return (
            f"Dataset({self.name!r}, {self.task}, n_features={self.n_features}, "
            f"n_classes={self.n_classes}, {sizes})"
        )


@dataclass(frozen=True)
class _Raw:
    """A dataset before splitting: either one pool, or official train and test parts."""

    X: np.ndarray
    y: np.ndarray
    task: str
    feature_names: tuple[str, ...]
    class_names: tuple[str, ...] | None = None
    image_shape: tuple[int, int] | None = None
    X_test: np.ndarray | None = None
    y_test: np.ndarray | None = None


# Loader signature: (rng, n_samples, noise, data_dir) -> _Raw
_Loader = Callable[[np.random.Generator, "int | None", "float | None", "Path | None"], _Raw]


def _sklearn(fn_name: str, image_shape: tuple[int, int] | None = None) -> _Loader:
    def loader(rng, n_samples, noise, data_dir) -> _Raw:
        import sklearn.datasets

        bunch = getattr(sklearn.datasets, fn_name)()
        X = np.asarray(bunch.data, dtype=np.float64)
        if image_shape is not None:
            X = X / 16.0  # digits are 0..16 grey levels; scale to [0, 1] like MNIST
        names = getattr(bunch, "feature_names", None)
        if names is None:
            names = [f"x{i}" for i in range(X.shape[1])]
        return _Raw(
            X=X,
            y=np.asarray(bunch.target, dtype=np.int64),
            task="classification",
            feature_names=tuple(str(n) for n in names),
            class_names=tuple(str(n) for n in bunch.target_names),
            image_shape=image_shape,
        )

    return loader


def _generated(make: Callable[..., tuple[np.ndarray, np.ndarray]], n: int, noise: float):
    def loader(rng, n_samples, noise_arg, data_dir) -> _Raw:
        X, y = make(
            n if n_samples is None else n_samples, noise if noise_arg is None else noise_arg, rng
        )
        return _Raw(X=X, y=y, task="classification", feature_names=("x0", "x1"))

    return loader


def _xor(rng, n_samples, noise, data_dir) -> _Raw:
    X, y = synthetic.make_xor()
    return _Raw(X=X, y=y, task="classification", feature_names=("x0", "x1"))


def _regression(kind: str) -> _Loader:
    def loader(rng, n_samples, noise, data_dir) -> _Raw:
        X, y = synthetic.make_regression_1d(
            kind, 200 if n_samples is None else n_samples, 0.0 if noise is None else noise, rng
        )
        return _Raw(X=X, y=y, task="regression", feature_names=("x",))

    return loader


def _idx(name: str, default_dir: Path | None, class_names: tuple[str, ...]) -> _Loader:
    def loader(rng, n_samples, noise, data_dir) -> _Raw:
        X_tr, y_tr, X_te, y_te = load_idx_dataset(name, data_dir or default_dir)
        return _Raw(
            X=X_tr,
            y=y_tr,
            task="classification",
            feature_names=tuple(f"pixel{i}" for i in range(X_tr.shape[1])),
            class_names=class_names,
            image_shape=(28, 28),
            X_test=X_te,
            y_test=y_te,
        )

    return loader


def _read_table(path: Path) -> tuple[list[str], np.ndarray]:
    lines = path.read_text(encoding="utf-8").strip().splitlines()
    if len(lines) < 2:
        raise ValueError(f"{path}: expected a header row and at least one data row")
    header = [h.strip() for h in lines[0].split(",")]
    try:
        rows = np.array([[float(v) for v in ln.split(",")] for ln in lines[1:]], dtype=np.float64)
    except ValueError as exc:
        raise ValueError(f"{path}: not a numeric CSV table ({exc})") from None
    if rows.ndim != 2 or rows.shape[1] != len(header):
        raise ValueError(f"{path}: every row needs the {len(header)} columns of the header")
    return header, rows


def _table(rng, n_samples, noise, data_dir) -> _Raw:
    """``data_dir``'s ``train.csv`` and ``test.csv``: features, then ``class`` or ``target``."""
    if data_dir is None:
        raise ValueError("dataset 'table' reads train.csv and test.csv from data_dir: pass it")
    header, train = _read_table(Path(data_dir) / "train.csv")
    _, test = _read_table(Path(data_dir) / "test.csv")
    if header[-1] not in ("class", "target"):
        raise ValueError(f"{data_dir}/train.csv: the last column must be 'class' or 'target'")
    task = "classification" if header[-1] == "class" else "regression"

    def labels(t: np.ndarray) -> np.ndarray:
        return t[:, -1].astype(np.int64) if task == "classification" else t[:, -1:]

    return _Raw(
        X=train[:, :-1], y=labels(train), task=task, feature_names=tuple(header[:-1]),
        X_test=test[:, :-1], y_test=labels(test),
    )  # fmt: skip


_FASHION_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip

_REGISTRY: dict[str, _Loader] = {
    "digits": _sklearn("load_digits", image_shape=(8, 8)),
    "breast_cancer": _sklearn("load_breast_cancer"),
    "iris": _sklearn("load_iris"),
    "wine": _sklearn("load_wine"),
    "moons": _generated(synthetic.make_moons, 500, 0.2),
    "circles": _generated(synthetic.make_circles, 500, 0.1),
    "xor": _xor,
    "xor-cloud": _generated(synthetic.make_xor_cloud, 400, 0.25),
    "spiral": _generated(synthetic.make_spiral, 300, 0.2),
    "sine": _regression("sine"),
    "abs": _regression("abs"),
    "step": _regression("step"),
    "bumps": _regression("bumps"),
    "table": _table,
    "mnist": _idx("mnist", None, tuple(str(d) for d in range(10))),
    "fashion-mnist": _idx(
        "fashion-mnist", Path("/usr/share/datasets/fashion-mnist"), _FASHION_CLASSES
    ),
}


def dataset_shape(name: str, data_dir: str | Path | None = None) -> tuple[int, int]:
    """``(n_features, n_outputs)`` of a named dataset, without splitting or scaling it.

    ``n_outputs`` is the number of classes, or of target columns for regression:
    what sizes a network's input and (softmax or linear) output layers.

    Examples
    --------
    >>> from chainrule.data import dataset_shape
    >>> dataset_shape("digits"), dataset_shape("sine")
    ((64, 10), (1, 1))
    """
    loader = _REGISTRY.get(name)
    if loader is None:
        raise ValueError(f"unknown dataset {name!r}; valid names: {', '.join(_REGISTRY)}")
    raw = loader(np.random.default_rng(0), None, None, None if data_dir is None else Path(data_dir))
    if raw.task == "regression":
        return int(raw.X.shape[1]), int(raw.y.reshape(len(raw.y), -1).shape[1])
    n_classes = len(raw.class_names) if raw.class_names else int(raw.y.max()) + 1
    return int(raw.X.shape[1]), n_classes


def list_datasets() -> list[str]:
    """Names accepted by :func:`load`.

    Examples
    --------
    >>> from chainrule.data import list_datasets
    >>> "moons" in list_datasets()
    True
    """
    return list(_REGISTRY)


def _split(raw: _Raw, seed: int, val_fraction: float, test_fraction: float, n_samples):
    stratify = raw.task == "classification"
    if raw.X_test is None:
        X, y = raw.X, raw.y
        if n_samples is not None and n_samples < len(X):
            X, y = stratified_subsample(X, y, n_samples, seed=seed, stratify=stratify)
        return train_val_test_split(
            X, y, val_fraction=val_fraction, test_fraction=test_fraction, seed=seed,
            stratify=stratify,
        )  # fmt: skip
    # Official train/test parts: validation is carved from the training part.
    X, y, X_te, y_te = raw.X, raw.y, raw.X_test, raw.y_test
    assert y_te is not None  # X_test was given, so was y_test
    if n_samples is not None:
        n_test = int(round(test_fraction * n_samples))
        X, y = stratified_subsample(X, y, n_samples - n_test, seed=seed)
        if n_test > 0 and y_te is not None:
            X_te, y_te = stratified_subsample(X_te, y_te, n_test, seed=seed + 2)
    X_tr, y_tr, X_va, y_va, _, _ = train_val_test_split(
        X, y, val_fraction=val_fraction, test_fraction=0.0, seed=seed, stratify=stratify
    )
    return X_tr, y_tr, X_va, y_va, X_te, y_te


def load(
    name: str,
    *,
    seed: int = 0,
    val_fraction: float = 0.15,
    test_fraction: float = 0.2,
    standardize: bool = True,
    data_dir: str | Path | None = None,
    n_samples: int | None = None,
    noise: float | None = None,
) -> Dataset:
    """Load a named dataset, split it (stratified, seeded) and standardise it.

    Datasets (see :func:`list_datasets`):

    - ``digits`` (8x8 images scaled to [0, 1]), ``breast_cancer``, ``iris``,
      ``wine``: scikit-learn's bundled tables, no download.
    - ``moons``, ``circles``, ``xor-cloud`` (Gaussian clouds at the XOR
      corners), ``spiral`` (3 arms): generated 2-D classification problems.
    - ``xor``: the 4 points of the XOR truth table. Splitting 4 points makes
      no sense, so train, validation and test all equal those 4 points.
    - ``sine`` (on [-pi, pi]), ``abs``, ``step``, ``bumps`` (on [-1, 1]):
      1-D regression, ``y`` of shape (N, 1), noise-free unless ``noise``.
    - ``mnist``, ``fashion-mnist``: 28x28 images from the four IDX files in
      ``data_dir`` (default for fashion-mnist: ``/usr/share/datasets/fashion-mnist``,
      from the Debian package ``dataset-fashion-mnist``; mnist has no
      default). Pixels scaled to [0, 1] and flattened to 784 features. The
      official test set is the test part and ``test_fraction`` is ignored
      unless ``n_samples`` is given.
    - ``table``: ``train.csv`` and ``test.csv`` from ``data_dir`` (a header row;
      feature columns, then ``class`` for integer labels or ``target`` for
      regression values); the playground's exports hold one.

    Parameters
    ----------
    name : str
        Dataset name.
    seed : int
        Seed of generation, subsampling and splitting; the same seed gives
        identical arrays.
    val_fraction : float
        Share of the training pool (what remains after the test part) held out
        for validation.
    test_fraction : float
        Share of all samples held out for testing.
    standardize : bool
        Standardise features with the mean and std of the training part only,
        applied to all parts (``Dataset.scaler``). Regression targets are not
        scaled.
    data_dir : str or pathlib.Path or None
        Directory of the IDX files (mnist, fashion-mnist).
    n_samples : int or None
        Number of samples: generated datasets generate this many (defaults:
        moons/circles 500, xor-cloud 400, spiral 300, regression 200); tables
        and images are subsampled (stratified) to this many in total, split
        into parts by the fractions. Ignored by ``xor``.
    noise : float or None
        Noise level of generated datasets (None: the dataset's default;
        regression defaults to 0).

    Returns
    -------
    Dataset
        The parts, the task, class count, feature names and fitted scaler.

    Raises
    ------
    ValueError
        For an unknown name (the message lists the valid names).
    DataError
        When image files are missing or corrupt.

    Examples
    --------
    >>> from chainrule.data import load
    >>> ds = load("moons", n_samples=200, seed=1)
    >>> ds.X_train.shape, ds.n_classes, ds.task
    ((136, 2), 2, 'classification')
    >>> load("sine").y_test.shape
    (40, 1)
    """
    loader = _REGISTRY.get(name)
    if loader is None:
        raise ValueError(f"unknown dataset {name!r}; valid names: {', '.join(_REGISTRY)}")
    if n_samples is not None and n_samples <= 0:
        raise ValueError(f"n_samples must be positive, got {n_samples}")
    rng = np.random.default_rng(seed)
    raw = loader(rng, n_samples, noise, None if data_dir is None else Path(data_dir))
    split_seed = int(rng.integers(2**31 - 3))
    if name == "xor":
        parts = tuple(a.copy() for _ in range(3) for a in (raw.X, raw.y))
    else:
        parts = _split(raw, split_seed, val_fraction, test_fraction, n_samples)
    X_tr, y_tr, X_va, y_va, X_te, y_te = parts
    scaler = None
    if standardize:
        # images: one mean and std over all pixels (see Standardizer.fit)
        scaler = Standardizer.fit(X_tr, per_feature=raw.image_shape is None)
        X_tr, X_va, X_te = (scaler.transform(a) for a in (X_tr, X_va, X_te))
    classification = raw.task == "classification"
    n_classes = len(raw.class_names) if raw.class_names else int(raw.y.max()) + 1
    return Dataset(
        X_train=np.asarray(X_tr, dtype=np.float64),
        y_train=y_tr,
        X_val=np.asarray(X_va, dtype=np.float64),
        y_val=y_va,
        X_test=np.asarray(X_te, dtype=np.float64),
        y_test=y_te,
        task=raw.task,
        n_classes=n_classes if classification else None,
        name=name,
        feature_names=raw.feature_names,
        class_names=raw.class_names,
        image_shape=raw.image_shape,
        scaler=scaler,
    )
