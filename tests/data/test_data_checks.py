"""NaN and infinite values are refused when a dataset is built, naming part, row and column."""

import dataclasses

import numpy as np
import pytest

from chainrule import data, nn, train
from chainrule.data import DataError, require_finite


def test_a_dataset_with_nan_or_inf_is_refused_with_row_and_column():
    ds = data.load("iris", seed=0)
    X = ds.X_train.copy()
    X[7, 2] = np.nan
    with pytest.raises(DataError, match=r"'iris', X_train: NaN at row 7, column 2 \('petal"):
        dataclasses.replace(ds, X_train=X)
    X = ds.X_test.copy()
    X[0, 0], X[3, 1] = np.inf, -np.inf
    with pytest.raises(DataError, match=r"X_test: inf at row 0, column 0 .*2 non-finite values"):
        dataclasses.replace(ds, X_test=X)
    y = ds.y_val.astype(np.float64)
    y[1] = np.nan
    with pytest.raises(DataError, match="y_val: NaN at row 1, column 0"):
        dataclasses.replace(ds, y_val=y)


def test_training_on_user_data_with_nan_fails_at_load_not_as_divergence():
    ds = data.load("sine", seed=0)
    X = ds.X_train.copy()
    X[3, 0] = np.nan
    with pytest.raises(DataError, match="X_train: NaN at row 3"):
        bad = dataclasses.replace(ds, X_train=X)
        train.fit(nn.MLP([1, 4, 1], output="linear", rng=0), bad, epochs=1, progress=False)


def test_require_finite_accepts_integers_and_finite_floats():
    require_finite(np.arange(6).reshape(3, 2), "labels")
    require_finite(np.ones((2, 2)), "X")
    with pytest.raises(DataError, match=r"^v: -inf at row 2, column 0; 1 non-finite value in"):
        require_finite(np.array([0.0, 1.0, -np.inf]), "v")


def test_dataset_shape_sizes_the_network_without_splitting():
    assert data.dataset_shape("iris") == (4, 3)
    assert data.dataset_shape("breast_cancer") == (30, 2)
    with pytest.raises(ValueError, match="unknown dataset"):
        data.dataset_shape("nope")
