"""Limits of fully-connected networks: parameter counts and translation invariance.

A fully-connected first layer gives every neuron one weight per input
value: 30,000 for a 100 x 100 x 3 image. And it has no notion of
neighbouring pixels, so an image shifted by a pixel or two is, to it, a
different input. This experiment tabulates the counts and measures the
accuracy of an MLP on shifted digits, before and after training with
shifted copies (data augmentation).
"""

from __future__ import annotations

import numpy as np

from chainrule import data, nn, optim, train
from chainrule.experiments import plotting
from chainrule.experiments.report import fmt
from chainrule.experiments.runner import Context

IMAGES = [  # name, (H, W, C), training images in the usual dataset
    ("digits (sklearn)", (8, 8, 1), 1797),
    ("MNIST / Fashion-MNIST", (28, 28, 1), 60000),
    ("CIFAR-10", (32, 32, 3), 50000),
    ("the chapter's 100 x 100 x 3", (100, 100, 3), None),
    ("ImageNet (224 x 224 x 3)", (224, 224, 3), 1281167),
]
HIDDEN = 64
BATCH = 128
SHIFTS = (1, 2)
DIRECTIONS = ((1, 0), (-1, 0), (0, 1), (0, -1))


def _param_table() -> list[dict]:
    rows = []
    for name, (h, w, c), n_train in IMAGES:
        per_neuron = h * w * c
        rows.append(
            {
                "images": name,
                "shape": [h, w, c],
                "weights_per_neuron": per_neuron,
                "first_layer_100": 100 * (per_neuron + 1),
                "first_layer_1000": 1000 * (per_neuron + 1),
                "training_images": n_train,
            }
        )
    return rows


def _accuracy(model: nn.MLP, X: np.ndarray, y: np.ndarray) -> float:
    return train.accuracy(y, model.predict(X))


def _shifted_accuracy(model: nn.MLP, X: np.ndarray, y: np.ndarray, shape, k: int) -> float:
    """Mean accuracy over the four directions of a shift by ``k`` pixels."""
    accs = [
        _accuracy(model, data.shift_images(X, shape, dx * k, dy * k), y) for dx, dy in DIRECTIONS
    ]
    return float(np.mean(accs))


def _train(ctx: Context, ds: data.Dataset, augment: bool, steps: int) -> dict:
    shape = ds.image_shape
    if shape is None or ds.n_classes is None:
        raise ValueError(f"fnn-limits: the {ds.name} data are not labelled images; use digits")
    model = nn.MLP(
        [ds.X_train.shape[1], HIDDEN, ds.n_classes],
        activation="relu",
        dtype=np.float64,
        rng=ctx.rng("init"),
        init="he_normal",
    )
    opt = optim.Adam(model.parameters(), lr=0.01)
    X, y = ds.X_train, ds.y_train
    rng = ctx.rng("aug" if augment else "plain")
    for _ in range(steps):
        # a fresh random batch every step; with augmentation, every image of it is moved by
        # its own random shift of up to 2 pixels (no rotation, no scaling)
        idx = rng.choice(len(X), size=min(BATCH, len(X)), replace=False)
        xb = X[idx]
        if augment:
            xb = data.augment_images(
                xb, shape, rng, max_shift=2, max_rotation=0.0, scale_range=(1.0, 1.0)
            )
        opt.zero_grad()
        nn.F.softmax_cross_entropy(model(xb), y[idx]).backward()
        opt.step()
    res = {"test_accuracy": _accuracy(model, ds.X_test, ds.y_test)}
    for k in SHIFTS:
        res[f"shift{k}_accuracy"] = _shifted_accuracy(model, ds.X_test, ds.y_test, shape, k)
    return res


def _plot(plain, aug):
    fig, axes = plotting.subplots(1, 1, width=5.5, height=4.0)
    ax = axes[0, 0]
    xs = [0, *SHIFTS]
    keys = ["test_accuracy", *[f"shift{k}_accuracy" for k in SHIFTS]]
    ax.plot(xs, [plain[k] for k in keys], "o-", label="trained on original images")
    ax.plot(xs, [aug[k] for k in keys], "s-", label="trained with random shifts (augmentation)")
    ax.set(
        xlabel="test-image shift (pixels, mean over 4 directions)",
        ylabel="test accuracy (fraction)",
        title="MLP on shifted 8 x 8 digits",
        ylim=(0, 1),
    )
    ax.set_xticks(xs)
    ax.grid(True, alpha=0.3)
    ax.legend()
    return fig


