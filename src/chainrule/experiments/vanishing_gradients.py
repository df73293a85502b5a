"""Vanishing gradients: per-layer gradient norms in deep MLPs, at initialisation and after training.

The backward recursion ``delta^(l) = f'(z^(l)) * (W^(l+1))^T delta^(l+1)``
multiplies by ``f'(z)`` at every layer. The logistic's derivative is at most
0.25, so with weights that keep ``||W^T delta||`` near ``||delta||`` the error
shrinks by a factor of at most about 0.25 per layer; ReLU's derivative is 1
where a unit is active. The experiment measures ``||dL/dW^(l)||_F`` for every
layer of networks of several depths on the digits data, and ``f'(z)`` itself,
by differentiating the activation with :func:`chainrule.grad`.
"""

from __future__ import annotations

import numpy as np

import chainrule as cr
from chainrule import data, nn, train
from chainrule.experiments import plotting
from chainrule.experiments.runner import Context

ACTS = ("logistic", "tanh", "relu", "leaky_relu")
WIDTH = 32


def derivative(act: str, z: np.ndarray) -> np.ndarray:
    """``f'(z)`` elementwise for the activation named ``act``, by reverse-mode autodiff.

    ``f`` acts elementwise, so the gradient of ``sum(f(z))`` is ``f'(z)``.

    Examples
    --------
    >>> import numpy as np
    >>> derivative("tanh", np.array([0.0, 1.0])).round(6).tolist()
    [1.0, 0.419974]
    """
    f = nn.F.get_activation(act)
    return cr.grad(lambda t: f(t).sum())(z).numpy()


def _layer_norms(
    model: nn.MLP, X: np.ndarray, y: np.ndarray
) -> tuple[list[float], list[float], float]:
    """Per-layer gradient norms, mean f'(z) per hidden layer, and the largest f'(z)."""
    model.zero_grad()
    zs = model.pre_activations(X)
    nn.F.softmax_cross_entropy(zs[-1], y).backward()
    grads = [layer.W.grad for layer in model.layers]
    norms = [0.0 if g is None else float(np.linalg.norm(g.numpy())) for g in grads]
    model.zero_grad()
    derivs = [derivative(model.activation, z.numpy()) for z in zs[:-1]]
    return norms, [float(d.mean()) for d in derivs], float(max(d.max() for d in derivs))


def _decay(norms: list[float]) -> float:
    """Geometric-mean factor applied to the gradient norm per layer, towards the input."""
    hidden = norms[:-1]  # the output layer's gradient does not pass through f'
    if len(hidden) < 2 or min(hidden) <= 0:
        return 0.0
    return float((hidden[0] / hidden[-1]) ** (1.0 / (len(hidden) - 1)))


def _measure(ctx: Context, depths: list[int], steps: int) -> list[dict]:
    ds = data.load("digits", seed=ctx.seed)
    X, y = ds.X_train[:256], ds.y_train[:256]
    rows = []
    for act in ACTS:
        for depth in depths:
            sizes = [X.shape[1]] + [WIDTH] * (depth - 1) + [ds.n_classes]
            model = nn.MLP(
                sizes,
                activation=act,
                dtype=np.float64,
                rng=ctx.rng(f"{act}-{depth}"),
                init="he_normal" if act in nn.init.RELU_LIKE else "xavier_normal",
            )
            n0, fprime, fmax = _layer_norms(model, X, y)
            losses = train.fit(
                model,
                (X, y),
                optimizer="adam",
                lr=1e-3,
                epochs=steps,
                batch_size=len(X),  # full batch: one step per epoch
                shuffle=False,
                progress=False,
            ).loss
            n1, _, _ = _layer_norms(model, X, y)
            rows.append(
                {
                    "activation": act,
                    "depth": depth,
                    "norms_init": n0,
                    "norms_trained": n1,
                    "first_layer_init": n0[0],
                    "first_layer_trained": n1[0],
                    "decay_init": _decay(n0),
                    "decay_trained": _decay(n1),
                    "mean_fprime": fprime,
                    "max_fprime": fmax,
                    "loss_start": losses[0],
                    "loss_end": losses[-1],
                }
            )
    return rows


