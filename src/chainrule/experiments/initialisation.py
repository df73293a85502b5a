"""Initialisation: all-zero weights keep hidden units identical; biases of -8 kill ReLUs.

Two failures of initialisation the chapter's training rule cannot escape:

- **Symmetry.** With every weight zero, all hidden units of a layer compute
  the same value and receive the same gradient, so gradient descent keeps
  them identical forever: each layer acts as one unit. The network still
  learns a little (one logistic unit per layer is above chance) but stays far
  below a randomly initialised one. The experiment checks the symmetry
  exactly and checks that a network with one unit per layer, built from the
  trained weights, computes the same logits.
- **Dying ReLU.** With hidden biases of -8 every ReLU's input is negative on
  every example, its derivative is 0, no gradient reaches the weights below,
  and the network never learns. Leaky ReLU keeps a small slope (0.01) for
  negative inputs, so gradients still flow.

Both go beyond the study note, which states the training rule but not these
two ways in which an initialisation can defeat it.
"""

from __future__ import annotations

import numpy as np

import chainrule as cr
from chainrule import data, nn, train
from chainrule.experiments import plotting
from chainrule.experiments.report import fmt
from chainrule.experiments.runner import Context

HIDDEN = [32, 32]


def _params(model: nn.MLP) -> list[np.ndarray]:
    """``[W1, b1, W2, b2, ...]`` as arrays, first layer first."""
    return [p.numpy() for p in model.parameters()]


