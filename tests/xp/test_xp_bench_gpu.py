"""benchmarks/bench_gpu.py checked on the CPU: its cr.jit rows count fused calls and launches
(array-api-strict standing in for CuPy), it runs on NumPy, and without a GPU it says so in
one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import chainrule as cr

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_gpu.py"
ENV = {**os.environ, "PYTHONPATH": str(SCRIPT.parents[1] / "src")}


def test_jit_rows_count_fused_calls_and_estimate_launches(strict, bench_gpu):
    b = bench_gpu
    rows = {}
    for fuse in (lambda f: f, False):
        model, X, Y = b.problem([12, 8, 6, 4], 16)
        model.to(strict.device)
        Xd, Yd = cr.tensor(X, device=strict.device), cr.tensor(Y, device=strict.device)
        step, counts = b.chainrule_jit_step(model, Xd, Yd, fuse)
        step()
        rows[fuse is False] = counts()
    fused, unfused = rows[False], rows[True]
    # per layer: bias add + ReLU + its mask, and each parameter's update, among others
    assert fused["fused_calls"] >= 6 and unfused["fused_calls"] == 0
    # each fused call replaces two or more launches
    assert unfused["launches_estimate"] >= fused["launches_estimate"] + fused["fused_calls"]


def _rows(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]


def test_runs_on_numpy_and_checks_against_it():
    out = subprocess.run(
        [sys.executable, str(SCRIPT), "--device", "cpu", "--workload", "T", "--rounds", "1",
         "--steps", "1", "--systems", "tape", "jit", "hand"],
        capture_output=True, text=True, env=ENV, timeout=300, check=True,
    )  # fmt: skip
    rows = _rows(out.stdout)
    assert rows[0]["kind"] == "environment" and rows[0]["numpy"] == np.__version__
    checks = [r for r in rows if "check" in r]
    assert {r["check"] for r in checks} == {"gradients vs NumPy", "cr.jit step vs NumPy"}
    assert all(r["ok"] for r in checks)
    systems = {r["system"] for r in rows if "system" in r}
    assert systems == {"chainrule tape", "chainrule jit", "hand numpy"}


def test_without_a_gpu_it_says_so_in_one_line():
    if cr.cuda_available():
        pytest.skip("a GPU is present")
    out = subprocess.run(
        [sys.executable, str(SCRIPT)], capture_output=True, text=True, env=ENV, timeout=300
    )
    assert out.returncode == 1 and out.stdout == ""
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("bench_gpu: no GPU to measure")


def test_a_dry_run_exercises_every_section_on_array_api_strict(tmp_path):
    # array-api-strict stands in for CuPy, an identity wrapper for cupy.fuse
    out_file = tmp_path / "rows.jsonl"
    out = subprocess.run(
        [sys.executable, str(SCRIPT), "--dry-run", "--rounds", "1", "--steps", "1",
         "--precision", "high", "--systems", "tape", "jit", "graph", "hand",
         "--out", str(out_file)],
        capture_output=True, text=True, env=ENV, timeout=300, check=True,
    )  # fmt: skip
    rows = _rows(out.stdout)
    assert [json.loads(line) for line in out_file.read_text().splitlines()] == rows
    assert not [r for r in rows if "error" in r]
    checks = [r for r in rows if "check" in r]
    assert len(checks) == 4 and all(r["ok"] for r in checks)
    jit = [r for r in rows if r.get("system") == "chainrule jit"]
    assert {r["precision"] for r in jit} == {"highest", "high"}
    assert all(r["fused_calls"] > 0 and r["fusion_fallbacks"] == [] for r in jit)
    unfused = next(r for r in rows if r.get("system") == "chainrule jit unfused")
    assert unfused["launches_estimate"] > jit[0]["launches_estimate"]
    graphs = [r for r in rows if r.get("system", "").startswith("chainrule jit CUDA graph")]
    graphs += [r for r in rows if r.get("system") == "chainrule jit graphed"]
    assert [r["skipped"] for r in graphs] == ["needs CuPy", "needs CuPy"]
    table = out.stdout.split("# summary", 1)[1]
    assert "chainrule jit unfused" in table and "# checks: 4/4 ok" in table


def test_a_failing_section_prints_its_error_and_the_run_goes_on(bench_gpu):
    b = bench_gpu
    b.ROWS.clear()

    def broken():
        raise RuntimeError("no kernel for this GPU")

    b.section(1e9, {"workload": "T", "system": "x"}, broken)
    b.section(1e9, {"workload": "T", "system": "y"}, lambda: b.emit(workload="T", done=True))
    b.section(-1.0, {"workload": "T", "system": "z"}, broken)  # the budget is spent
    err, done, skipped = b.ROWS
    assert err["error"] == "RuntimeError: no kernel for this GPU" and err["system"] == "x"
    assert err["where"].startswith("test_xp_bench_gpu.py:")
    assert done == {"workload": "T", "done": True}
    assert skipped["system"] == "z" and skipped["skipped"].startswith("time budget")


def test_the_jitted_loss_is_the_models_loss(bench_gpu):
    # mlp_loss (what the cr.jit rows and tests/xp/test_xp_fusion differentiate) is nn.MLP's
    # forward and loss, written with plain matrix products
    model, X, Y = bench_gpu.problem([12, 8, 6, 4], 16)
    want = cr.nn.F.softmax_cross_entropy(model(X), Y)
    got = bench_gpu.mlp_loss(X, Y, *[p.detach() for p in model.parameters()])
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-6)
