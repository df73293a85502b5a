"""MNIST-style image datasets read from the four standard IDX files."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import DataError
from .idx import read_idx

__all__ = ["IDX_FILES", "find_idx_file", "load_idx_dataset"]

IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


def _how_to_get(name: str) -> str:
    files = ", ".join(f"{f}.gz" for f in IDX_FILES.values())
    apt = (
        "install them with `apt-get install dataset-fashion-mnist` "
        "(files land in /usr/share/datasets/fashion-mnist), or "
        if name == "fashion-mnist"
        else ""
    )
    return (
        f"To get {name}, {apt}download the four IDX files ({files}) into a directory "
        "and pass it as data_dir=... (--data-dir on the command line)."
    )


def find_idx_file(directory: Path, stem: str, name: str = "dataset") -> Path:
    """Find ``stem`` in ``directory``, raw or ``.gz`` (also the ``-idx`` -> ``.idx`` spelling).

    Raises
    ------
    DataError
        Naming the missing file, the directory and how to get the files.
    """
    stems = (stem, stem.replace("-idx", ".idx"))
    for s in stems:
        for candidate in (directory / s, directory / f"{s}.gz"):
            if candidate.is_file():
                return candidate
    raise DataError(
        f"{name}: file {stem!r} (or {stem}.gz) not found in {str(directory)!r}. "
        + _how_to_get(name)
    )


def _check(arr: np.ndarray, path: Path, ndim: int, tail: tuple[int, ...], what: str) -> None:
    if arr.dtype != np.uint8 or arr.ndim != ndim or arr.shape[1:] != tail:
        want = "(N" + "".join(f", {t}" for t in tail) + ")"
        raise DataError(
            f"IDX file {str(path)!r} should hold {what} of shape {want} uint8, "
            f"got shape {arr.shape} {arr.dtype}"
        )


def _read_pair(
    directory: Path, images_stem: str, labels_stem: str, name: str
) -> tuple[np.ndarray, np.ndarray]:
    img_path = find_idx_file(directory, images_stem, name)
    lab_path = find_idx_file(directory, labels_stem, name)
    images, labels = read_idx(img_path), read_idx(lab_path)
    _check(images, img_path, 3, (28, 28), "28x28 images")
    _check(labels, lab_path, 1, (), "labels")
    if len(images) != len(labels):
        raise DataError(
            f"{name}: {str(img_path)!r} has {len(images)} images but "
            f"{str(lab_path)!r} has {len(labels)} labels"
        )
    if labels.size and labels.max() > 9:
        raise DataError(f"{name}: labels in {str(lab_path)!r} go up to {labels.max()}, above 9")
    X = images.reshape(len(images), -1).astype(np.float64)
    X /= 255.0
    return X, labels.astype(np.int64)


def load_idx_dataset(
    name: str, directory: str | Path | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Read the official train and test parts of an MNIST-style dataset.

    Parameters
    ----------
    name : str
        Dataset name, used in error messages.
    directory : str or pathlib.Path or None
        Directory holding the four IDX files (raw or ``.gz``).

    Returns
    -------
    tuple of numpy.ndarray
        ``X_train, y_train, X_test, y_test``: float64 pixels in [0, 1] of
        shape (N, 784) and int64 labels.

    Raises
    ------
    DataError
        If the directory or a file is missing, or a file is corrupt.

    Examples
    --------
    >>> from chainrule.data.mnist import load_idx_dataset
    >>> load_idx_dataset("mnist", None)
    Traceback (most recent call last):
    ...
    chainrule.data.errors.DataError: mnist has no default location...
    """
    if directory is None:
        raise DataError(f"{name} has no default location; " + _how_to_get(name))
    directory = Path(directory)
    if not directory.is_dir():
        raise DataError(
            f"{name}: directory {str(directory)!r} does not exist. " + _how_to_get(name)
        )
    X_tr, y_tr = _read_pair(directory, IDX_FILES["train_images"], IDX_FILES["train_labels"], name)
    X_te, y_te = _read_pair(directory, IDX_FILES["test_images"], IDX_FILES["test_labels"], name)
    return X_tr, y_tr, X_te, y_te
