from pathlib import Path

import numpy as np
import pytest

from chainrule.data import DataError, list_datasets, load, make_xor, regression_function

FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
OFFLINE = [n for n in list_datasets() if n not in ("mnist", "fashion-mnist", "table")]
CLASSIFICATION = [
    "digits",
    "breast_cancer",
    "iris",
    "wine",
    "moons",
    "circles",
    "xor-cloud",
    "spiral",
]
REGRESSION = ["sine", "abs", "step", "bumps"]


@pytest.mark.parametrize("name", OFFLINE)
def test_every_dataset_loads_with_consistent_shapes(name):
    ds = load(name)
    d = ds.n_features
    assert len(ds.feature_names) == d
    for X, y in [(ds.X_train, ds.y_train), (ds.X_val, ds.y_val), (ds.X_test, ds.y_test)]:
        assert X.dtype == np.float64 and X.ndim == 2 and X.shape[1] == d
        assert len(y) == len(X) > 0
        if ds.task == "classification":
            assert y.dtype == np.int64 and y.ndim == 1
            assert y.min() >= 0 and y.max() < ds.n_classes
        else:
            assert y.dtype == np.float64 and y.shape == (len(X), 1)
            assert ds.n_classes is None
    assert ds.task == ("regression" if name in REGRESSION else "classification")


def test_known_shapes_and_image_metadata():
    digits = load("digits")
    assert digits.n_features == 64 and digits.n_classes == 10 and digits.image_shape == (8, 8)
    assert load("iris").n_classes == 3 and load("iris").image_shape is None
    assert load("spiral").n_classes == 3
    assert load("breast_cancer").n_features == 30
    raw = load("digits", standardize=False)
    assert raw.X_train.min() >= 0.0 and raw.X_train.max() <= 1.0 and raw.scaler is None


def test_default_split_sizes():
    ds = load("moons", n_samples=1000)
    assert (len(ds.X_train), len(ds.X_val), len(ds.X_test)) == (680, 120, 200)
    ds = load("moons", n_samples=100, val_fraction=0.0, test_fraction=0.0)
    assert (len(ds.X_train), len(ds.X_val), len(ds.X_test)) == (100, 0, 0)


@pytest.mark.parametrize("name", ["digits", "breast_cancer", "wine", "spiral"])
def test_splits_are_stratified(name):
    ds = load(name, seed=3)
    whole = np.concatenate([ds.y_train, ds.y_val, ds.y_test])
    overall = np.bincount(whole, minlength=ds.n_classes) / len(whole)
    for y in (ds.y_train, ds.y_val, ds.y_test):
        share = np.bincount(y, minlength=ds.n_classes) / len(y)
        assert np.abs(share - overall).max() < 0.03


