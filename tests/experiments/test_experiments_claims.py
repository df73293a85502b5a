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

import chainrule as cr
from chainrule import numeric
from chainrule.experiments import names, run_experiment
from chainrule.experiments.fnn_limits import points
from chainrule.experiments.report import fmt

pytest.importorskip("matplotlib")


@pytest.mark.parametrize("name", names())
def test_report_and_figures_written(runs, name: str) -> None:
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


def test_finite_differences(runs) -> None:
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
    # measured optimal steps near eps^(1/2), eps^(1/3), eps^(1/5): within 0.75 decades (median)
    for m in ("forward", "central", "richardson"):
        assert r["median_abs_log10_step_ratio"][m] < 0.75, m
    # the truncation slopes fitted in float64 are the textbook orders 1, 2, 4 (within 0.1)
    for m, p in (("forward", 1), ("central", 2), ("richardson", 4)):
        slopes = r["float64_truncation_slopes"][m]
        assert len(slopes) == 4 and all(abs(v - p) < 0.1 for v in slopes), (m, slopes)
    # float32's best errors are far worse than float64's
    f64 = [c["best_error"] for c in cases if c["dtype"] == "float64" and c["method"] == "central"]
    f32 = [c["best_error"] for c in cases if c["dtype"] == "float32" and c["method"] == "central"]
    assert np.median(f32) > 100 * np.median(f64)


