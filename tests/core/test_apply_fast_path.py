"""``apply``'s fast path (one or two NumPy operands, no forward level or anomaly mode
anywhere) does exactly what its general path does, and the process-wide mode hints
that let it skip the per-thread state are right in every thread.

The general path is forced by opening a forward-mode level that no operand carries:
``forward_apply`` then finds no tangent and the primitive runs as usual.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pytest

import chainrule as cr
from chainrule.core import primitive as primitive_module
from chainrule.core import state
from chainrule.core.primitive import apply


@contextmanager
def general_path() -> Iterator[None]:
    level = state.new_level()
    try:
        yield
    finally:
        state.end_level(level)


def _tensors(args: list[Any]) -> list[Any]:
    # floating arrays become tensors that require grad, others stay constants
    return [
        cr.tensor(a, requires_grad=True) if isinstance(a, np.ndarray) and a.dtype.kind == "f" else a
        for a in args
    ]


def _same(fast: Any, general: Any) -> None:
    assert type(fast) is type(general)
    assert fast.dtype == general.dtype and fast.shape == general.shape
    np.testing.assert_array_equal(fast.numpy(), general.numpy())
    assert fast.requires_grad == general.requires_grad
    assert fast.grad_fn == general.grad_fn
    if fast._parents is None:
        assert general._parents is None
    else:
        assert len(fast._parents) == len(general._parents)
        assert all(p is q for p, q in zip(fast._parents, general._parents))
        assert fast._params == general._params
    assert fast._tangents is None and general._tangents is None


def _paths(prim: Any, args: list[Any], params: dict[str, Any]) -> tuple[Any, Any]:
    fast = apply(prim, *args, **params)
    with general_path():
        general = apply(prim, *args, **params)
    return fast, general


def test_fast_and_general_paths_agree_on_every_primitive(primitive):
    args = _tensors(primitive.args)
    _same(*_paths(primitive.prim, args, primitive.params))
    # the operands as NumPy arrays: nothing requires grad, nothing is recorded
    fast, general = _paths(primitive.prim, list(primitive.args), primitive.params)
    _same(fast, general)
    assert fast._prim is None
    with cr.no_grad():  # grad mode off in this thread: no node either way
        fast, general = _paths(primitive.prim, args, primitive.params)
    _same(fast, general)
    assert not fast.requires_grad


class _Unread:
    """Stands for the per-thread state where the fast path must not read it."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the fast path read the per-thread state ({name})")


def test_fast_path_reads_no_per_thread_state_when_no_thread_is_in_a_mode(monkeypatch):
    assert not state.MODES_ON and not state.GRAD_OFF
    a = cr.tensor(np.arange(4.0), requires_grad=True)
    g = cr.tensor(np.ones(4))
    monkeypatch.setattr(primitive_module, "STATE", _Unread())
    y = 0.5 * g  # nothing requires grad
    z = a * g + a  # recorded
    u = cr.exp(a)
    assert not y.requires_grad and y.grad_fn is None
    assert z.grad_fn == "add" and u.grad_fn == "exp"
    np.testing.assert_array_equal(z.numpy(), np.arange(4.0) * 2)
    monkeypatch.undo()
    z.sum().backward()
    np.testing.assert_array_equal(a.grad.numpy(), np.full(4, 2.0))


@pytest.mark.parametrize(
    "constant",
    [
        2,
        2.0,
        True,
        2j,
        np.float32(2),
        np.float64(2),
        np.int8(2),
        np.array(2.0),
        np.array([2.0, 3.0], np.float32),
        [2.0, 3.0],
        (2.0, 3.0),
    ],
    ids=repr,
)
def test_constants_of_every_kind_compute_as_numpy_does_on_both_paths(constant):
    data = np.array([1.0, -1.5])
    x = cr.tensor(data, requires_grad=True)
    for args, expect in [((x, constant), data * constant), ((constant, x), constant * data)]:
        fast, general = _paths(cr.REGISTRY["mul"], list(args), {})
        _same(fast, general)
        assert fast.dtype == np.asarray(expect).dtype
        np.testing.assert_array_equal(fast.numpy(), expect)
        assert fast.grad_fn == "mul"


@pytest.mark.parametrize(
    "make",
    [
        lambda: cr.tensor(np.ones((2, 3))) + cr.tensor(np.ones(4)),
        lambda: cr.tensor(np.ones((2, 3)), requires_grad=True) @ np.ones((4, 2)),
        lambda: np.ones((2, 3)) - cr.tensor(np.ones(5), requires_grad=True),
        lambda: 2.0 * cr.tensor(np.ones(3)) * cr.tensor(np.ones((2, 2))),
    ],
)
def test_rejected_operands_give_the_same_error_on_both_paths(make):
    with pytest.raises(cr.ShapeError) as fast:
        make()
    with general_path(), pytest.raises(cr.ShapeError) as general:
        make()
    assert str(fast.value) == str(general.value)
    assert "Fix:" in str(fast.value)


def test_a_one_operand_error_names_the_operation_on_the_fast_path():
    with pytest.raises(cr.ShapeError, match=r"^sum: .*operands: float64\[3\]"):
        apply(cr.REGISTRY["sum"], cr.tensor(np.ones(3)), axis=(5,), keepdims=False)


def test_a_symbolic_operand_in_either_place_hands_the_call_to_its_interpreter():
    from chainrule.symbolic import symbols

    x = symbols("x")
    concrete = cr.tensor(np.array(3.0), requires_grad=True)
    for e in [2.0 * x, x * 2.0, concrete * x, x * concrete, np.float64(2) * x, cr.exp(x)]:
        assert e._interp is not None
    assert float((concrete * x + np.array(1.0)).evaluate(x=2.0)) == 7.0


