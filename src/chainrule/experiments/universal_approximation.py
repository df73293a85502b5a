"""Universal approximation: one hidden layer of growing width fitted to 1-D functions.

For every activation and target function, networks of widths 1, 2, 4, ...
are trained together as one block-diagonal model: each width has its own
hidden units and output, the loss is the sum of the per-network mean squared
errors, so each network receives exactly its own gradient and Adam (an
element-wise method) updates it exactly as if it were trained alone. The
test error on a dense grid is then read off per width.
"""

from __future__ import annotations

import numpy as np

import chainrule as cr
from chainrule import nn, optim
from chainrule.data import regression_function
from chainrule.experiments import plotting
from chainrule.experiments.runner import Context

ACTS = ("logistic", "tanh", "relu")
FUNCTIONS = ("sine", "abs", "step", "bumps")
CONTINUOUS = ("sine", "abs", "bumps")  # the theorem's hypothesis; the step is the counter-case
LR = 0.02


class Block(nn.Module):
    """Several one-hidden-layer networks ``x -> v^T f(w x + b) + c`` side by side.

    The hidden layer of all of them is one :func:`chainrule.nn.functional.linear`
    map from 1 input to ``sum(widths)`` units; a constant 0/1 matrix then adds up
    each network's own units into its own output column, so no network sees
    another's units.

    Examples
    --------
    >>> import numpy as np
    >>> block = Block([1, 2], "tanh", np.random.default_rng(0))
    >>> block(np.zeros(5)).shape
    (5, 2)
    """

    def __init__(self, widths: list[int], act: str, rng: np.random.Generator) -> None:
        super().__init__()
        total = sum(widths)
        w = rng.normal(0.0, 4.0, total)
        centres = rng.uniform(-1.0, 1.0, total)  # where each unit's transition sits
        self.W = nn.Parameter(w[:, None])  # (units, 1 input)
        self.b = nn.Parameter(-w * centres)
        self.v = nn.Parameter(rng.normal(0.0, 0.1, total))
        self.c = nn.Parameter(np.zeros(len(widths)))
        self.groups = np.repeat(np.eye(len(widths)), widths, axis=0).T  # (n_widths, units)
        self.act = nn.F.get_activation(act)

    def forward(self, u: np.ndarray) -> cr.Tensor:
        a = self.act(nn.F.linear(u[:, None], self.W, self.b))
        return nn.F.linear(a * self.v, self.groups, self.c)  # (N, n_widths): one per width


def _fit(widths, act, fname, rng, steps, n_train):
    f, (lo, hi) = regression_function(fname)
    half = (hi - lo) / 2
    x_train = rng.uniform(lo, hi, n_train)
    x_test = np.linspace(lo, hi, 1001)
    y_train = f(x_train)[:, None]
    targets = np.repeat(y_train, len(widths), axis=1)  # the same target for every width
    net = Block(widths, act, rng)
    opt = optim.Adam(net.parameters(), lr=LR)
    for _ in range(steps):
        opt.zero_grad()
        # the sum over widths of each network's mean squared error
        loss = nn.F.mse_loss(net(x_train / half), targets) * len(widths)
        loss.backward()
        opt.step()
    with cr.no_grad():
        pred_test = net(x_test / half).numpy()
        pred_train = net(x_train / half).numpy()
    rmse = np.sqrt(((pred_test - f(x_test)[:, None]) ** 2).mean(axis=0))
    rmse_train = np.sqrt(((pred_train - y_train) ** 2).mean(axis=0))
    return rmse, rmse_train, x_test, pred_test


def _plot_errors(widths, errors):
    fig, axes = plotting.subplots(1, len(FUNCTIONS), width=3.6, height=3.4)
    for j, fname in enumerate(FUNCTIONS):
        ax = axes[0, j]
        for act in ACTS:
            ax.loglog(widths, errors[act][fname], "o-", label=act)
        ax.set(xlabel="hidden units (width)", ylabel="test RMSE (units of y)", title=fname)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    return fig