def test_finite_differences_verdict_fails_with_a_first_order_central_difference(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = numeric.derivative

    def broken(f, x, method="central", **kw):  # "central" silently one-sided
        return real(f, x, method="forward" if method == "central" else method, **kw)

    monkeypatch.setattr(numeric, "derivative", broken)
    run_experiment("finite-differences", tmp_path, quick=True, seed=0, verbose=False)
    res = json.loads((tmp_path / "results.json").read_text())
    assert res["claim_held"] is False
    assert abs(res["results"]["max_slope_deviation"]["central"] - 1.0) < 0.1  # slope 1, not 2
    assert "Claim DID NOT HOLD" in (tmp_path / "report.md").read_text()


def test_vanishing_gradients(runs) -> None:
    r = runs("vanishing-gradients")["results"]
    assert r["relu_over_logistic_first_layer_depth20"] > 100  # orders of magnitude
    assert r["logistic_decay_depth20"] < 0.5 < r["relu_decay_depth20"]
    # the error term delta = dL/dz shrinks by about f' ~ 0.25 per logistic layer, not for relu
    assert 0.2 <= r["delta_factor_depth20"]["logistic"] <= 0.26
    assert r["delta_factor_depth20"]["relu"] > 0.8
    # Glorot & Bengio: the standard init loses far more gradient variance over 5 tanh layers
    gb = r["glorot_bengio"]
    assert gb["standard"]["first_over_last"] < 0.1 * gb["normalised"]["first_over_last"]
    # a network whose loss stayed at ln C is named in the report as not having learned
    report = (runs.base / "vanishing-gradients" / "report.md").read_text()
    for x in r["did_not_learn"]:
        assert f"{x['activation']} at depth {x['depth']}" in report
    assert {"activation": "logistic", "depth": 20} in r["did_not_learn"]
    by = {(x["activation"], x["depth"]): x for x in r["rows"]}
    # the logistic's first-layer gradient shrinks with depth
    assert by[("logistic", 20)]["first_layer_init"] < 1e-3 * by[("logistic", 5)]["first_layer_init"]


def test_vanishing_gradients_verdict_fails_with_a_wrong_logistic_derivative(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the sigmoid primitive's reverse rule broken: derivative 1 instead of s (1 - s)
    monkeypatch.setattr(cr.REGISTRY["sigmoid"], "vjp_rules", (lambda g, out, x: g,))
    run_experiment("vanishing-gradients", tmp_path, quick=True, seed=0, verbose=False)
    res = json.loads((tmp_path / "results.json").read_text())
    assert res["claim_held"] is False
    assert res["results"]["delta_factor_depth20"]["logistic"] > 0.5


def test_initialisation(runs) -> None:
    r = runs("initialisation")["results"]
    rows = {x["case"]: x for x in r["rows"]}
    # symmetry is never broken: every hidden unit's parameters equal its layer's first unit's,
    # exactly, and a network with one unit per layer gives the same logits
    assert r["zero_init_unit_spread"] == 0.0
    assert r["zero_init_one_unit_logit_gap"] < 1e-9
    assert rows["tanh, all zero"]["unit_spread"] == 0.0
    # a random start breaks it (so the checks above can fail)
    assert rows["logistic, random (Glorot)"]["unit_spread"] > 0.1
    assert rows["logistic, random (Glorot)"]["one_unit_logit_gap"] > 0.1
    # one unit per layer learns a little, far less than a random start
    assert r["zero_init_test_accuracy"] <= r["random_init_test_accuracy"] - 0.5
    report = (runs.base / "initialisation" / "report.md").read_text()
    assert "each layer acted as one unit" in report
    above = r["zero_init_test_accuracy"] > r["chance_accuracy"] + 0.02
    assert (
        "test accuracy reached "
        + fmt(r["zero_init_test_accuracy"])
        + (": above" if above else ": near")
    ) in report
    dead = rows["relu, random (He), bias -8"]
    healthy = rows["relu, random (He), bias 0"]
    # almost no gradient reaches the first layer: every unit (nearly) never fires
    assert dead["first_layer_grad_init"] < 0.05 * healthy["first_layer_grad_init"]
    assert dead["active_rate_init"] < 0.01 < healthy["active_rate_init"]
    assert dead["test_accuracy"] < r["chance_accuracy"] + 0.1
    assert r["leaky_test_accuracy"] > dead["test_accuracy"] + 0.3


def test_initialisation_reports_na_and_draws_the_weight_rows(runs) -> None:
    rows = {x["case"]: x for x in runs("initialisation")["results"]["rows"]}
    assert rows["logistic, all zero"]["alive_init"] is None  # not a ReLU: n/a
    assert rows["relu, random (He), bias -8"]["alive_init"] == 0.0
    report = (runs.base / "initialisation" / "report.md").read_text()
    assert "| n/a |" in report and "go beyond the study note" in report


def test_initialisation_verdict_fails_when_relu_passes_gradient_everywhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # ReLU's reverse rule broken: derivative 1 for negative inputs too, so nothing dies
    monkeypatch.setattr(cr.REGISTRY["relu"], "vjp_rules", (lambda g, out, x: g,))
    run_experiment("initialisation", tmp_path, quick=True, seed=0, verbose=False)
    res = json.loads((tmp_path / "results.json").read_text())
    assert res["claim_held"] is False
    rows = {x["case"]: x for x in res["results"]["rows"]}
    assert rows["relu, random (He), bias -8"]["first_layer_grad_init"] > 0.1


def _fnn_headlines(r: dict, t: dict) -> list[str]:
    plain, aug = r["plain"], r["augmented"]
    accs = [fmt(v) for v in [*plain.values(), *aug.values()]]
    drops = [points(v) for v in r["accuracy_drop"].values()]
    gains = [points(v) for v in r["augmentation_gain"].values()]
    change = r["augmentation_unshifted_change"]
    return [*accs, *drops, *gains, points(abs(change)), "30000"]


def _cost_headlines(r: dict, t: dict) -> list[str]:
    rows = r["gradient"]
    return [
        *[fmt(v) for v in r["sweep_slopes"].values()],
        *[fmt(v) for v in r["work_slopes"].values()],
        *[fmt(v) for v in r["elementwise_slopes"].values()],
        fmt(r["work_slope_gap_numerical_minus_reverse"]),
        fmt(r["jacobian_work_crossover_n_over_m"]),
        fmt(r["evaluation_work_slope"]),
        *[fmt(v) for v in t["time_slopes"].values()],
        *[fmt(v) for v in t["time_slopes_upper_half"].values()],
        fmt(t["time_slope_gap_numerical_minus_reverse"]),
        fmt(t["jacobian_crossover_n_over_m"]),
        fmt(t["evaluation_time_slope"]),
        *[str(x[k]) for x in rows for k in ("numerical_evaluations", "forward_jvp_sweeps")],
        *[str(x[f"{m}_matmul_madds"]) for x in rows for m in ("numerical", "forward", "reverse")],
        *[str(j[k]) for j in r["jacobian"] for k in ("jacfwd_matmul_madds", "jacrev_matmul_madds")],
        *[str(j["jacrev_vjp_sweeps"]) for j in r["jacobian"]],
    ]


# Per experiment: the numbers its claim rests on, read from results.json and
# formatted as the report prints them (fmt: 3 significant figures unless noted).
HEADLINES = {
    "universal-approximation": lambda r, t: [
        fmt(r["worst_continuous_slope"]["rmse"]),
        fmt(r["worst_continuous_slope"]["sup"]),
        fmt(r["step_sup_min"]),
        *[
            fmt(r["errors"][a][f]["random"][n][-1])
            for a in r["errors"]
            for f in r["continuous_functions"]
            for n in ("rmse", "sup")
        ],
    ],
    "vanishing-gradients": lambda r, t: [
        fmt(r["relu_over_logistic_first_layer_depth20"]),
        fmt(r["logistic_decay_depth20"]),
        fmt(r["relu_decay_depth20"]),
        *[fmt(v) for v in r["delta_factor_depth20"].values()],
        fmt(r["glorot_bengio"]["standard"]["first_over_last"]),
        fmt(r["glorot_bengio"]["normalised"]["first_over_last"]),
        *[fmt(x["first_layer_init"]) for x in r["rows"]],
    ],
    "nonconvex": lambda r, t: [
        str(r["n_distinct_local_minima"]),
        *[fmt(m["loss"]) for m in r["distinct_minima"]],
        fmt(r["hessian_scan"]["most_negative_eigenvalue"]),
        fmt(r["midpoint_test"]["loss_midpoint"], 4),
        fmt(r["midpoint_test"]["chord_midpoint"], 4),
    ],
    "finite-differences": lambda r, t: [
        f"{r['median_abs_log10_step_ratio']['forward']:.2f}",
        f"{r['median_abs_log10_step_ratio']['central']:.2f}",
        f"{r['median_abs_log10_step_ratio']['richardson']:.2f}",
        *[
            f"{v:.3f}"
            for v in (
                min(r["float64_truncation_slopes"]["central"]),
                max(r["float64_truncation_slopes"]["richardson"]),
            )
        ],
        f"{r['central_beats_forward_count']}/{r['n_cases']}",
        *[fmt(c["best_error"]) for c in r["cases"]],
        *[fmt(c["best_step"]) for c in r["cases"]],
    ],
    "differentiation-cost": _cost_headlines,
    "expression-swell": lambda r, t: [
        f"{r['growth']['growth_factor_per_iteration']['tree_derivative']:.3g}",
        f"{r['growth']['growth_factor_per_iteration']['tree_derivative_then_cse']:.3g}",
        f"{r['growth']['linear']['program_derivative']['per_step']:.3g}",
        f"{r['growth']['linear']['mlp_derivative_cse']['per_step']:.3g}",
        str(r["logistic_map"][-1]["program_derivative"]),
        str(r["mlp"][-1]["derivative_cse"]),
    ],
    "initialisation": lambda r, t: [
        fmt(r[k])
        for k in (
            "zero_init_test_accuracy",
            "random_init_test_accuracy",
            "chance_accuracy",
            "zero_init_unit_spread",
            "zero_init_one_unit_logit_gap",
            "dead_relu_test_accuracy",
            "leaky_test_accuracy",
        )
    ],
    "regularisation": lambda r, t: [
        f"{s[k]:{f}}"
        for s in r["summary"].values()
        for k, f in (
            ("gain_mean", "+.3f"),
            ("gain_std", ".3f"),
            ("test_accuracy_lambda0", ".3f"),
            ("test_accuracy_chosen", ".3f"),
            ("norm_ratio_largest_lambda", ".3g"),
        )
    ],
    "fnn-limits": _fnn_headlines,
    "three-ways": lambda r, t: [
        fmt(r["f"], 15),
        *[fmt(v, 15) for m in r["methods"].values() for v in m.values()],
        fmt(r["max_deviation"]["central differences (numeric.gradient)"]),
        f"{r['numerical_evaluations']} evaluations",
    ],
}


@pytest.mark.parametrize("name", names())
def test_report_quotes_its_numbers(runs, name: str) -> None:
    res = runs(name)
    report = (runs.base / name / "report.md").read_text()
    quoted = HEADLINES[name](res["results"], res["timings"])
    assert len(quoted) >= 5
    missing = [q for q in quoted if q not in report]
    assert not missing, f"{name}: report.md does not quote {missing}"