class _Spy:
    """An interpreter that records what it was handed (the contract symbolic tensors use)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int, dict[str, Any]]] = []

    def apply(self, prim: Any, args: Any, params: dict[str, Any]) -> str:
        self.calls.append((prim.name, len(args), dict(params)))
        return "interpreted"


def test_a_tensor_with_an_interpreter_hands_over_the_call_even_holding_numpy_data():
    spy = _Spy()

    class Spied(cr.Tensor):
        __slots__ = ()
        _interp = spy

    s = Spied(np.ones(2))
    t = cr.tensor(np.ones(2), requires_grad=True)
    assert s * 2.0 == "interpreted" and 2.0 * s == "interpreted"
    assert t + s == "interpreted" and s + t == "interpreted"
    assert cr.exp(s) == "interpreted" and s.sum(axis=0) == "interpreted"
    assert spy.calls == [
        ("mul", 2, {}),
        ("mul", 2, {}),
        ("add", 2, {}),
        ("add", 2, {}),
        ("exp", 1, {}),
        ("sum", 1, {"axis": (0,), "keepdims": False}),
    ]


def test_mode_hints_are_empty_again_after_every_block():
    x = cr.tensor(np.array([0.5, 1.5]), requires_grad=True)
    with cr.no_grad():
        assert state.GRAD_OFF == [None]
        with cr.no_grad():
            assert state.GRAD_OFF == [None]  # one entry per thread, not per block
            with cr.enable_grad():
                assert state.GRAD_OFF == []
                assert (x * 2).requires_grad
            assert state.GRAD_OFF == [None]
        assert not (x * 2).requires_grad
    assert state.GRAD_OFF == []
    with pytest.raises(RuntimeError, match="boom"), cr.no_grad():
        raise RuntimeError("boom")
    assert state.GRAD_OFF == []
    with cr.detect_anomaly():
        with cr.detect_anomaly():
            assert state.MODES_ON == [0]
        assert state.MODES_ON == [0]
        with pytest.raises(FloatingPointError, match="'log'"), np.errstate(invalid="ignore"):
            cr.log(cr.tensor(-1.0))
    assert state.MODES_ON == []
    # forward over reverse and reverse over forward open levels and grad-mode blocks
    h = cr.hessian(lambda v: (v**3).sum())(x)
    np.testing.assert_allclose(h.numpy(), np.diag(6 * x.numpy()))
    with pytest.raises(ValueError, match="inside"):
        cr.jvp(lambda v: (_ for _ in ()).throw(ValueError("inside")), (x,), (x,))
    assert state.MODES_ON == [] and state.GRAD_OFF == []
    (x * x).sum().backward()  # backward switches grad mode off and on again
    assert state.GRAD_OFF == []
    # the fast path is back: a recorded op reads nothing per thread
    assert (x * 3).grad_fn == "mul"


def _in_thread(body: Any, until: threading.Event) -> threading.Thread:
    t = threading.Thread(target=body)
    t.start()
    assert until.wait(30)
    return t


def test_a_forward_level_in_another_thread_leaves_this_threads_ops_alone():
    inside, done = threading.Event(), threading.Event()
    seen: dict[str, Any] = {}

    def other() -> None:
        def f(v: Any) -> Any:
            inside.set()
            assert done.wait(30)
            return v * v

        seen["jvp"] = cr.jvp(f, (cr.tensor(3.0),), (cr.tensor(1.0),))

    t = _in_thread(other, inside)
    try:
        assert state.MODES_ON  # the other thread's level: this thread takes the general path
        x = cr.tensor(np.array([1.0, 2.0]), requires_grad=True)
        y = x * x
        assert y._tangents is None and y.grad_fn == "mul"
        y.sum().backward()
        np.testing.assert_array_equal(x.grad.numpy(), [2.0, 4.0])
        out, tan = cr.jvp(lambda v: v * v, (cr.tensor(2.0),), (cr.tensor(1.0),))
        assert float(out) == 4.0 and float(tan) == 4.0
    finally:
        done.set()
        t.join(30)
    out, tan = seen["jvp"]
    assert float(out) == 9.0 and float(tan) == 6.0
    assert state.MODES_ON == []


def test_anomaly_mode_in_another_thread_checks_only_that_thread():
    inside, done = threading.Event(), threading.Event()
    seen: dict[str, Any] = {}

    def other() -> None:
        with cr.detect_anomaly():
            inside.set()
            assert done.wait(30)
            try:
                with np.errstate(invalid="ignore"):
                    cr.log(cr.tensor(-1.0))
            except FloatingPointError as e:
                seen["error"] = str(e)

    t = _in_thread(other, inside)
    try:
        with np.errstate(invalid="ignore"):
            assert np.isnan(cr.log(cr.tensor(-1.0)).item())  # this thread: no anomaly mode
    finally:
        done.set()
        t.join(30)
    assert "anomaly in forward of 'log'" in seen["error"]
    assert state.MODES_ON == []


def test_no_grad_in_another_thread_keeps_recording_and_checks_in_this_one():
    inside, done = threading.Event(), threading.Event()
    seen: dict[str, Any] = {}

    def other() -> None:
        with cr.no_grad():
            inside.set()
            assert done.wait(30)
            seen["records"] = (cr.tensor(1.0, requires_grad=True) * 2).requires_grad

    t = _in_thread(other, inside)
    try:
        assert state.GRAD_OFF == [None]
        x = cr.tensor(np.array([1.0, 2.0]), requires_grad=True)
        y = x * 2
        assert y.grad_fn == "mul"
        with pytest.raises(cr.InplaceModificationError):
            x += 1  # an in-place write while recording is still refused here
    finally:
        done.set()
        t.join(30)
    assert seen["records"] is False
    assert state.GRAD_OFF == []