def _plot_fits(widths, fits, act):
    fig, axes = plotting.subplots(1, len(FUNCTIONS), width=3.6, height=3.2)
    show = sorted({0, len(widths) // 2, len(widths) - 1})
    for j, fname in enumerate(FUNCTIONS):
        ax = axes[0, j]
        x, pred = fits[(act, fname)]
        f, _ = regression_function(fname)
        ax.plot(x, f(x), "k-", lw=2.5, alpha=0.35, label="target")
        for k in show:
            ax.plot(x, pred[:, k], lw=1.2, label=f"width {widths[k]}")
        ax.set(xlabel="x", ylabel="y", title=f"{fname} ({act})")
        ax.legend(fontsize=7)
    return fig


def run(ctx: Context) -> None:
    widths = [2**k for k in range(6 if ctx.quick else 9)]
    steps = 600 if ctx.quick else 1000
    n_train = 128
    errors: dict = {a: {} for a in ACTS}
    train_errors: dict = {a: {} for a in ACTS}
    fits = {}
    for act in ACTS:
        for fname in FUNCTIONS:
            rmse, rmse_tr, x, pred = _fit(
                widths, act, fname, ctx.rng(f"{act}-{fname}"), steps, n_train
            )
            errors[act][fname], train_errors[act][fname] = rmse, rmse_tr
            fits[(act, fname)] = (x, pred)
    ratio = {a: {f: float(errors[a][f][0] / errors[a][f][-1]) for f in FUNCTIONS} for a in ACTS}
    slopes = {
        a: {f: float(np.polyfit(np.log10(widths), np.log10(errors[a][f]), 1)[0]) for f in FUNCTIONS}
        for a in ACTS
    }
    ctx.results.update(
        widths=widths,
        steps=steps,
        n_train=n_train,
        test_rmse=errors,
        train_rmse=train_errors,
        first_over_last=ratio,
        loglog_slope=slopes,
    )
    r = ctx.report
    r.heading("What was run")
    r.paragraph(
        f"Networks x -> v^T f(w x + b) + c with one hidden layer of width {widths} and "
        f"activation f in {list(ACTS)} were fitted by Adam (lr {LR}, {steps} full-batch steps) "
        f"to {n_train} noise-free samples of each target ({', '.join(FUNCTIONS)}; "
        "`chainrule.data.regression_function`), with x rescaled to [-1, 1]. The test error is "
        "the root-mean-square error on 1001 evenly spaced points of the interval."
    )
    r.heading("Test RMSE against width")
    r.table(
        ["activation", "function", *[f"width {w}" for w in widths], "width 1 / widest"],
        [[a, f, *errors[a][f], ratio[a][f]] for a in ACTS for f in FUNCTIONS],
    )
    ctx.plot(
        lambda: _plot_errors(widths, errors),
        "error_vs_width.png",
        "Test RMSE against the number of hidden units, log-log, per target function.",
    )
    for act in ACTS:
        ctx.plot(
            lambda act=act: _plot_fits(widths, fits, act),
            f"fits_{act}.png",
            f"Fits of the {act} networks of three widths against the target.",
        )
    r.heading("What it shows")
    falls = [ratio[a][f] > 3 for a in ACTS for f in CONTINUOUS]
    worst = min((ratio[a][f], a, f) for a in ACTS for f in CONTINUOUS)
    step = {a: ratio[a]["step"] for a in ACTS}
    ctx.results.update(continuous_functions=list(CONTINUOUS), min_ratio_continuous=worst[0])
    r.paragraph(
        "The step is discontinuous, outside the theorem's hypothesis: a continuous network "
        "can only make its jump steeper, and the error near the jump shrinks slowly "
        "(width 1 / widest error ratio for the step: "
        + ", ".join(f"{a} {v:.3g}" for a, v in step.items())
        + ")."
    )
    ctx.verdict(
        all(falls),
        f"on the continuous targets the test error of the widest network ({widths[-1]} units) "
        f"is below width 1's by a factor of more than 3 in {sum(falls)}/{len(falls)} "
        f"activation-function pairs (smallest factor {worst[0]:.3g}, {worst[1]} on {worst[2]}; "
        f"median {np.median([ratio[a][f] for a in ACTS for f in CONTINUOUS]):.3g}).",
    )