def run(ctx: Context) -> None:
    params = _param_table()
    # raw [0, 1] pixels: shifting in a 0 border is then shifting in background
    ds = data.load("digits", seed=ctx.seed, standardize=False)
    steps = 300 if ctx.quick else 1500
    plain = _train(ctx, ds, augment=False, steps=steps)
    aug = _train(ctx, ds, augment=True, steps=steps)
    drop = {k: plain["test_accuracy"] - plain[f"shift{k}_accuracy"] for k in SHIFTS}
    recovery = {k: aug[f"shift{k}_accuracy"] - plain[f"shift{k}_accuracy"] for k in SHIFTS}
    ctx.results.update(
        parameter_counts=params,
        plain=plain,
        augmented=aug,
        steps=steps,
        accuracy_drop=drop,
        augmentation_gain=recovery,
        augmentation_unshifted_change=aug["test_accuracy"] - plain["test_accuracy"],
        hidden=HIDDEN,
    )
    r = ctx.report
    r.heading("Too many parameters")
    r.table(
        [
            "images",
            "H x W x C",
            "weights per first-layer neuron",
            "first layer, 100 units",
            "first layer, 1000 units",
            "training images",
        ],
        [
            [
                p["images"],
                "x".join(map(str, p["shape"])),
                p["weights_per_neuron"],
                p["first_layer_100"],
                p["first_layer_1000"],
                p["training_images"] if p["training_images"] else "-",
            ]
            for p in params
        ],
    )
    r.paragraph(
        "A first layer of 1000 units on 224 x 224 x 3 images has over 150 million weights, "
        "about 100 per training image of ImageNet; on the chapter's 100 x 100 x 3 images each "
        "neuron alone has 30,000."
    )
    r.heading("No translation invariance")
    r.paragraph(
        f"A 64-{HIDDEN}-10 ReLU MLP was trained on the digits data (raw pixels in [0, 1]) with "
        f"Adam (lr 0.01, {steps} mini-batches of {BATCH}, each drawn at random), once on the "
        "original images and once on images randomly shifted by up to 2 pixels in each "
        "direction at every step (`chainrule.data.augment_images`, bilinear, no rotation). "
        "Both were tested on the test images shifted by 1 and 2 pixels "
        "(`chainrule.data.shift_images`; mean over right, left, down and up)."
    )
    r.table(
        ["training", "unshifted", *[f"shifted {k} px" for k in SHIFTS]],
        [
            [
                "original images",
                plain["test_accuracy"],
                *[plain[f"shift{k}_accuracy"] for k in SHIFTS],
            ],
            [
                "with augmentation",
                aug["test_accuracy"],
                *[aug[f"shift{k}_accuracy"] for k in SHIFTS],
            ],
        ],
    )
    ctx.plot(
        lambda: _plot(plain, aug),
        "shift_accuracy.png",
        "Test accuracy against the shift of the test images, without and with augmentation.",
    )
    r.heading("What it shows")
    held = drop[1] > 0.1 and recovery[1] > 0.05 and recovery[2] > 0.05
    ctx.verdict(held, _verdict_text(plain, aug))


def points(x: float) -> str:
    """An accuracy difference (a fraction) in accuracy points: 0.398 -> '39.8 points'."""
    return f"{100 * x:.1f} points"


def _verdict_text(plain: dict, aug: dict) -> str:
    base = plain["test_accuracy"]
    text = (
        f"shifting the test digits lowered the plain MLP's accuracy from {fmt(base)} to "
        f"{fmt(plain['shift1_accuracy'])} at 1 pixel (down "
        f"{points(base - plain['shift1_accuracy'])}) and to {fmt(plain['shift2_accuracy'])} at "
        f"2 pixels (down {points(base - plain['shift2_accuracy'])}). Training with shifted "
        f"copies raised the accuracy on shifted digits by "
        f"{points(aug['shift1_accuracy'] - plain['shift1_accuracy'])} at 1 pixel (to "
        f"{fmt(aug['shift1_accuracy'])}) and by "
        f"{points(aug['shift2_accuracy'] - plain['shift2_accuracy'])} at 2 pixels (to "
        f"{fmt(aug['shift2_accuracy'])})."
    )
    change = aug["test_accuracy"] - base
    if change < 0:
        text += (
            f" It cost accuracy on the unshifted digits: {fmt(aug['test_accuracy'])} against "
            f"{fmt(base)} without augmentation (down {points(-change)})."
        )
    else:
        text += (
            f" Accuracy on the unshifted digits did not fall: {fmt(aug['test_accuracy'])} "
            f"against {fmt(base)} without augmentation."
        )
    return text
