import numpy as np
import pytest

from chainrule.data import (
    Batch,
    BatchDraws,
    MiniBatches,
    augment_images,
    batch_indices,
    iterate_minibatches,
)


@pytest.mark.parametrize("shuffle", [True, False])
@pytest.mark.parametrize("batch_size", [1, 3, 7, 10, 25])
def test_every_sample_exactly_once_per_epoch(shuffle, batch_size):
    X = np.arange(20.0)[:, None] * np.ones((1, 3))
    y = np.arange(20)
    seen = []
    for Xb, yb in iterate_minibatches(X, y, batch_size, seed=0, shuffle=shuffle):
        assert len(Xb) == len(yb) <= batch_size
        np.testing.assert_array_equal(Xb[:, 0], yb)
        seen.extend(yb.tolist())
    assert sorted(seen) == list(range(20))
    if not shuffle:
        assert seen == list(range(20))


def test_unshuffled_batches_are_views():
    X = np.arange(10.0).reshape(5, 2)
    first = next(iterate_minibatches(X, None, 2, shuffle=False))[0]
    assert np.shares_memory(first, X)


def test_drop_last():
    sizes = [
        len(yb)
        for _, yb in iterate_minibatches(np.zeros((10, 1)), np.arange(10), 4, drop_last=True)
    ]
    assert sizes == [4, 4]


def test_order_depends_on_seed_and_epoch_only():
    X, y = np.zeros((50, 1)), np.arange(50)

    def order(seed, epoch):
        batches = iterate_minibatches(X, y, 8, seed=seed, epoch=epoch)
        return np.concatenate([yb for _, yb in batches])

    np.testing.assert_array_equal(order(5, 0), order(5, 0))
    assert not np.array_equal(order(5, 0), order(5, 1))
    assert not np.array_equal(order(5, 0), order(6, 0))
    assert not np.array_equal(order(5, 0), np.arange(50))
    expected = np.concatenate(batch_indices(50, 8, seed=5, epoch=3))
    np.testing.assert_array_equal(order(5, 3), expected)


def test_minibatches_class_iterates_successive_epochs():
    mb = MiniBatches(np.zeros((10, 2)), np.arange(10), batch_size=3, seed=1)
    assert len(mb) == 4
    e0 = np.concatenate([yb for _, yb in mb])
    e1 = np.concatenate([yb for _, yb in mb])
    assert sorted(e0) == sorted(e1) == list(range(10))
    assert not np.array_equal(e0, e1)
    np.testing.assert_array_equal(e1, np.concatenate([yb for _, yb in mb.arrays(1)]))
    assert len(MiniBatches(np.zeros((10, 2)), None, 3, drop_last=True)) == 3


@pytest.mark.parametrize("size", [2, 3, 4])
def test_ranks_split_each_global_batch_of_the_serial_run(size):
    X, y = np.arange(23.0)[:, None], np.arange(23)
    serial = list(MiniBatches(X, y, 10, seed=2).epoch(1))
    ranks = [list(MiniBatches(X, y, 10, seed=2, rank=r, size=size).epoch(1)) for r in range(size)]
    for step, whole in enumerate(serial):
        assert whole.weight == 1.0 and whole.global_size == len(whole.indices)
        parts = [r[step] for r in ranks]
        np.testing.assert_array_equal(np.concatenate([p.indices for p in parts]), whole.indices)
        starts = np.cumsum([0] + [len(p.indices) for p in parts])[:-1]
        assert [p.offset for p in parts] == starts.tolist()
        assert sum(p.weight for p in parts) == pytest.approx(1.0)


def test_batch_draws_give_each_part_the_serial_draws():
    # augmentation of a part of a batch must warp its rows as one process would
    images = np.random.default_rng(0).uniform(size=(7, 64))
    whole = augment_images(images, (8, 8), np.random.default_rng([3, 1, 1]), max_shift=1)
    pieces = []
    for start, stop in ((0, 3), (3, 5), (5, 7)):
        part = Batch(np.arange(start, stop), (stop - start) / 7, 7, start)
        rng = part.draws(np.random.default_rng([3, 1, 1]))
        assert isinstance(rng, BatchDraws)
        pieces.append(augment_images(images[start:stop], (8, 8), rng, max_shift=1))
    np.testing.assert_array_equal(np.concatenate(pieces), whole)
    full = Batch(np.arange(7), 1.0, 7)
    gen = np.random.default_rng(0)
    assert full.draws(gen) is gen


def test_y_none_and_validation():
    batches = list(iterate_minibatches(np.zeros((5, 2)), None, 2, shuffle=False))
    assert [yb for _, yb in batches] == [None, None, None]
    with pytest.raises(ValueError, match="5 rows but y has 4"):
        next(iterate_minibatches(np.zeros((5, 2)), np.zeros(4), 2))
    with pytest.raises(ValueError, match="positive"):
        next(iterate_minibatches(np.zeros((5, 2)), None, 0))
    with pytest.raises(TypeError, match="batch_size must be an int"):
        MiniBatches(np.zeros(4), None, 2.0)
    with pytest.raises(ValueError, match="rank=2, size=2"):
        MiniBatches(np.zeros(4), None, 2, rank=2, size=2)
    with pytest.raises(ValueError, match="start=3, stop=2"):
        BatchDraws(np.random.default_rng(0), 5, 3, 2)
