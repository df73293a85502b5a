import numpy as np
import pytest

from chainrule.data import augment_images, shift_images


@pytest.fixture
def images():
    return np.random.default_rng(0).random((5, 8 * 10))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_keeps_shape_and_dtype(images, dtype):
    X = images.astype(dtype)
    out = augment_images(X, (8, 10), np.random.default_rng(1))
    assert out.shape == X.shape and out.dtype == dtype
    assert np.isfinite(out).all()
    assert out.min() >= 0.0 and out.max() <= 1.0 + 1e-6  # convex combinations of pixels


def test_identity_parameters_give_identity(images):
    out = augment_images(images, (8, 10), 0, max_shift=0, max_rotation=0.0, scale_range=(1, 1))
    np.testing.assert_array_equal(out, images)


def test_deterministic_for_a_given_rng(images):
    a = augment_images(images, (8, 10), np.random.default_rng(3))
    b = augment_images(images, (8, 10), np.random.default_rng(3))
    c = augment_images(images, (8, 10), np.random.default_rng(4))
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_rotation_turns_about_the_centre():
    img = np.zeros((1, 7, 7))
    img[0, 2:5, 2:5] = 1.0
    out = augment_images(
        img.reshape(1, -1), (7, 7), 0, max_shift=0, max_rotation=0, scale_range=(1, 1)
    )
    np.testing.assert_array_equal(out.reshape(7, 7), img[0])
    rot = augment_images(
        img.reshape(1, -1), (7, 7), 0, max_shift=0, max_rotation=90, scale_range=(1, 1)
    )
    assert rot.reshape(7, 7)[3, 3] == pytest.approx(1.0)  # the centre pixel stays put
    assert rot.sum() == pytest.approx(9.0, rel=0.35)


def test_tiny_shift_is_nearly_identity():
    X = np.random.default_rng(2).random((3, 36))
    out = augment_images(X, (6, 6), 0, max_shift=1e-12, max_rotation=0, scale_range=(1, 1))
    np.testing.assert_allclose(out, X, atol=1e-9)


def test_scaling_enlarges_about_the_centre():
    img = np.zeros((1, 9, 9))
    img[0, 3:6, 3:6] = 1.0
    out = augment_images(
        img.reshape(1, -1), (9, 9), 0, max_shift=0, max_rotation=0, scale_range=(2, 2)
    )
    out = out.reshape(9, 9)
    assert out[4, 4] == 1.0 and out.sum() > img.sum()
    assert out[0, 0] == 0.0


def test_batch_larger_than_a_chunk_is_consistent():
    X = np.random.default_rng(5).random((1100, 16))
    out = augment_images(X, (4, 4), 7)
    assert out.shape == X.shape
    small = augment_images(X[:3], (4, 4), 7)
    assert small.shape == (3, 16)


def test_shift_images_moves_pixels():
    X = np.arange(1, 13, dtype=float).reshape(1, 12)  # 3 rows x 4 cols
    img = X.reshape(3, 4)
    right = shift_images(X, (3, 4), dx=1, dy=0).reshape(3, 4)
    np.testing.assert_array_equal(right[:, 1:], img[:, :-1])
    np.testing.assert_array_equal(right[:, 0], 0)
    up = shift_images(X, (3, 4), dx=0, dy=-1).reshape(3, 4)
    np.testing.assert_array_equal(up[:-1], img[1:])
    np.testing.assert_array_equal(up[-1], 0)
    diag = shift_images(X, (3, 4), dx=-2, dy=1).reshape(3, 4)
    np.testing.assert_array_equal(diag[1:, :2], img[:-1, 2:])
    assert diag.sum() == img[:-1, 2:].sum()
    np.testing.assert_array_equal(shift_images(X, (3, 4), 0, 0), X)
    np.testing.assert_array_equal(shift_images(X, (3, 4), 4, 0), 0)


def test_shift_images_round_trip_inside_margin():
    img = np.zeros((2, 6, 6))
    img[:, 2:4, 2:4] = 1.0
    X = img.reshape(2, -1)
    back = shift_images(shift_images(X, (6, 6), 2, -1), (6, 6), -2, 1)
    np.testing.assert_array_equal(back, X)


def test_bad_shapes_are_reported():
    with pytest.raises(ValueError, match=r"shape \(N, 64\)"):
        augment_images(np.zeros((2, 63)), (8, 8), 0)
    with pytest.raises(ValueError, match="integers"):
        shift_images(np.zeros((2, 64)), (8, 8), 0.5, 0)
    with pytest.raises(ValueError, match="scale_range"):
        augment_images(np.zeros((2, 64)), (8, 8), 0, scale_range=(1.1, 0.9))


def test_warp_geometry_rotation_and_shift():
    from chainrule.data.augment import _warp_chunk

    img = np.zeros((1, 5, 5))
    img[0, 0, 2] = 1.0  # top middle
    one = np.ones(1)
    rot = _warp_chunk(img, np.array([np.pi / 2]), one, np.zeros(1), np.zeros(1))
    expected = np.zeros((5, 5))
    expected[2, 4] = 1.0  # a quarter turn (x right, y down) takes top middle to right middle
    np.testing.assert_allclose(rot.reshape(5, 5), expected, atol=1e-12)
    X = np.random.default_rng(0).random((1, 25))
    moved = _warp_chunk(X.reshape(1, 5, 5), np.zeros(1), one, np.array([1.0]), np.array([-2.0]))
    np.testing.assert_allclose(moved, shift_images(X, (5, 5), 1, -2), atol=1e-12)
