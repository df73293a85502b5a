"""Initialisation: all-zero weights keep hidden units identical; biases of -8 kill ReLUs.

Two failures of initialisation the chapter's training rule cannot escape:

- **Symmetry.** With every weight zero, all hidden units of a layer compute
  the same value and receive the same gradient, so gradient descent keeps
  them identical forever: the layer acts as one unit.
- **Dying ReLU.** With hidden biases of -8 every ReLU's input is negative on
  every example, its derivative is 0, no gradient reaches the weights below,
  and the network never learns. Leaky ReLU keeps a small slope (0.01) for
  negative inputs, so gradients still flow.
"""

from __future__ import annotations

import numpy as np

from chainrule import data
from chainrule.experiments import plotting
from chainrule.experiments.networks import accuracy, init_net, softmax_cross_entropy, train
from chainrule.experiments.runner import Context

HIDDEN = [32, 32]


def _loss(net, X, y):
    return softmax_cross_entropy(net.forward(X), y)


def _unit_spread(net) -> float:
    """Largest difference between any hidden unit's incoming weights and unit 0's."""
    spread = 0.0
    for W in net.weights[:-1]:
        w = W.numpy()
        spread = max(spread, float(np.abs(w - w[0]).max()))
    return spread


def _first_grad_norm(net, X, y) -> float:
    _loss(net, X, y).backward()
    g = float(np.linalg.norm(net.weights[0].grad.numpy()))
    for p in net.params:
        p.grad = None
    return g


def _activity(net, X) -> tuple[float, float]:
    """Share of hidden units positive on at least one example, and share of all
    (unit, example) pairs that are positive."""
    pre: list[np.ndarray] = []
    net.forward(X, pre)
    alive = np.concatenate([(z > 0).any(axis=0) for z in pre])
    rate = np.mean(np.concatenate([(z > 0).ravel() for z in pre]))
    return float(alive.mean()), float(rate)


def _case(ctx, ds, name, act, init, bias, steps) -> dict:
    sizes = [ds.n_features, *HIDDEN, ds.n_classes]
    net = init_net(sizes, act, ctx.rng(name), init=init, bias=bias)
    row = {
        "case": name,
        "activation": act,
        "init": init,
        "hidden_bias": bias,
        "first_layer_grad_init": _first_grad_norm(net, ds.X_train, ds.y_train),
        "alive_init": _activity(net, ds.X_train)[0],
        "active_rate_init": _activity(net, ds.X_train)[1],
    }
    losses = train(net, _loss, ds.X_train, ds.y_train, steps, lr=0.01)
    row.update(
        loss_start=losses[0],
        loss_end=losses[-1],
        losses=losses,
        alive_trained=_activity(net, ds.X_train)[0],
        unit_spread=_unit_spread(net),
        train_accuracy=accuracy(net, ds.X_train, ds.y_train),
        test_accuracy=accuracy(net, ds.X_test, ds.y_test),
    )
    return row


def _plot(rows):
    fig, axes = plotting.subplots(1, 1, width=6.5, height=4.2)
    ax = axes[0, 0]
    for r in rows:
        ax.semilogy(r["losses"], label=f"{r['case']} (test acc {r['test_accuracy']:.2f})")
    ax.set(
        xlabel="training step (full batch Adam)",
        ylabel="training loss (nats)",
        title="training curves of the initialisation cases",
    )
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def run(ctx: Context) -> None:
    ds = data.load("digits", seed=ctx.seed)
    steps = 100 if ctx.quick else 400
    cases = [
        ("logistic, random (Glorot)", "logistic", "auto", 0.0),
        ("logistic, all zero", "logistic", "zero", 0.0),
        ("tanh, all zero", "tanh", "zero", 0.0),
        ("relu, random (He), bias 0", "relu", "auto", 0.0),
        ("relu, random (He), bias -8", "relu", "auto", -8.0),
        ("leaky_relu, random (He), bias -8", "leaky_relu", "auto", -8.0),
    ]
    rows = [_case(ctx, ds, *c, steps) for c in cases]
    by = {r["case"]: r for r in rows}
    chance = float(np.bincount(ds.y_test).max() / len(ds.y_test))
    ctx.results.update(
        rows=[{k: v for k, v in r.items() if k != "losses"} for r in rows],
        steps=steps,
        hidden=HIDDEN,
        chance_accuracy=chance,
    )
    rep = ctx.report
    rep.heading("What was run")
    rep.paragraph(
        f"MLPs 64-{'-'.join(map(str, HIDDEN))}-10 on the digits data (standardised), trained "
        f"with full-batch Adam (lr 0.01) for {steps} steps from six initialisations. "
        "'Unit spread' is the largest difference between any hidden unit's incoming weights "
        "and those of the layer's first unit after training (0 means all units are identical). "
        "'Alive' is the share of hidden units positive on at least one training example, "
        "'active rate' the share of (unit, example) pairs with a positive pre-activation."
    )
    rep.heading("Measurements")
    rep.table(
        [
            "case",
            "|dL/dW1| at init",
            "alive at init",
            "active rate at init",
            "alive after",
            "unit spread after",
            "loss start",
            "loss end",
            "train accuracy",
            "test accuracy",
        ],
        [
            [
                r["case"],
                r["first_layer_grad_init"],
                r["alive_init"],
                r["active_rate_init"],
                r["alive_trained"],
                r["unit_spread"],
                r["loss_start"],
                r["loss_end"],
                r["train_accuracy"],
                r["test_accuracy"],
            ]
            for r in rows
        ],
    )
    rep.paragraph(f"Chance level (the most frequent test class): {chance:.3f}.")
    ctx.plot(
        lambda: _plot(rows),
        "training_curves.png",
        "Training loss against step for each initialisation (log scale).",
    )
    rep.heading("What it shows")
    z, rnd = by["logistic, all zero"], by["logistic, random (Glorot)"]
    dead, leaky = by["relu, random (He), bias -8"], by["leaky_relu, random (He), bias -8"]
    healthy = by["relu, random (He), bias 0"]
    held = (
        z["unit_spread"] == 0.0
        and z["test_accuracy"] < rnd["test_accuracy"] - 0.2
        and dead["active_rate_init"] < 0.01 < healthy["active_rate_init"]
        and dead["first_layer_grad_init"] < 0.05 * healthy["first_layer_grad_init"]
        and dead["test_accuracy"] < chance + 0.1
        and leaky["test_accuracy"] > dead["test_accuracy"] + 0.3
    )
    ctx.results.update(
        zero_init_unit_spread=z["unit_spread"],
        zero_init_test_accuracy=z["test_accuracy"],
        random_init_test_accuracy=rnd["test_accuracy"],
        dead_relu_test_accuracy=dead["test_accuracy"],
        leaky_test_accuracy=leaky["test_accuracy"],
    )
    ctx.verdict(
        held,
        f"with all-zero weights the hidden units stayed identical (spread {z['unit_spread']:.3g}) "
        f"and test accuracy reached {z['test_accuracy']:.3f} against {rnd['test_accuracy']:.3f} "
        f"from a random start (chance {chance:.3f}); with biases -8, ReLU's first-layer gradient "
        f"was {dead['first_layer_grad_init']:.3g} (bias 0: "
        f"{healthy['first_layer_grad_init']:.3g}) and accuracy {dead['test_accuracy']:.3f}, while "
        f"leaky ReLU reached {leaky['test_accuracy']:.3f}.",
    )
