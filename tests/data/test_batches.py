import numpy as np
import pytest

from chainrule.data import MiniBatches, iterate_minibatches


@pytest.mark.parametrize("shuffle", [True, False])
@pytest.mark.parametrize("batch_size", [1, 3, 7, 10, 25])
def test_every_sample_exactly_once_per_epoch(shuffle, batch_size):
    X = np.arange(20.0)[:, None] * np.ones((1, 3))
    y = np.arange(20)
    seen = []
    for Xb, yb in iterate_minibatches(X, y, batch_size, rng=0, shuffle=shuffle):
        assert len(Xb) == len(yb) <= batch_size
        np.testing.assert_array_equal(Xb[:, 0], yb)
        seen.extend(yb.tolist())
    assert sorted(seen) == list(range(20))
    if not shuffle:
        assert seen == list(range(20))


def test_drop_last():
    sizes = [
        len(yb)
        for _, yb in iterate_minibatches(np.zeros((10, 1)), np.arange(10), 4, drop_last=True)
    ]
    assert sizes == [4, 4]


def test_shuffle_reproducible_and_generator_advances():
    X, y = np.zeros((50, 1)), np.arange(50)
    order = lambda rng: np.concatenate([yb for _, yb in iterate_minibatches(X, y, 8, rng=rng)])  # noqa: E731
    np.testing.assert_array_equal(order(5), order(5))
    gen = np.random.default_rng(5)
    first, second = order(gen), order(gen)
    np.testing.assert_array_equal(first, order(5))
    assert not np.array_equal(first, second)
    assert not np.array_equal(first, np.arange(50))


def test_minibatches_class():
    mb = MiniBatches(np.zeros((10, 2)), np.arange(10), batch_size=3, rng=1)
    assert len(mb) == 4
    e1 = np.concatenate([yb for _, yb in mb])
    e2 = np.concatenate([yb for _, yb in mb])
    assert sorted(e1) == sorted(e2) == list(range(10))
    assert not np.array_equal(e1, e2)
    assert len(MiniBatches(np.zeros((10, 2)), None, 3, drop_last=True)) == 3


def test_y_none_and_validation():
    batches = list(iterate_minibatches(np.zeros((5, 2)), None, 2, shuffle=False))
    assert [yb for _, yb in batches] == [None, None, None]
    with pytest.raises(ValueError, match="5 rows but y has 4"):
        next(iterate_minibatches(np.zeros((5, 2)), np.zeros(4), 2))
    with pytest.raises(ValueError, match="positive"):
        next(iterate_minibatches(np.zeros((5, 2)), None, 0))
