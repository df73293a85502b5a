"""Beyond TensorFlow Playground: the gradient check and the one-sample backprop."""

from __future__ import annotations

from typing import Any

import numpy as np

import chainrule as cr
from chainrule import numeric
from chainrule.nn.textbook import ACTIVATION_DERIVATIVES
from chainrule.playground import datasets
from chainrule.playground.config import FieldError
from chainrule.playground.network import data_loss, forward, penalty
from chainrule.playground.session import Session

#: training points used by the gradient check (bounded work per request)
CHECK_POINTS = 64


def _require_finite(s: Session, what: str) -> None:
    """Refuse a diverged network: its NaN/inf weights make every number below meaningless."""
    if not all(np.isfinite(p.numpy()).all() for pair in s.params for p in pair):
        raise FieldError(
            "lr",
            f"{what}: the weights are not finite (training diverged); lower the learning rate "
            f"(now {s.cfg.lr:g}) and press reset",
        )


def _objective(s: Session) -> tuple[Any, np.ndarray]:
    """The training objective as a function of one flat float64 parameter vector."""
    shapes = [(W.shape, b.shape) for W, b in s.params]
    theta = np.concatenate(
        [np.concatenate([W.numpy().ravel(), b.numpy().ravel()]) for W, b in s.params]
    )
    F, Y = s.F_train[:CHECK_POINTS], s.Y_train[:CHECK_POINTS]  # noqa: N806
    cfg, task, skip = s.cfg, s.task, s.skip

    def f(t: Any) -> Any:
        params, k = [], 0
        for ws, bs in shapes:
            nw, nb = int(np.prod(ws)), int(np.prod(bs))
            params.append((cr.reshape(t[k : k + nw], ws), t[k + nw : k + nw + nb]))
            k += nw + nb
        logits, _ = forward(params, F, cfg.activation, skip)
        reg = penalty([W for W, _ in params], cfg.regularization, cfg.reg_rate)
        return data_loss(task, logits, Y) + reg

    return f, theta


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    scale = max(float(np.max(np.abs(a))), float(np.max(np.abs(b))), 1e-300)
    return float(np.max(np.abs(a - b))) / scale


def check_gradients(s: Session) -> dict[str, Any]:
    """The gradient of the objective at the current weights three ways, compared.

    Reverse mode (``cr.grad``), forward mode (``cr.jacfwd``, one JVP per
    parameter) and central differences (``numeric.gradient``), on at most
    :data:`CHECK_POINTS` training points in float64; the errors are normwise
    (``max |a - b| / max(|a|, |b|)``). ``gradcheck`` is chainrule's random-direction
    check (``numeric.gradcheck``, first order).

    Examples
    --------
    >>> r = check_gradients(Session())
    >>> r["rev_vs_central"] < 1e-6, r["gradcheck"]
    (True, True)
    """
    _require_finite(s, "check gradients")
    f, theta = _objective(s)
    rev = np.asarray(cr.grad(f)(theta), dtype=np.float64)
    fwd = np.asarray(cr.jacfwd(f)(theta), dtype=np.float64).reshape(-1)
    central = np.asarray(numeric.gradient(f, theta, method="central"), dtype=np.float64)
    ok = numeric.gradcheck(f, theta, order=1, raise_exception=False, rng=0)
    return {
        "type": "gradcheck",
        "n_parameters": int(theta.size),
        "n_points": int(min(CHECK_POINTS, len(s.F_train))),
        "rev_vs_central": _rel(rev, central),
        "fwd_vs_central": _rel(fwd, central),
        "rev_vs_fwd": _rel(rev, fwd),
        "gradcheck": bool(ok),
    }


def backprop_sample(s: Session, x1: float, x2: float) -> dict[str, Any]:
    """The chapter's backprop for the data point nearest to ``(x1, x2)``, layer by layer.

    Forward: ``z^(l) = W^(l) a^(l-1) + b^(l)``, ``a^(l) = f(z^(l))`` (plus
    ``a^(l-1)`` across a skip). Backward: ``delta^(L) = dL/dz^(L)``, then
    ``delta^(l) = f'(z^(l)) * (W^(l+1)T delta^(l+1) [+ skip term])`` in NumPy,
    beside ``delta^(l)`` from autodiff (the taps) for comparison.

    Examples
    --------
    >>> r = backprop_sample(Session(), 1.0, 2.0)
    >>> len(r["layers"]), r["max_difference"] < 1e-12
    (3, True)
    """
    _require_finite(s, "backprop one sample")
    X = np.vstack([s.X_train, s.X_test])  # noqa: N806
    y = np.concatenate([s.y_train, s.y_test])
    i = int(np.argmin(np.hypot(X[:, 0] - x1, X[:, 1] - x2)))
    point, label = X[i], float(y[i])
    a0 = datasets.features(point[None, :], s.cfg.features)
    taps = [cr.tensor(np.zeros((1, w)), requires_grad=True) for w in s.model.layer_sizes[1:]]
    logits, hidden = forward(s.params, a0, s.cfg.activation, s.skip, taps)
    loss = data_loss(s.task, logits, np.array([[label]]))
    loss.backward()
    autodiff = [np.asarray(t.grad)[0] for t in taps]
    s.opt.zero_grad()
    # the chapter's recursion, in NumPy
    Ws = [W.numpy() for W, _ in s.params]  # noqa: N806
    bs = [b.numpy() for _, b in s.params]
    fn, fprime = ACTIVATION_DERIVATIVES[
        "identity" if s.cfg.activation == "linear" else s.cfg.activation
    ]
    zs, acts, a = [], [a0[0]], a0[0]
    for layer, (W, b) in enumerate(zip(Ws, bs, strict=True)):  # noqa: N806
        z = W @ a + b
        zs.append(z)
        if layer < len(Ws) - 1:
            h = fn(z.copy())
            a = h + a if s.skip[layer] else h
            acts.append(a)
    z_out = zs[-1]
    out = 1 / (1 + np.exp(-z_out)) if s.task == "classification" else z_out
    deltas: list[np.ndarray] = [out - label if s.task == "classification" else 2 * (z_out - label)]
    e_next: np.ndarray | None = None
    for layer in range(len(Ws) - 2, -1, -1):
        e = Ws[layer + 1].T @ deltas[0]
        if s.skip[layer + 1] and e_next is not None:
            e = e + e_next
        d = fprime(zs[layer], acts[layer + 1] - (acts[layer] if s.skip[layer] else 0))
        deltas.insert(0, e if d is None else d * e)
        e_next = e
    rows = [
        {
            "layer": layer + 1,
            "z": zs[layer].tolist(),
            "a": (acts[layer + 1] if layer < len(Ws) - 1 else out).tolist(),
            "delta": deltas[layer].tolist(),
            "delta_autodiff": autodiff[layer].tolist(),
            "skip": bool(s.skip[layer]),
        }
        for layer in range(len(Ws))
    ]
    diff = max(float(np.max(np.abs(r - ad))) for r, ad in zip(deltas, autodiff, strict=True))
    return {
        "type": "backprop",
        "point": point.tolist(),
        "label": label,
        "input": a0[0].tolist(),
        "loss": float(loss.numpy()),
        "layers": rows,
        "max_difference": diff,
    }
