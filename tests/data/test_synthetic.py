import numpy as np
import pytest

from chainrule.data import (
    make_circles,
    make_moons,
    make_regression_1d,
    make_spiral,
    make_xor,
    make_xor_cloud,
    regression_function,
    stratified_subsample,
    train_val_test_split,
)


@pytest.mark.parametrize("make", [make_moons, make_circles, make_xor_cloud, make_spiral])
def test_generators_are_seeded_and_balanced(make):
    X1, y1 = make(101, rng=3)
    X2, y2 = make(101, rng=np.random.default_rng(3))
    np.testing.assert_array_equal(X1, X2)
    np.testing.assert_array_equal(y1, y2)
    assert X1.shape == (101, 2) and X1.dtype == np.float64 and y1.dtype == np.int64
    counts = np.bincount(y1)
    assert counts.max() - counts.min() <= 1


def test_spiral_arms():
    X, y = make_spiral(500, noise=0.0, rng=0, n_classes=5)
    assert set(y.tolist()) == set(range(5))
    assert np.linalg.norm(X, axis=1).max() == pytest.approx(1.0)


def test_xor_truth_table():
    X, y = make_xor()
    np.testing.assert_array_equal(y, np.logical_xor(X[:, 0], X[:, 1]).astype(int))


@pytest.mark.parametrize("name", ["sine", "abs", "step", "bumps"])
def test_regression_noise_free(name):
    X, y = make_regression_1d(name, 30, rng=0)
    f, (lo, hi) = regression_function(name)
    np.testing.assert_array_equal(y, f(X))
    assert X.shape == y.shape == (30, 1)
    assert lo <= X.min() and X.max() <= hi


def test_unknown_regression_function():
    with pytest.raises(ValueError, match="sine"):
        regression_function("cosine")


def test_train_val_test_split_partitions_the_data():
    X = np.arange(200.0)[:, None]
    y = np.arange(200) % 4
    parts = train_val_test_split(X, y, val_fraction=0.25, test_fraction=0.2, seed=1)
    X_tr, y_tr, X_va, y_va, X_te, y_te = parts
    assert (len(X_tr), len(X_va), len(X_te)) == (120, 40, 40)
    allx = np.concatenate([X_tr, X_va, X_te])[:, 0]
    assert sorted(allx.tolist()) == X[:, 0].tolist()
    for Xp, yp in [(X_tr, y_tr), (X_va, y_va), (X_te, y_te)]:
        np.testing.assert_array_equal(Xp[:, 0].astype(int) % 4, yp)
        assert np.bincount(yp).tolist() == [len(yp) // 4] * 4


def test_stratified_subsample():
    X, y = np.zeros((100, 2)), np.repeat([0, 1, 2, 3], 25)
    Xs, ys = stratified_subsample(X, y, 40, seed=0)
    assert Xs.shape == (40, 2) and np.bincount(ys).tolist() == [10] * 4


def test_impossible_stratification_is_a_data_error():
    from chainrule.data import DataError

    with pytest.raises(DataError, match="stratified"):
        train_val_test_split(np.zeros((5, 1)), np.array([0, 0, 0, 0, 1]), test_fraction=0.4)
