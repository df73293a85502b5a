"""Every experiment runs in quick mode; its numbers point the way the chapter says.

Each experiment runs once per module (``--quick --seed 0``); the tests read
``results.json`` and check the direction of each claim, and that the report
and figures were written.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from chainrule.experiments import names, run_experiment
from chainrule.experiments.report import fmt

pytest.importorskip("matplotlib")


class _Runs:
    def __init__(self, base: Path) -> None:
        self.base, self.cache = base, {}

    def __call__(self, name: str) -> dict:
        if name not in self.cache:
            run_experiment(name, self.base / name, quick=True, seed=0, verbose=False)
            self.cache[name] = json.loads((self.base / name / "results.json").read_text())
        return self.cache[name]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> _Runs:
    return _Runs(tmp_path_factory.mktemp("experiments"))


@pytest.mark.parametrize("name", names())
def test_report_and_figures_written(runs: _Runs, name: str) -> None:
    res = runs(name)
    out = runs.base / name
    report = (out / "report.md").read_text()
    assert res["experiment"] == name and res["quick"] is True
    assert res["figures"], "every experiment draws at least one figure"
    for fig in res["figures"]:
        data = (out / fig).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
        assert f"]({fig})" in report
    assert ("Claim HELD" in report) == (res["claim_held"] is True)


def test_finite_differences(runs: _Runs) -> None:
    r = runs("finite-differences")["results"]
    cases = r["cases"]
    for c in cases:
        if c["method"] == "central":
            fwd = next(
                x
                for x in cases
                if x["method"] == "forward"
                and x["function"] == c["function"]
                and x["dtype"] == c["dtype"]
            )
            assert c["best_error"] < fwd["best_error"], c["function"]
    # measured optimal steps near eps^(1/2) and eps^(1/3): within 1.5 decades (median)
    assert r["median_abs_log10_step_ratio"]["forward"] < 1.5
    assert r["median_abs_log10_step_ratio"]["central"] < 1.5
    # float32's best errors are far worse than float64's
    f64 = [c["best_error"] for c in cases if c["dtype"] == "float64" and c["method"] == "central"]
    f32 = [c["best_error"] for c in cases if c["dtype"] == "float32" and c["method"] == "central"]
    assert np.median(f32) > 100 * np.median(f64)


def test_differentiation_cost(runs: _Runs) -> None:
    res = runs("differentiation-cost")
    r = res["results"]
    rows = r["gradient"]
    for row in rows:
        n = row["n_params"]
        assert row["numerical_sweeps"] == 2 * n  # central differences: two per parameter
        assert row["forward_sweeps"] == n  # one JVP per parameter
        assert row["reverse_sweeps"] == 2  # one forward, one backward
        assert row["max_diff_forward_vs_reverse"] < 1e-10
        assert row["max_diff_numerical_vs_reverse"] < 1e-6
    s = r["slopes"]
    assert s["work"]["numerical"] - s["work"]["reverse"] > 0.8
    assert s["sweeps"]["numerical"] - s["sweeps"]["reverse"] > 0.8
    assert r["decades"] > 1.0
    for j in r["jacobian"]:
        assert j["max_diff"] < 1e-10
        assert j["jacfwd_sweeps"] == j["n"] and j["jacrev_sweeps"] == j["m"]
    assert 0.25 <= r["jacobian_crossover_n_over_m"] <= 4
    assert "time_slopes_all" in res["timings"]  # wall times are reported, not asserted on


def test_vanishing_gradients(runs: _Runs) -> None:
    r = runs("vanishing-gradients")["results"]
    assert r["relu_over_logistic_first_layer_depth20"] > 100  # orders of magnitude
    assert r["logistic_max_derivative"] <= 0.25
    assert r["logistic_decay_depth20"] < 0.5 < r["relu_decay_depth20"]
    by = {(x["activation"], x["depth"]): x for x in r["rows"]}
    # the logistic's first-layer gradient shrinks with depth
    assert by[("logistic", 20)]["first_layer_init"] < 1e-3 * by[("logistic", 5)]["first_layer_init"]


def test_nonconvex(runs: _Runs) -> None:
    r = runs("nonconvex")["results"]
    assert r["n_distinct_local_minima"] >= 2
    mid = r["midpoint_test"]
    assert abs(mid["loss_a"] - mid["loss_b"]) > 1e-3  # different minima, not a symmetric copy
    assert mid["loss_midpoint"] > mid["chord_midpoint"]  # convexity fails on the segment
    assert r["hessian_scan"]["most_negative_eigenvalue"] < -1e-3


def test_universal_approximation(runs: _Runs) -> None:
    r = runs("universal-approximation")["results"]
    for act, per_f in r["test_rmse"].items():
        for fname in r["continuous_functions"]:
            err = per_f[fname]
            assert err[-1] < err[0] / 3, (act, fname)
            # falls with width: the wider half beats the narrower half on average
            half = len(err) // 2
            assert np.mean(np.log(err[half:])) < np.mean(np.log(err[:half])), (act, fname)


def test_initialisation(runs: _Runs) -> None:
    r = runs("initialisation")["results"]
    assert r["zero_init_unit_spread"] == 0.0  # symmetry is never broken
    assert r["zero_init_test_accuracy"] < r["random_init_test_accuracy"] - 0.2
    rows = {x["case"]: x for x in r["rows"]}
    dead = rows["relu, random (He), bias -8"]
    healthy = rows["relu, random (He), bias 0"]
    # almost no gradient reaches the first layer: every unit (nearly) never fires
    assert dead["first_layer_grad_init"] < 0.05 * healthy["first_layer_grad_init"]
    assert dead["active_rate_init"] < 0.01 < healthy["active_rate_init"]
    assert dead["test_accuracy"] < r["chance_accuracy"] + 0.1
    assert r["leaky_test_accuracy"] > dead["test_accuracy"] + 0.3


def test_regularisation(runs: _Runs) -> None:
    r = runs("regularisation")["results"]
    norms = [x["weight_norm"] for x in r["rows"]]
    lams = [x["lambda"] for x in r["rows"]]
    assert lams == sorted(lams)
    assert all(b <= 1.02 * a for a, b in zip(norms, norms[1:]))  # monotone up to 2%
    assert norms[-1] < 0.5 * norms[0]
    assert r["rows"][-1]["train_accuracy"] < r["rows"][0]["train_accuracy"]


def test_fnn_limits(runs: _Runs) -> None:
    r = runs("fnn-limits")["results"]
    counts = {p["images"]: p for p in r["parameter_counts"]}
    assert counts["the chapter's 100 x 100 x 3"]["weights_per_neuron"] == 30000
    plain, aug = r["plain"], r["augmented"]
    assert plain["shift1_accuracy"] < plain["test_accuracy"] - 0.1  # the drop
    assert plain["shift2_accuracy"] < plain["shift1_accuracy"]
    assert aug["shift1_accuracy"] > plain["shift1_accuracy"] + 0.05  # the recovery
    assert aug["shift2_accuracy"] > plain["shift2_accuracy"] + 0.05


def test_report_quotes_its_numbers(runs: _Runs) -> None:
    res = runs("vanishing-gradients")
    report = (runs.base / "vanishing-gradients" / "report.md").read_text()
    row = res["results"]["rows"][0]
    assert fmt(row["first_layer_init"]) in report
    assert f"{res['results']['relu_over_logistic_first_layer_depth20']:.3g}" in report


def test_expression_swell(runs: _Runs) -> None:
    r = runs("expression-swell")["results"]
    assert r["symbolic_available"] is True
    lm = r["logistic_map"]
    last = lm[-1]
    assert last["derivative_tree"] > 1000 * last["derivative_graph_cse"]
    for row in lm:
        assert row["derivative_graph_cse"] <= row["derivative_graph_no_cse"]
        assert row["derivative_graph_no_cse"] <= 20 * row["n"] + 20  # linear in n
    trees = [row["derivative_tree"] for row in lm]
    assert all(b > 2 * a for a, b in zip(trees, trees[1:]))  # exponential swell
    sympy_sizes = [row["sympy_derivative_tree"] for row in lm if row.get("sympy_derivative_tree")]
    if sympy_sizes:
        assert sympy_sizes == sorted(sympy_sizes) and sympy_sizes[-1] > 100 * sympy_sizes[0]
    mlp = r["mlp"]
    assert mlp[-1]["derivative_tree"] > mlp[-1]["derivative_graph_cse"]


def test_three_ways(runs: _Runs) -> None:
    r = runs("three-ways")["results"]
    assert r["symbolic_available"] is True
    dev = r["max_deviation"]
    for method, d in dev.items():
        assert d < (1e-8 if method.startswith("central") else 1e-12), method
    assert r["numerical_evaluations"] == 6  # central differences: 2 per input, 3 inputs
    s = r["f"]
    assert abs(r["methods"]["reverse mode (cr.grad)"]["df/dw"] - 1.5 * s * (1 - s)) < 1e-12
    if r.get("agrees_with_sympy") is not None:  # None: SymPy not installed
        assert r["agrees_with_sympy"] is True
    assert "sigmoid" in r["formulas"]["w"]
