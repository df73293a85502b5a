"""The instruments of the cost experiment: sweep and work counts, CPU timing, fits, ticks."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr
from chainrule import numeric
from chainrule.experiments.differentiation_cost import (
    GRADIENTS,
    crossover,
    gradient_work_checks,
    mlp_loss,
    slope,
)
from chainrule.experiments.measurement import SweepCounter, WorkCounter, best_cpu_time


def _f(x):
    return cr.tanh(x) * x


def test_sweep_counter_counts_what_each_transform_does() -> None:
    x = np.array([0.3, -0.2, 0.5, 1.0])
    f = SweepCounter(_f)
    cr.jacfwd(f)(x)
    assert f.counts() == {"evaluations": 4, "jvp_sweeps": 4, "vjp_sweeps": 0}
    f.reset()
    cr.jacrev(f)(x)
    assert f.counts() == {"evaluations": 1, "jvp_sweeps": 0, "vjp_sweeps": 4}
    f.reset()
    out, pull = cr.vjp(f, x)
    for _ in range(3):
        pull(np.ones(4))
    assert f.counts() == {"evaluations": 1, "jvp_sweeps": 0, "vjp_sweeps": 3}
    f.reset()
    numeric.gradient(lambda v: f(v).sum(), x)
    assert f.counts() == {"evaluations": 8, "jvp_sweeps": 0, "vjp_sweeps": 0}


def test_sweep_counter_changes_no_value_and_no_derivative() -> None:
    x = np.array([0.3, -0.2, 0.5])
    f = SweepCounter(_f)
    np.testing.assert_array_equal(f(cr.tensor(x)).numpy(), _f(cr.tensor(x)).numpy())
    np.testing.assert_array_equal(cr.jacrev(f)(x).numpy(), cr.jacrev(_f)(x).numpy())
    np.testing.assert_array_equal(cr.jacfwd(f)(x).numpy(), cr.jacfwd(_f)(x).numpy())
    assert "sweep_probe" not in cr.REGISTRY  # the probe stays out of the registry tests


@pytest.mark.parametrize(
    ("a", "b", "madds"),
    [((5, 3), (3, 2), 5 * 2 * 3), ((4, 3), (3,), 4 * 3), ((3,), (3, 6), 6 * 3), ((7,), (7,), 7),
     ((2, 5, 3), (3, 4), 2 * 5 * 4 * 3), ((2, 1, 5, 3), (6, 3, 4), 2 * 6 * 5 * 4 * 3)],
)  # fmt: skip
def test_work_counter_counts_the_multiply_adds_of_a_product(a, b, madds) -> None:
    rng = np.random.default_rng(0)
    x, y = cr.tensor(rng.standard_normal(a)), cr.tensor(rng.standard_normal(b))
    with WorkCounter() as w:
        out = x @ y
    assert w.matmul_madds == madds and w.calls == {"matmul": 1}
    assert w.elementwise_ops == 0
    np.testing.assert_array_equal(out.numpy(), np.matmul(x.numpy(), y.numpy()))


def test_work_counter_counts_elementwise_work_and_not_data_movement() -> None:
    x = cr.tensor(np.arange(6.0).reshape(2, 3))
    with WorkCounter() as w:
        y = cr.tanh(x.T.reshape(6)[1:4])  # only tanh is arithmetic: 3 elements
        z = (x + cr.tensor(np.ones(3))).sum()  # add: 6 elements (broadcast), sum: 6 inputs
    assert w.counts() == {"matmul_madds": 0, "elementwise_ops": 3 + 6 + 6}
    assert w.calls == {"tanh": 1, "add": 1, "sum": 1}
    assert y.shape == (3,) and z.item() == 21.0


def test_work_counter_counts_backward_and_forward_sweeps() -> None:
    A = cr.tensor(np.ones((4, 3)))
    x = np.ones(3)
    with WorkCounter() as w:
        cr.grad(lambda v: (A @ v).sum())(x)
    assert w.matmul_madds == 2 * 12  # the product forward, A^T g backward; A needs no grad
    with WorkCounter() as w:
        cr.jacfwd(lambda v: A @ v)(x)
    assert w.matmul_madds == 3 * 2 * 12  # per input: the primal and the tangent product


def test_work_counter_restores_the_primitives_also_after_an_error() -> None:
    before = {name: prim.impl for name, prim in cr.REGISTRY.items()}
    with pytest.raises(ZeroDivisionError):
        with WorkCounter() as w:
            assert cr.REGISTRY["matmul"].impl is not before["matmul"]  # instrumented
            cr.tensor(np.ones((2, 2))) @ cr.tensor(np.ones((2, 2)))
            raise ZeroDivisionError
    assert {name: prim.impl for name, prim in cr.REGISTRY.items()} == before
    assert w.matmul_madds == 8
    with WorkCounter() as outer:  # nested counters both count; leaving restores in order
        with pytest.raises(RuntimeError, match="already active"):
            with outer:
                pass
        with WorkCounter() as inner:
            cr.tensor(np.ones(3)) @ cr.tensor(np.ones(3))
        cr.tensor(np.ones(3)) @ cr.tensor(np.ones(3))
    assert (inner.matmul_madds, outer.matmul_madds) == (3, 6)
    assert {name: prim.impl for name, prim in cr.REGISTRY.items()} == before


def _work_slope(gradient, hiddens=(1, 5, 25)) -> float:
    N, madds = [], []
    for h in hiddens:
        loss, theta = mlp_loss(h, batch=4, rng=np.random.default_rng(h))
        with WorkCounter() as w:
            g = gradient(loss, theta)
        np.testing.assert_allclose(np.asarray(g), cr.grad(loss)(theta).numpy(), atol=1e-6)
        N.append(theta.size)
        madds.append(w.matmul_madds)
    return slope(N, madds)


def _reverse_with_n_sweeps(loss, theta):
    # a deliberately broken reverse mode: one backward sweep per parameter
    _, pull = cr.vjp(loss, theta)
    return np.array([pull(cr.tensor(1.0))[0].numpy()[i] for i in range(theta.size)])


def test_counted_work_catches_a_reverse_mode_that_sweeps_once_per_parameter() -> None:
    slopes = {m: _work_slope(GRADIENTS[m]) for m in ("numerical", "forward", "reverse")}
    assert all(gradient_work_checks(slopes).values()), slopes
    assert slopes["reverse"] == pytest.approx(1.0, abs=0.1)
    broken = _work_slope(_reverse_with_n_sweeps)
    assert broken == pytest.approx(2.0, abs=0.1)  # N sweeps of O(N) work
    checks = gradient_work_checks({**slopes, "reverse": broken})
    assert not checks["numerical_minus_reverse_above_0.8"] and not checks["reverse_about_1"]


def test_best_cpu_time_runs_at_least_repeats_and_more_when_cheap() -> None:
    calls = []
    best, runs = best_cpu_time(lambda: calls.append(1), repeats=3, min_total_s=0.0)
    assert runs == len(calls) == 3 and best >= 0
    calls.clear()
    best, runs = best_cpu_time(lambda: calls.append(1), repeats=2, min_total_s=1.0, max_repeats=7)
    assert runs == len(calls) == 7  # a cheap call is repeated up to max_repeats
    with pytest.raises(ValueError, match="repeats must be at least 1"):
        best_cpu_time(lambda: None, repeats=0)


def test_slope_and_crossover_on_known_data() -> None:
    N = np.array([10.0, 100.0, 1000.0])
    assert slope(N, 3 * N**2) == pytest.approx(2.0)
    ratio = np.array([1 / 16, 1 / 4, 1, 4, 16])
    n = np.sqrt(64 * ratio)  # n m = 64
    m = 64 / n
    # jacfwd costs n sweeps, jacrev 4 m: equal where n / m = 4
    assert crossover(ratio, n, 4 * m) == pytest.approx(4.0)
    assert np.isnan(crossover(ratio, 4 * m, n))  # jacfwd never gets dearer: no crossover


def _overlaps(labels) -> bool:
    boxes = sorted((b.x0, b.x1) for b in (t.get_window_extent() for t in labels))
    return any(b0 < a1 for (_, a1), (b0, _) in zip(boxes, boxes[1:]))


@pytest.mark.parametrize("xs", [[21, 81, 321], [11, 51, 251, 1251], [1 / 64, 1, 64], [3, 7]])
def test_log_tick_labels_do_not_overlap(xs: list[float]) -> None:
    pytest.importorskip("matplotlib")
    from chainrule.experiments import plotting

    fig, axes = plotting.subplots(1, 1, width=4.6, height=3.8)
    ax = axes[0, 0]
    ax.loglog(xs, np.arange(1, len(xs) + 1))
    plotting.tidy_log_ticks(ax)
    fig.canvas.draw()
    lo, hi = ax.get_xlim()
    axis = ax.xaxis
    pairs = [*zip(axis.get_majorticklocs(), axis.get_majorticklabels())]
    pairs += [*zip(axis.get_minorticklocs(), axis.get_minorticklabels())]
    shown = [t for v, t in pairs if t.get_visible() and t.get_text() and lo <= v <= hi]
    plotting.pyplot().close(fig)
    assert len(shown) >= 2  # still readable
    assert not _overlaps(shown)