def _plot(rows: list[dict], show_depth: int):
    fig, axes = plotting.subplots(1, 3, width=4.6, height=3.8)
    colors = dict(zip(ACTS, ("tab:red", "tab:orange", "tab:blue", "tab:green")))
    for r in rows:
        c = colors[r["activation"]]
        if r["depth"] == show_depth:
            layers = np.arange(1, show_depth + 1)
            axes[0, 0].semilogy(
                layers, r["norms_init"], "o-", ms=3, color=c, label=f"{r['activation']} (init)"
            )
            axes[0, 0].semilogy(
                layers, r["norms_trained"], "--", color=c, label=f"{r['activation']} (trained)"
            )
    for act in ACTS:
        sub = [r for r in rows if r["activation"] == act]
        d = [r["depth"] for r in sub]
        axes[0, 1].semilogy(
            d, [r["first_layer_init"] for r in sub], "o-", color=colors[act], label=act
        )
        axes[0, 2].plot(d, [r["decay_init"] for r in sub], "o-", color=colors[act], label=act)
    axes[0, 2].axhline(0.25, color="k", ls=":", label="0.25 (logistic f' bound)")
    axes[0, 0].set(
        xlabel="layer l (1 = first)",
        ylabel="||dL/dW^(l)||_F",
        title=f"per-layer gradient norm, depth {show_depth}",
    )
    axes[0, 1].set(
        xlabel="depth (weight layers)",
        ylabel="||dL/dW^(1)||_F at initialisation",
        title="first-layer gradient against depth",
    )
    axes[0, 2].set(
        xlabel="depth (weight layers)",
        ylabel="gradient factor per layer",
        title="gradient factor per layer (towards input)",
        yscale="log",
    )
    for ax in axes[0]:
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    return fig


def run(ctx: Context) -> None:
    depths = [5, 20] if ctx.quick else [5, 10, 20, 30]
    steps = 20 if ctx.quick else 60
    rows = _measure(ctx, depths, steps)
    ctx.results.update(rows=rows, depths=depths, width=WIDTH, train_steps=steps)
    by = {(r["activation"], r["depth"]): r for r in rows}
    ref = 20
    ratio = by[("relu", ref)]["first_layer_init"] / by[("logistic", ref)]["first_layer_init"]
    logistic_max = max(r["max_fprime"] for r in rows if r["activation"] == "logistic")
    ctx.results.update(
        relu_over_logistic_first_layer_depth20=ratio,
        logistic_max_derivative=logistic_max,
        logistic_decay_depth20=by[("logistic", ref)]["decay_init"],
        relu_decay_depth20=by[("relu", ref)]["decay_init"],
    )
    r = ctx.report
    r.heading("What was run")
    r.paragraph(
        f"MLPs of width {WIDTH} and depths {depths} (number of weight layers) on 256 digits "
        "images, softmax cross-entropy loss, Glorot-normal initial weights for logistic and "
        "tanh and He-normal for relu and leaky_relu, zero biases. `loss.backward()` gave "
        "||dL/dW^(l)||_F for every layer at initialisation and again after "
        f"{steps} full-batch Adam steps (lr 1e-3). The gradient factor per layer is the "
        "geometric mean of ||dL/dW^(l)|| / ||dL/dW^(l+1)|| over the hidden layers "
        "(below 1: gradients get smaller towards the input; the chapter's bound for the "
        "logistic is f'(z) <= 0.25)."
    )
    r.heading("Measurements")
    r.table(
        [
            "activation",
            "depth",
            "first-layer norm (init)",
            "last-layer norm (init)",
            "factor/layer (init)",
            "first-layer norm (trained)",
            "factor/layer (trained)",
            "mean f'(z)",
            "max f'(z)",
            "loss start",
            "loss end",
        ],
        [
            [
                x["activation"],
                x["depth"],
                x["first_layer_init"],
                x["norms_init"][-1],
                x["decay_init"],
                x["first_layer_trained"],
                x["decay_trained"],
                float(np.mean(x["mean_fprime"])),
                x["max_fprime"],
                x["loss_start"],
                x["loss_end"],
            ]
            for x in rows
        ],
    )
    ctx.plot(
        lambda: _plot(rows, ref),
        "gradient_norms.png",
        f"Left: ||dL/dW^(l)||_F per layer at depth {ref}, at initialisation (solid) and "
        "after training (dashed). Middle: the first layer's gradient norm against depth. "
        "Right: the factor by which the gradient norm is multiplied per layer going "
        "towards the input; the dotted line is the logistic's bound 0.25.",
    )
    r.heading("What it shows")
    held = ratio > 100 and logistic_max <= 0.25 and by[("logistic", ref)]["decay_init"] < 0.5
    ctx.verdict(
        held,
        f"at depth {ref} relu's first-layer gradient norm is {ratio:.3g} times the logistic's; "
        f"the logistic's gradient norm is multiplied by {by[('logistic', ref)]['decay_init']:.3g} "
        f"per layer towards the input (relu by {by[('relu', ref)]['decay_init']:.3g}), "
        "and its derivative never "
        f"exceeded {logistic_max:.4f} (bound 0.25).",
    )
