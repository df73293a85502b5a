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
        "alive_init": _activity(model, ds.X_train)[0],
        "active_rate_init": _activity(model, ds.X_train)[1],
    }
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
        alive_trained=_activity(model, ds.X_train)[0],
        unit_spread=_unit_spread(model),
        one_unit_logit_gap=_one_unit_gap(model, ds.X_test),
        train_accuracy=_accuracy(model, ds.X_train, ds.y_train),
        test_accuracy=_accuracy(model, ds.X_test, ds.y_test),
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


def _report(ctx: Context, rows: list[dict], steps: int, chance: float) -> None:
    rep = ctx.report
    rep.heading("What was run")
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
    rep.table(["case", *COLUMNS.values()], [[r["case"], *[r[k] for k in COLUMNS]] for r in rows])
    rep.paragraph(f"Chance level (the most frequent test class): {fmt(chance)}.")
    ctx.plot(
        lambda: _plot(rows),
        "training_curves.png",
        "Training loss against step for each initialisation (log scale).",
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
        rows=[{k: v for k, v in r.items() if k != "losses"} for r in rows],
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
    _report(ctx, rows, steps, chance)
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
