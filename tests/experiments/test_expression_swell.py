"""The expression-swell experiment: Baydin et al.'s counts, swell of trees, linear graphs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chainrule import symbolic as sym
from chainrule.experiments import run_experiment
from chainrule.experiments.expression_swell import BAYDIN
from chainrule.experiments.expression_swell_sizes import sympy_counts

pytest.importorskip("matplotlib")


def test_baydin_counts_reproduced_exactly() -> None:
    pytest.importorskip("sympy")
    # Baydin et al. (JMLR 2018): count_ops of d l_n/dx without and with cse
    assert BAYDIN == {4: (82, 27), 6: (768, 67), 8: (5472, 123)}
    for n, (plain, with_cse) in BAYDIN.items():
        c = sympy_counts(n)
        assert c is not None
        assert (c["derivative_ops"], c["derivative_cse_ops"]) == (plain, with_cse)


def test_expression_swell(runs) -> None:
    res = runs("expression-swell")
    r = res["results"]
    assert res["claim_held"] is True and all(r["checks"].values())
    lm, g = r["logistic_map"], r["growth"]
    factor, lin = g["growth_factor_per_iteration"], g["linear"]
    # written as a tree, the derivative swells: about x2 per iteration, CSE afterwards or not
    assert 1.9 < factor["tree_derivative"] < 2.2
    assert 1.9 < factor["tree_derivative_then_cse"] < 2.2
    # as a shared graph it grows by a constant 8 operations per iteration (7 simplified)
    by_n = {row["n"]: row for row in lm}
    for n in range(3, max(by_n) + 1):
        if n in by_n and n - 1 in by_n:
            assert by_n[n]["program_derivative"] - by_n[n - 1]["program_derivative"] == 8
    assert lin["program_derivative"]["spread"] == 1.0
    assert abs(lin["program_derivative_simplified"]["per_step"] - 7) < 1e-9
    # CSE of the tree before differentiating gives exactly the program's derivative size
    for row in lm:
        if "tree_cse_first_derivative" in row:
            assert row["tree_cse_first_derivative"] == row["program_derivative"]
    # MLP: linear in depth, 9 operations per layer against 2 for the function
    assert (
        lin["mlp_derivative_cse"]["linear"] and abs(lin["mlp_derivative_cse"]["per_step"] - 9) < 0.1
    )
    assert abs(g["mlp_function_per_layer"] - 2) < 1e-9
    if r["sympy_installed"]:
        assert g["baydin_reproduced"] is True
        assert factor["sympy_derivative_ops"] > 2.3
        # SymPy's cse: quadratic growth (constant second difference 4), not linear
        assert g["sympy_cse_second_differences"] == [4]
        assert lin["sympy_derivative_cse_ops"]["linear"] is False
    report = (runs.base / "expression-swell" / "report.md").read_text()
    assert "5472 / 123" in report and "quadratically" in report


def test_expression_swell_verdict_fails_without_cse(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # chainrule's CSE disabled: the tree is differentiated as written and swells
    monkeypatch.setattr(sym, "cse", lambda g: g)
    run_experiment("expression-swell", tmp_path, quick=True, seed=0, verbose=False)
    res = json.loads((tmp_path / "results.json").read_text())
    assert res["claim_held"] is False
    assert res["results"]["checks"]["chainrule_cse_of_the_tree_grows_linearly"] is False
    assert res["results"]["growth"]["linear"]["tree_cse_first_derivative"]["spread"] > 10
    assert "Claim DID NOT HOLD" in (tmp_path / "report.md").read_text()