def _unit_spread(model: nn.MLP) -> float:
    """Largest difference between any hidden unit's parameters (incoming weights,
    bias, outgoing weights) and those of the first unit of its layer."""
    p = _params(model)
    spread = 0.0
    for layer in range(len(p) // 2 - 1):
        W, b, W_next = p[2 * layer], p[2 * layer + 1], p[2 * layer + 2]
        for d in (W - W[0], b - b[0], W_next - W_next[:, :1]):
            spread = max(spread, float(np.abs(d).max()))
    return spread


def one_unit_net(model: nn.MLP) -> nn.MLP:
    """The network with one unit per hidden layer that ``model`` equals when its hidden
    units are identical: unit 0 of each layer, its outgoing weights summed."""
    p = _params(model)
    n_layers = len(p) // 2
    sizes = [model.layer_sizes[0], *[1] * (n_layers - 1), model.layer_sizes[-1]]
    one = nn.MLP(sizes, activation=model.activation, dtype=model.dtype, init="zeros")
    state = {}
    for layer in range(n_layers):
        W, b = p[2 * layer], p[2 * layer + 1]
        if layer > 0:  # the identical inputs merge into one: their weights add up
            W = W.sum(axis=1, keepdims=True)
        if layer < n_layers - 1:  # a hidden layer keeps its first unit
            W, b = W[:1], b[:1]
        state[f"layers.{layer}.W"], state[f"layers.{layer}.b"] = W, b
    one.load_state_dict(state)
    return one


def _one_unit_gap(model: nn.MLP, X: np.ndarray) -> float:
    """Largest difference between the logits of ``model`` and of its one-unit version."""
    with cr.no_grad():
        full, one = model(X).numpy(), one_unit_net(model)(X).numpy()
    return float(np.abs(full - one).max())


def _first_grad_norm(model: nn.MLP, X: np.ndarray, y: np.ndarray) -> float:
    model.zero_grad()
    nn.F.softmax_cross_entropy(model(X), y).backward()
    g = model.layers[0].W.grad
    model.zero_grad()
    return 0.0 if g is None else float(np.linalg.norm(g.numpy()))


def _activity(model: nn.MLP, X: np.ndarray) -> tuple[float, float]:
    """Share of hidden units positive on at least one example, and share of all
    (unit, example) pairs that are positive."""
    with cr.no_grad():
        pre = [z.numpy() for z in model.pre_activations(X)[:-1]]
    alive = np.concatenate([(z > 0).any(axis=0) for z in pre])
    rate = np.mean(np.concatenate([(z > 0).ravel() for z in pre]))
    return float(alive.mean()), float(rate)


def _accuracy(model: nn.MLP, X: np.ndarray, y: np.ndarray) -> float:
    return train.accuracy(y, model.predict(X))


def _case(ctx, ds, name, act, init, bias, steps) -> dict:
    model = nn.MLP(
        [ds.X_train.shape[1], *HIDDEN, ds.n_classes],
        activation=act,
        dtype=np.float64,
        rng=ctx.rng(name),
        init=init,
        bias_init=bias,
    )
    row = {
        "case": name,
        "activation": act,
        "init": init,
        "bias_init": bias,
        "first_layer_grad_init": _first_grad_norm(model, ds.X_train, ds.y_train),
    }
    relu_like = act in RELU_LIKE_CASE
    alive, rate = _activity(model, ds.X_train)
    row["alive_init"] = alive if relu_like else None
    row["active_rate_init"] = rate if relu_like else None
    history = train.fit(
        model,
        (ds.X_train, ds.y_train),
        optimizer="adam",
        lr=0.01,
        epochs=steps,
        batch_size=len(ds.X_train),  # full batch: one step per epoch
        shuffle=False,
        progress=False,
    )
    row.update(
        loss_start=history.loss[0],
        loss_end=history.loss[-1],
        losses=history.loss,
        first_layer_weights=model.layers[0].W.numpy().copy(),
        alive_trained=_activity(model, ds.X_train)[0] if relu_like else None,
        unit_spread=_unit_spread(model),
        one_unit_logit_gap=_one_unit_gap(model, ds.X_test),
        train_accuracy=_accuracy(model, ds.X_train, ds.y_train),
        test_accuracy=_accuracy(model, ds.X_test, ds.y_test),
    )
    return row


RELU_LIKE_CASE = ("relu", "leaky_relu")  # "alive" and "active" apply to these only
HIDDEN_KEYS = ("losses", "first_layer_weights")  # kept for the figures, not in results.json


def _plot(rows, n_classes: int):
    fig, axes = plotting.subplots(1, 3, width=5.0, height=4.2)
    ax = axes[0, 0]
    styles = ["-", "--", "-.", ":", (0, (5, 1)), (0, (3, 1, 1, 1))]
    markers = ["o", "s", "^", "v", "D", "x"]
    for k, (r, ls, mk) in enumerate(zip(rows, styles, markers)):
        n = len(r["losses"])
        ax.semilogy(
            r["losses"],
            ls=ls,
            marker=mk,
            ms=4,
            markevery=(k * max(n // 30, 1), max(n // 6, 1)),
            label=f"{r['case']} (test acc {r['test_accuracy']:.2f})",
        )
    ax.axhline(np.log(n_classes), color="k", lw=0.8, alpha=0.6, label=f"chance: ln {n_classes}")
    ax.set(
        xlabel="training step (full batch Adam)",
        ylabel="training loss (nats)",
        title="zero weights and biases of -8 stall near ln 10;\nrandom starts and leaky ReLU learn",
    )
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7)
    by = {r["case"]: r for r in rows}
    for ax, case in zip(axes[0, 1:], ("logistic, all zero", "logistic, random (Glorot)")):
        W = by[case]["first_layer_weights"]
        im = ax.imshow(W, aspect="auto", cmap="RdBu_r", vmin=-abs(W).max(), vmax=abs(W).max())
        ax.set(
            xlabel="input pixel j",
            ylabel="hidden unit i (row of W^(1))",
            title=f"{case}: W^(1) after training\n"
            + ("every row identical" if case.endswith("zero") else "rows differ"),
        )
        fig.colorbar(im, ax=ax, fraction=0.046)
    return fig


CASES = [  # name, activation, weight initialiser (nn.init), initial biases
    ("logistic, random (Glorot)", "logistic", "xavier_normal", 0.0),
    ("logistic, all zero", "logistic", "zeros", 0.0),
    ("tanh, all zero", "tanh", "zeros", 0.0),
    ("relu, random (He), bias 0", "relu", "he_normal", 0.0),
    ("relu, random (He), bias -8", "relu", "he_normal", -8.0),
    ("leaky_relu, random (He), bias -8", "leaky_relu", "he_normal", -8.0),
]
COLUMNS = {
    "first_layer_grad_init": "|dL/dW1| at init",
    "alive_init": "alive at init",
    "active_rate_init": "active rate at init",
    "alive_trained": "alive after",
    "unit_spread": "unit spread after",
    "one_unit_logit_gap": "max |logits - one-unit logits|",
    "loss_start": "loss start",
    "loss_end": "loss end",
    "train_accuracy": "train accuracy",
    "test_accuracy": "test accuracy",
}


def _report(ctx: Context, rows: list[dict], steps: int, chance: float, n_classes: int) -> None:
    rep = ctx.report
    rep.heading("What was run")
    rep.paragraph(
        "Both effects tested here, the symmetry of all-zero weights and ReLUs that never fire, "
        "go beyond the study note: it gives the training rule, and these are two ways in "
        "which an initialisation can defeat it."
    )
    rep.paragraph(
        f"MLPs 64-{'-'.join(map(str, HIDDEN))}-10 on the digits data (standardised), trained "
        f"with full-batch Adam (lr 0.01) for {steps} steps from six initialisations "
        "(`chainrule.nn.MLP` with `init` and `bias_init`; a bias of -8 is set in every layer, "
        "and in the output layer it shifts all logits alike, which changes no probability). "
        "'Unit spread' is the largest difference, after training, between any hidden unit's "
        "parameters (incoming weights, bias, outgoing weights) and those of the first unit of "
        "its layer (0 means all units of a layer are identical). 'One-unit logits' are those of "
        "a 64-1-1-10 network built from the trained weights: the first unit of each hidden "
        "layer, with the outgoing weights of a layer's units summed. 'Alive' is the share of "
        "hidden units positive on at least one training example, 'active rate' the share of "
        "(unit, example) pairs with a positive pre-activation."
    )
    rep.heading("Measurements")
    rep.table(
        ["case", *COLUMNS.values()],
        [[r["case"], *["n/a" if r[k] is None else r[k] for k in COLUMNS]] for r in rows],
    )
    rep.paragraph(
        "n/a: 'alive' and 'active' describe ReLU units (a logistic or tanh unit is never "
        "switched off); the one-unit comparison is the test of the symmetry that only the "
        "all-zero starts have (for a random start it shows how far apart the units are)."
    )
    rep.paragraph(f"Chance level (the most frequent test class): {fmt(chance)}.")
    ctx.plot(
        lambda: _plot(rows, n_classes),
        "training_curves.png",
        "Left: training loss against step for each initialisation (log scale; the line is "
        "the loss of a uniform guess). Middle and right: the first layer's weights after "
        "training, one row per hidden unit, from all-zero and from random weights.",
    )


def _symmetry_text(z: dict, rnd: dict, tz: dict, chance: float) -> str:
    above = z["test_accuracy"] > chance + 0.02
    return (
        f"With all-zero weights the hidden units of each layer stayed exactly identical "
        f"(unit spread {fmt(z['unit_spread'])}), so each layer acted as one unit: a network with "
        f"one unit per hidden layer built from the trained weights gave the same logits (largest "
        f"difference {fmt(z['one_unit_logit_gap'])}). "
        + ("One logistic unit per layer still learns something, so " if above else "")
        + f"test accuracy reached {fmt(z['test_accuracy'])}: "
        + ("above" if above else "near")
        + f" chance ({fmt(chance)}) but far below the {fmt(rnd['test_accuracy'])} of a random "
        "start. With tanh, whose value at 0 is 0, the zero-initialised hidden units output 0, "
        "no gradient reaches any weight (only the output biases learn), and accuracy stayed at "
        f"{fmt(tz['test_accuracy'])}."
    )


def run(ctx: Context) -> None:
    ds = data.load("digits", seed=ctx.seed)
    steps = 100 if ctx.quick else 400
    rows = [_case(ctx, ds, *c, steps) for c in CASES]
    by = {r["case"]: r for r in rows}
    chance = float(np.bincount(ds.y_test).max() / len(ds.y_test))
    z, rnd, tz = by["logistic, all zero"], by["logistic, random (Glorot)"], by["tanh, all zero"]
    dead, leaky = by["relu, random (He), bias -8"], by["leaky_relu, random (He), bias -8"]
    healthy = by["relu, random (He), bias 0"]
    ctx.results.update(
        rows=[{k: v for k, v in r.items() if k not in HIDDEN_KEYS} for r in rows],
        steps=steps,
        hidden=HIDDEN,
        chance_accuracy=chance,
        zero_init_unit_spread=z["unit_spread"],
        zero_init_one_unit_logit_gap=z["one_unit_logit_gap"],
        zero_init_test_accuracy=z["test_accuracy"],
        random_init_test_accuracy=rnd["test_accuracy"],
        dead_relu_test_accuracy=dead["test_accuracy"],
        leaky_test_accuracy=leaky["test_accuracy"],
    )
    _report(ctx, rows, steps, chance, int(ds.y_train.max()) + 1)
    ctx.report.heading("What it shows")
    held = (
        z["unit_spread"] == 0.0
        and z["one_unit_logit_gap"] < 1e-9
        and z["test_accuracy"] <= rnd["test_accuracy"] - 0.5
        and dead["active_rate_init"] < 0.01 < healthy["active_rate_init"]
        and dead["first_layer_grad_init"] < 0.05 * healthy["first_layer_grad_init"]
        and dead["test_accuracy"] < chance + 0.1
        and leaky["test_accuracy"] > dead["test_accuracy"] + 0.3
    )
    ctx.verdict(
        held,
        _symmetry_text(z, rnd, tz, chance)
        + f" With hidden biases of -8, ReLU's first-layer gradient was "
        f"{fmt(dead['first_layer_grad_init'])} (bias 0: {fmt(healthy['first_layer_grad_init'])}) "
        f"and accuracy {fmt(dead['test_accuracy'])}, while leaky ReLU reached "
        f"{fmt(leaky['test_accuracy'])}.",
    )
