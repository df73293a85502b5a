"""universal-approximation: the error falls with width at a fitted rate, and the step's
sup-norm error stays at 0.5; an identity activation (a linear network) fails the verdict."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from chainrule.experiments import run_experiment
from chainrule.experiments.universal_approximation import (
    ACTS,
    Block,
    errors,
    fit_output_layer,
    fitted_slope,
)
from chainrule.nn.activations import ACTIVATIONS

pytest.importorskip("matplotlib")


def test_universal_approximation(runs) -> None:
    res = runs("universal-approximation")
    r = res["results"]
    assert res["claim_held"] is True
    for act in r["errors"]:
        for fname in r["continuous_functions"]:
            # approximation (least squares on random units) falls at least like n^-1/2
            for norm in ("rmse", "sup"):
                assert r["slopes"][act][fname]["random"][norm] <= -0.5, (act, fname, norm)
        # the step: RMSE falls, the sup-norm error cannot go below 0.5 (continuity)
        step = r["errors"][act]["step"]
        assert r["slopes"][act]["step"]["random"]["rmse"] < -0.2, act
        for m in step:
            assert min(step[m]["sup"]) >= 0.49, (act, m)
    assert r["worst_continuous_slope"]["rmse"] <= -0.5
    report = (runs.base / "universal-approximation" / "report.md").read_text()
    assert "Leshno" in report and "Cybenko" in report and "Barron" in report


def test_least_squares_output_layer_is_the_best_one() -> None:
    # the least-squares output layer beats any perturbation of it on the fitting points
    rng = np.random.default_rng(3)
    block = Block([3, 8], "tanh", rng, scale=5.0)
    u = np.linspace(-1, 1, 200)
    y = np.abs(u)
    fit_output_layer(block, u, y)
    best = errors(block, u, y)[0]
    block.v.data[:] += rng.normal(0, 1e-3, block.v.data.shape)
    assert np.all(errors(block, u, y)[0] > best)


def test_fitted_slope_leaves_out_the_float_floor() -> None:
    widths = [1, 2, 4, 8, 16, 32]
    assert fitted_slope(widths, [1, 1, 1e-2, 1e-4, 1e-13, 1e-14]) == pytest.approx(-2 / np.log10(2))
    assert fitted_slope(widths, [1, 1, 1e-12, 1e-13, 1e-13, 1e-14]) is None


def test_universal_approximation_verdict_fails_for_a_linear_network(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # every activation replaced by the identity: the network is linear in x, so its error
    # on sine, abs and bumps stops falling after width 1 and the verdict must not hold
    for act in ACTS:
        monkeypatch.setitem(ACTIVATIONS, act, ACTIVATIONS["identity"])
    run_experiment("universal-approximation", tmp_path, quick=True, seed=0, verbose=False)
    res = json.loads((tmp_path / "results.json").read_text())
    assert res["claim_held"] is False
    assert res["results"]["worst_continuous_slope"]["rmse"] > -0.1
