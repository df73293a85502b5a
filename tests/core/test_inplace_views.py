"""Writes through a view of saved memory: backward refuses them, as PyTorch's shared
version counter does; writes into other memory are fine."""

from __future__ import annotations

import gc

import numpy as np
import pytest

import chainrule as cr
from chainrule import optim
from chainrule.core import inplace
from chainrule.core.inplace import mark_modified

VIEWS = {
    "row": lambda x: x[0],
    "reshape": lambda x: x.reshape(6),
    "transpose": lambda x: x.T,
    "column slice": lambda x: x[:, 1:],
    "view of a view": lambda x: x.reshape(6)[2:].reshape(2, 2).T,
}

WRITES = {
    "+=": lambda v: v.__iadd__(1.0),
    "copy_": lambda v: v.copy_(np.full(v.shape, 5.0)),
    "setitem": lambda v: v.__setitem__(..., 7.0),
    "data + mark_modified": lambda v: (np.add(v.data, 1.0, out=v.data), mark_modified(v)),
}


def _saved_square():
    x = cr.tensor(np.ones((2, 3)), requires_grad=True)
    return x, (x * x).sum()


@pytest.mark.parametrize("view", VIEWS)
@pytest.mark.parametrize("write", WRITES)
def test_a_write_through_a_view_of_saved_memory_raises(view, write):
    x, y = _saved_square()
    with cr.no_grad():
        v = VIEWS[view](x)
        assert np.shares_memory(v.data, x.data)
        WRITES[write](v)
    with pytest.raises(cr.InplaceModificationError, match="saved for the backward of 'mul'"):
        y.backward()


def test_a_write_into_the_base_of_a_saved_view_raises():
    x = cr.tensor(np.ones((2, 3)), requires_grad=True)
    r = x[0]  # recorded getitem: its output is a view of x's memory
    y = (r * r).sum()  # saves r
    with cr.no_grad():
        x += 1.0
    with pytest.raises(cr.InplaceModificationError):
        y.backward()


def test_a_saved_output_written_through_a_view_raises():
    x = cr.tensor(np.array([0.5, 1.0, 2.0]), requires_grad=True)
    e = x.exp()  # exp's backward reads its output
    with cr.no_grad():
        v = e[1:]
        v *= 2.0
    with pytest.raises(cr.InplaceModificationError, match="output of 'exp'"):
        e.backward(np.ones(3))


def test_writes_into_other_memory_do_not_raise():
    x, y = _saved_square()
    w = cr.tensor(np.ones((2, 3)), requires_grad=True)  # not saved by anything
    other = cr.tensor(x.data.copy())  # equal values, its own memory
    with cr.no_grad():
        w[0] += 1.0
        w.T.copy_(np.zeros((3, 2)))
        other.reshape(6)[0] = 9.0
        other += 1.0
    y.backward()
    np.testing.assert_array_equal(x.grad.data, 2 * np.ones((2, 3)))


def test_a_fresh_array_reusing_a_freed_arrays_id_is_not_stale():
    for _ in range(200):  # ids of freed arrays are reused at once by CPython
        t = cr.tensor(np.ones((2, 3)))
        with cr.no_grad():
            t[0] += 1.0
        del t
        x, y = _saved_square()
        y.backward()  # a stale stamp of a freed buffer would raise here
        np.testing.assert_array_equal(x.grad.data, 2 * np.ones((2, 3)))


def test_the_table_holds_only_live_written_buffers():
    gc.collect()
    before = len(inplace.BUFFER_STAMPS)
    for _ in range(100):
        t = cr.tensor(np.ones(4))
        with cr.no_grad():
            t += 1.0
            t[1:] += 1.0
    del t
    gc.collect()
    assert len(inplace.BUFFER_STAMPS) == before


def test_the_root_walk_is_what_finds_the_write():
    # a view of a view: its .base is the owning array, whose stamp backward reads
    x, y = _saved_square()
    v = x.data.reshape(6)[1:]
    assert inplace.buffer_root(v) is x.data
    t = cr.tensor(v)
    assert t.data is v or np.shares_memory(t.data, x.data)
    with cr.no_grad():
        t += 1.0
    assert inplace.written_since(x.data, 0)
    with pytest.raises(cr.InplaceModificationError):
        y.backward()


def test_an_optimiser_step_after_backward_is_fine_and_before_it_raises():
    w = cr.tensor(np.array([[1.0, 2.0], [3.0, 4.0]]), requires_grad=True)
    opt = optim.SGD([w], lr=0.1)
    for _ in range(3):  # documented order: zero_grad, forward, backward, step
        opt.zero_grad()
        y = (w.T.exp()).sum()  # saves a view of w's memory (the transpose's output)
        y.backward()
        opt.step()
    y = (w.T.exp()).sum()
    opt.step()  # writes w.data in place before the backward that needs exp(w.T)
    with pytest.raises(cr.InplaceModificationError):
        y.backward()
