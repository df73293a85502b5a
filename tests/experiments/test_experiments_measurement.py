"""The instruments of the cost experiment: sweep counts, CPU timing, fits, tick labels."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr
from chainrule import numeric
from chainrule.experiments.differentiation_cost import crossover, slope
from chainrule.experiments.measurement import SweepCounter, best_cpu_time


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
