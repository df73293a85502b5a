"""The nonconvex experiment: verified minima, a barrier between them, curvature counted; a
convex substitute loss or a wrong derivative rule turns the verdict to NOT HELD."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import chainrule as cr
from chainrule import numeric
from chainrule.experiments import nonconvex, run_experiment

pytest.importorskip("matplotlib")


def test_nonconvex(runs) -> None:
    res = runs("nonconvex")
    r = res["results"]
    assert res["claim_held"] is True
    assert r["n_distinct_local_minima"] >= 2
    for m in r["distinct_minima"]:
        w = np.array(m["w"])
        # a minimum by an independent check: central differences and a positive definite Hessian
        g = numeric.gradient(lambda v: float(nonconvex.loss(v)), w)
        assert np.linalg.norm(g) < 1e-6
        assert min(m["hessian_eigenvalues"]) > 1e-6
    seg = r["segment"]
    assert abs(seg["loss_a"] - seg["loss_b"]) > 1e-3  # different minima, not a symmetric copy
    assert seg["top_loss"] > max(seg["loss_a"], seg["loss_b"]) + 1e-4  # the barrier
    mid = r["midpoint_test"]
    assert mid["loss_midpoint"] > mid["chord_midpoint"]  # convexity fails on the segment
    # every run is either a verified minimum or stalled, and stalled runs are not minima
    stalled = [x for x in r["runs"] if not x["is_local_minimum"]]
    assert len(stalled) == r["n_stalled_runs"]
    for x in stalled:
        assert x["grad_norm"] > 1e-8 or min(x["hessian_eigenvalues"]) <= 1e-6
    counts = r["hessian_scan"]["counts"]
    assert sum(counts.values()) == r["hessian_scan"]["n_points"]
    assert counts["saddle-shaped"] > 0 and counts["concave"] > 0
    assert r["hessian_scan"]["most_negative_eigenvalue"] < -1e-3
    kinds = [p["kind"] for p in r["critical_points"]]
    assert kinds.count("minimum") == r["n_distinct_local_minima"]
    assert r["n_saddle_points"] == kinds.count("saddle point") >= 1
    report = (runs.base / "nonconvex" / "report.md").read_text()
    assert "stalled" in report and f"saddle-shaped | {counts['saddle-shaped']} |" in report


def test_classify_by_eigenvalue_signs() -> None:
    assert nonconvex.classify(np.array([1e-3, 2.0])) == "convex"
    assert nonconvex.classify(np.array([-1e-3, 2.0])) == "saddle-shaped"
    assert nonconvex.classify(np.array([-2.0, -1e-3])) == "concave"
    assert nonconvex.classify(np.array([-1e-9, 2.0])) == "flat"


def _run(tmp_path: Path) -> dict:
    run_experiment("nonconvex", tmp_path, quick=True, seed=0, verbose=False)
    return json.loads((tmp_path / "results.json").read_text())


def test_nonconvex_verdict_fails_with_a_convex_substitute_loss(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a linear model: its mean squared error is a convex quadratic with one minimum
    monkeypatch.setattr(nonconvex, "network", lambda w1, w2, x: 0.1 * (w1 * x + w2))
    res = _run(tmp_path)
    r = res["results"]
    assert res["claim_held"] is False
    assert r["n_distinct_local_minima"] == 1
    counts = r["hessian_scan"]["counts"]
    assert counts["saddle-shaped"] == counts["concave"] == 0


def test_nonconvex_verdict_fails_with_a_wrong_sigmoid_derivative(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # derivative 1 instead of s (1 - s): descent ends where the wrong gradient vanishes,
    # which central differences do not confirm as critical points
    monkeypatch.setattr(cr.REGISTRY["sigmoid"], "vjp_rules", (lambda g, out, x: g,))
    res = _run(tmp_path)
    assert res["claim_held"] is False
    assert res["results"]["n_distinct_local_minima"] < 2
