"""regularisation: the chapter's L2 update shrinks W and, on a small training set with
wrong labels, raises the test accuracy beyond the seed-to-seed spread; ignoring lambda
fails the verdict."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from chainrule import nn, train
from chainrule.experiments import run_experiment
from chainrule.experiments.regularisation import OPTIMISERS

pytest.importorskip("matplotlib")


def test_regularisation(runs) -> None:
    res = runs("regularisation")
    r = res["results"]
    assert res["claim_held"] is True
    lams = r["lambdas"]
    assert lams[0] == 0 and lams == sorted(lams) and len(r["seeds"]) >= 3
    for opt, s in r["summary"].items():
        norms = s["mean"]["weight_norm"]
        assert all(b < a for a, b in zip(norms, norms[1:])), opt  # strictly falling
        assert s["gain_mean"] > s["gain_std"] > 0, opt
        assert len(s["gain_per_seed"]) == len(r["seeds"])
        # lambda = 0 memorises most of the wrong labels; the chosen lambda does not
        i = lams.index(s["chosen_lambda"])
        noisy = s["mean"]["train_accuracy_noisy_labels"]
        assert noisy[0] > 1 - r["wrong_label_share"] / 2 > noisy[i], opt
    report = (runs.base / "regularisation" / "report.md").read_text()
    assert "Krogh & Hertz" in report and "symlog" in report


def test_the_gd_option_is_the_chapters_update() -> None:
    # train.fit(optimizer="sgd", momentum=0, lam) takes W <- W - alpha (grad + lam W) and
    # b <- b - alpha grad_b: one step checked against the update written out
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(20, 5)), rng.integers(0, 3, 20)
    m = nn.MLP([5, 4, 3], activation="tanh", dtype=np.float64, rng=1)
    before = {k: v.numpy().copy() for k, v in m.named_parameters()}
    m.zero_grad()
    nn.F.softmax_cross_entropy(m(X), y).backward()  # the data term's gradient only
    grads = {k: v.grad.numpy().copy() for k, v in m.named_parameters()}
    lam, alpha = 0.3, 0.1
    opts = dict(OPTIMISERS["gd"][0], lr=alpha)
    train.fit(m, (X, y), **opts, lam=lam, epochs=1, batch_size=20, shuffle=False, progress=False)
    for k, p in m.named_parameters():
        decay = lam * before[k] if k.endswith(".W") else 0.0  # biases not decayed
        np.testing.assert_allclose(p.numpy(), before[k] - alpha * (grads[k] + decay), rtol=1e-12)


def test_regularisation_verdict_fails_when_lambda_is_ignored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the penalty dropped from the training loss (lam ignored): every lambda trains the
    # same network, the weights do not shrink and nothing is gained
    monkeypatch.setattr(
        "chainrule.train.steps.l2_penalty", lambda model, lam: nn.l2_penalty(model, 0.0)
    )
    run_experiment("regularisation", tmp_path, quick=True, seed=0, verbose=False)
    res = json.loads((tmp_path / "results.json").read_text())
    assert res["claim_held"] is False
    for s in res["results"]["summary"].values():
        assert s["gain_mean"] == 0 and s["norm_ratio_largest_lambda"] == 1
