"""A two-layer tanh MLP and a momentum-SGD step written with chainrule's core ops.

The distributed test scripts train it so they need only the core, the mini-batches of
chainrule.data and chainrule.distributed, not the nn/optim/train packages.
"""

from __future__ import annotations

import numpy as np

import chainrule as cr
from chainrule.data import MiniBatches
from chainrule.distributed import Context


def init_params(sizes: list[int], seed: int, dtype: type = np.float64) -> list[cr.Tensor]:
    rng = np.random.default_rng(seed)
    params = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=True):
        W = rng.normal(0.0, 1.0 / np.sqrt(n_in), size=(n_out, n_in)).astype(dtype)
        b = np.zeros(n_out, dtype)
        params += [cr.tensor(W, requires_grad=True), cr.tensor(b, requires_grad=True)]
    return params


def forward(params: list[cr.Tensor], X: np.ndarray) -> cr.Tensor:
    a = cr.tensor(X)
    for i in range(0, len(params), 2):
        W, b = params[i], params[i + 1]
        a = a @ W.T + b
        if i + 2 < len(params):
            a = cr.tanh(a)
    return a


def mean_cross_entropy(logits: cr.Tensor, y: np.ndarray, n_classes: int) -> cr.Tensor:
    onehot = np.eye(n_classes, dtype=logits.dtype)[y]
    return -(cr.log_softmax(logits, axis=-1) * onehot).sum() / len(y)


def train(
    ctx: Context,
    params: list[cr.Tensor],
    X: np.ndarray,
    y: np.ndarray,
    *,
    batch_size: int,
    steps: int,
    lr: float,
    momentum: float = 0.9,
    seed: int = 0,
) -> tuple[list[cr.Tensor], list[tuple[float, float]]]:
    """``steps`` synchronous SGD steps on global batches of ``batch_size`` split over ctx.

    Returns the parameters and, per step, the summed loss and sample count over ranks.
    """
    n_classes = int(y.max()) + 1
    velocity = [np.zeros(p.shape, p.dtype) for p in params]
    batches = MiniBatches(X, y, batch_size, rank=ctx.rank, size=ctx.size, seed=seed)
    step, epoch, sums = 0, 0, []
    while step < steps:
        for part in batches.epoch(epoch):
            if step == steps:
                break
            for p in params:
                p.grad = None
            loss_sum, idx = 0.0, part.indices
            if len(idx):  # a rank may own no sample of a tiny last batch
                loss = mean_cross_entropy(forward(params, X[idx]), y[idx], n_classes)
                loss.backward()
                loss_sum = loss.item() * len(idx)
            sums.append(tuple(ctx.average_gradients_(params, part.weight, (loss_sum, len(idx)))))
            with cr.no_grad():
                for p, v in zip(params, velocity, strict=True):
                    v *= momentum
                    v += np.asarray(p.grad)
                    p -= lr * v
            step += 1
        epoch += 1
    return params, sums


def accuracy(params: list[cr.Tensor], X: np.ndarray, y: np.ndarray) -> float:
    return float((np.asarray(forward(params, X)).argmax(axis=1) == y).mean())