def test_standardisation_uses_training_statistics_only():
    ds = load("wine", seed=1)
    np.testing.assert_allclose(ds.X_train.mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(ds.X_train.std(axis=0), 1.0, atol=1e-12)
    assert np.abs(ds.X_test.mean(axis=0)).max() > 1e-3
    raw = load("wine", seed=1, standardize=False)
    np.testing.assert_allclose(ds.scaler.mean, raw.X_train.mean(axis=0))
    np.testing.assert_allclose(ds.scaler.transform(raw.X_test), ds.X_test)
    np.testing.assert_allclose(ds.scaler.inverse_transform(ds.X_val), raw.X_val)


def test_constant_features_get_unit_std():
    from chainrule.data import Standardizer

    X = load("digits", standardize=False).X_train  # has always-blank corner pixels
    s = Standardizer.fit(X)
    assert (s.std > 0).all() and (s.std == 1.0).any()
    assert np.isfinite(s.transform(X)).all()


def test_images_are_standardised_with_one_mean_and_std():
    # per-pixel statistics would divide by the tiny std of border pixels, so a
    # shifted digit (ink on the border) would reach |z| in the hundreds
    ds = load("digits")
    assert np.all(ds.scaler.std == ds.scaler.std[0]) and np.all(ds.scaler.mean == ds.scaler.mean[0])
    assert abs(ds.X_train.mean()) < 1e-12 and abs(ds.X_train.std() - 1.0) < 1e-12
    raw = load("digits", standardize=False)
    shifted = np.roll(raw.X_test.reshape(-1, 8, 8), 2, axis=2).reshape(len(raw.X_test), -1)
    assert np.abs(ds.scaler.transform(shifted)).max() < 10


@pytest.mark.parametrize("name", ["moons", "circles", "xor-cloud", "spiral", "bumps", "iris"])
def test_same_seed_same_arrays_different_seed_different(name):
    a, b, c = load(name, seed=7), load(name, seed=7), load(name, seed=8)
    for part in ("X_train", "y_train", "X_val", "X_test", "y_test"):
        np.testing.assert_array_equal(getattr(a, part), getattr(b, part))
    assert not np.array_equal(a.X_train, c.X_train)


def test_xor_all_parts_are_the_truth_table():
    ds = load("xor", standardize=False)
    X, y = make_xor()
    for Xp, yp in [(ds.X_train, ds.y_train), (ds.X_val, ds.y_val), (ds.X_test, ds.y_test)]:
        np.testing.assert_array_equal(Xp, X)
        np.testing.assert_array_equal(yp, y)
    assert ds.X_train is not ds.X_test
    np.testing.assert_array_equal(load("xor").X_train, 2 * X - 1)


def test_noise_and_n_samples_options():
    clean = load("sine", noise=0.0, standardize=False, n_samples=50)
    f, (lo, hi) = regression_function("sine")
    np.testing.assert_allclose(clean.y_train, f(clean.X_train))
    assert lo <= clean.X_train.min() and clean.X_train.max() <= hi
    noisy = load("sine", noise=0.3, standardize=False, n_samples=50)
    assert np.abs(noisy.y_train - f(noisy.X_train)).max() > 0.1
    sub = load("digits", n_samples=300)
    assert len(sub.X_train) + len(sub.X_val) + len(sub.X_test) == 300


def test_step_and_abs_targets():
    step = load("step", standardize=False)
    np.testing.assert_array_equal(step.y_train, (step.X_train > 0).astype(float))
    ab = load("abs", standardize=False)
    np.testing.assert_array_equal(ab.y_train, np.abs(ab.X_train))


def test_unknown_name_lists_valid_names():
    with pytest.raises(ValueError, match="valid names: .*moons.*fashion-mnist"):
        load("nope")


def test_mnist_needs_a_directory():
    with pytest.raises(DataError, match="no default location.*data_dir"):
        load("mnist")


def test_missing_directory_says_how_to_get_files(tmp_path):
    missing = tmp_path / "absent"
    with pytest.raises(DataError, match="does not exist.*apt-get install dataset-fashion-mnist"):
        load("fashion-mnist", data_dir=missing)


@pytest.mark.skipif(
    not FASHION_DIR.is_dir(), reason=f"{FASHION_DIR} absent (apt-get install dataset-fashion-mnist)"
)
def test_real_fashion_mnist_files():
    ds = load("fashion-mnist", n_samples=2000, seed=0, standardize=False)
    assert ds.image_shape == (28, 28) and ds.n_classes == 10 and ds.n_features == 784
    assert (len(ds.X_train), len(ds.X_val), len(ds.X_test)) == (1360, 240, 400)
    assert ds.X_train.min() >= 0.0 and ds.X_train.max() <= 1.0
    assert ds.class_names[0] == "T-shirt/top"
    assert set(np.unique(ds.y_train)) == set(range(10))


def test_table_reads_train_and_test_csv_from_data_dir(tmp_path):
    rows = "".join(f"{i},{-i},{i % 2}\n" for i in range(20))
    (tmp_path / "train.csv").write_text("a,b,class\n" + rows)
    (tmp_path / "test.csv").write_text("a,b,class\n1,2,1\n3,4,0\n")
    ds = load("table", data_dir=tmp_path, standardize=False)
    assert ds.task == "classification" and ds.feature_names == ("a", "b") and ds.n_classes == 2
    assert ds.X_test.tolist() == [[1.0, 2.0], [3.0, 4.0]] and ds.y_test.tolist() == [1, 0]
    assert len(ds.X_train) + len(ds.X_val) == 20
    (tmp_path / "train.csv").write_text("a,target\n0.5,0.25\n1,0.5\n2,1\n")
    (tmp_path / "test.csv").write_text("a,target\n3,1.5\n")
    reg = load("table", data_dir=tmp_path)
    assert reg.task == "regression" and reg.y_test.shape == (1, 1)
    with pytest.raises(ValueError, match="data_dir"):
        load("table")
