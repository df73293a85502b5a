"""L2 regularisation: accuracy and the weights' Frobenius norm against lambda.

The structural risk ``R = (1/N) sum_i L_i + (lambda/2) ||W||_F^2`` (weights
only, not biases) is minimised for a sweep of ``lambda``. Larger ``lambda``
pulls ``W`` towards 0: the norm falls, the training accuracy falls, and the
gap between training and test accuracy closes.
"""

from __future__ import annotations

import numpy as np

from chainrule import data, nn, train
from chainrule.experiments import plotting
from chainrule.experiments.runner import Context

SIZES_HIDDEN = [64]


def _frobenius(model: nn.MLP) -> float:
    return float(np.sqrt(sum(float((layer.W.numpy() ** 2).sum()) for layer in model.layers)))


def _fit(ctx: Context, ds: data.Dataset, lam: float, steps: int) -> dict:
    if ds.n_classes is None:
        raise ValueError(f"regularisation: the {ds.name} data have no classes; use digits")
    model = nn.MLP(
        [ds.X_train.shape[1], *SIZES_HIDDEN, ds.n_classes],
        activation="tanh",
        dtype=np.float64,
        rng=ctx.rng("init"),
        init="xavier_normal",
    )
    history = train.fit(  # cross-entropy + nn.l2_penalty: (lam / 2) ||W||_F^2, weights only
        model,
        (ds.X_train, ds.y_train),
        optimizer="adam",
        lr=0.01,
        lam=lam,
        epochs=steps,
        batch_size=len(ds.X_train),  # full batch: one step per epoch
        shuffle=False,
        progress=False,
    )
    return {
        "lambda": lam,
        "weight_norm": _frobenius(model),
        "objective_end": history.loss[-1],
        "train_accuracy": train.accuracy(ds.y_train, model.predict(ds.X_train)),
        "test_accuracy": train.accuracy(ds.y_test, model.predict(ds.X_test)),
    }


def _plot(rows):
    lam = np.array([r["lambda"] for r in rows])
    x = np.where(lam > 0, lam, lam[lam > 0].min() / 10)  # lambda = 0 drawn one decade left
    fig, axes = plotting.subplots(1, 2, width=4.8, height=3.8)
    axes[0, 0].semilogx(x, [r["train_accuracy"] for r in rows], "o-", label="train")
    axes[0, 0].semilogx(x, [r["test_accuracy"] for r in rows], "s-", label="test")
    axes[0, 0].set(
        xlabel="lambda (leftmost point: lambda = 0)",
        ylabel="accuracy (fraction)",
        title="accuracy against L2 strength",
    )
    axes[0, 1].loglog(
        x, [r["weight_norm"] for r in rows], "o-", color="tab:purple", label="||W||_F"
    )
    axes[0, 1].set(
        xlabel="lambda (leftmost point: lambda = 0)",
        ylabel="||W||_F (all layers)",
        title="weight norm against L2 strength",
    )
    for ax in axes[0]:
        ax.grid(True, alpha=0.3)
        ax.legend()
    return fig


def run(ctx: Context) -> None:
    n_samples = 500 if ctx.quick else 900
    ds = data.load("digits", seed=ctx.seed, n_samples=n_samples)
    lams = (
        [0.0, 1e-3, 1e-2, 1e-1, 1.0]
        if ctx.quick
        else [0.0, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 3e-1, 1.0]
    )
    steps = 150 if ctx.quick else 400
    rows = [_fit(ctx, ds, lam, steps) for lam in lams]
    norms = [r["weight_norm"] for r in rows]
    ratios = [b / a for a, b in zip(norms[:-1], norms[1:])]
    ctx.results.update(
        rows=rows,
        steps=steps,
        n_train=len(ds.X_train),
        hidden=SIZES_HIDDEN,
        max_consecutive_norm_ratio=max(ratios),
        norm_shrink_total=norms[-1] / norms[0],
    )
    r = ctx.report
    r.heading("What was run")
    r.paragraph(
        f"A 64-{SIZES_HIDDEN[0]}-10 tanh MLP trained on {len(ds.X_train)} digits images "
        f"(a subsample, so that it can overfit) with full-batch Adam (lr 0.01, {steps} steps) "
        "on cross-entropy + (lambda/2) ||W||_F^2, from the same initial weights for every "
        "lambda. ||W||_F is over all weight matrices (biases excluded)."
    )
    r.heading("Measurements")
    r.table(
        ["lambda", "||W||_F", "objective at end", "train accuracy", "test accuracy"],
        [
            [
                x["lambda"],
                x["weight_norm"],
                x["objective_end"],
                x["train_accuracy"],
                x["test_accuracy"],
            ]
            for x in rows
        ],
    )
    ctx.plot(
        lambda: _plot(rows),
        "l2_sweep.png",
        "Left: training and test accuracy against lambda. Right: ||W||_F against lambda.",
    )
    r.heading("What it shows")
    held = (
        max(ratios) <= 1.02
        and norms[-1] < 0.5 * norms[0]
        and (rows[-1]["train_accuracy"] < rows[0]["train_accuracy"])
    )
    ctx.verdict(
        held,
        f"||W||_F fell from {norms[0]:.3g} at lambda = 0 to {norms[-1]:.3g} at lambda = "
        f"{lams[-1]:g} (largest step-to-step ratio {max(ratios):.3f}); training accuracy went "
        f"from {rows[0]['train_accuracy']:.3f} to {rows[-1]['train_accuracy']:.3f} and test "
        f"accuracy from {rows[0]['test_accuracy']:.3f} to {rows[-1]['test_accuracy']:.3f} "
        f"(best test accuracy {max(x['test_accuracy'] for x in rows):.3f}).",
    )
