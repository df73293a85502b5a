"""What the fnn-limits experiment measures: parameter counts, and digits on a canvas.

The parameter counts of fully-connected and convolution layers for the usual
image sizes; the 8 x 8 digits placed on a larger canvas and shifted by whole
pixels; fixed random convolution features with local max pooling; the training
loop shared by every model and the accuracy at each test shift. The verdict,
the report and the figure are in :mod:`chainrule.experiments.fnn_limits`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from chainrule import data, nn, optim, train
from chainrule.experiments.runner import Context

IMAGES = [  # name, short name (figure), (H, W, C), training images in the usual dataset
    ("digits (sklearn)", "digits", (8, 8, 1), 1797),
    ("MNIST / Fashion-MNIST", "MNIST", (28, 28, 1), 60000),
    ("CIFAR-10", "CIFAR-10", (32, 32, 3), 50000),
    ("the chapter's 100 x 100 x 3", "chapter", (100, 100, 3), None),
    ("ImageNet (224 x 224 x 3)", "ImageNet", (224, 224, 3), 1281167),
]
CONV_FILTERS = 64  # output channels of the convolution layer in the parameter table
# Published first layers, for the parameter-count formula k * k * C_in * C_out + C_out:
# (name, k, C_in, C_out, output positions, published parameters, published connections, source)
PUBLISHED_CONV = [
    (
        "LeNet-5 C1 (6 maps of 5 x 5 on 32 x 32)",
        5,
        1,
        6,
        28 * 28,
        156,
        122304,
        "LeCun et al., Proc. IEEE 86(11), 1998, Sec. II-B "
        "(C1: 156 trainable parameters, 122,304 connections)",
    ),
]
HIDDEN = 64
BATCH = 128
LR = 0.01
MARGIN = 4  # blank pixels around the 8 x 8 digit: shifts of up to 4 pixels lose no ink
TEST_SHIFTS = (1, 2, 3, 4)
AUG_MAX_SHIFT = 2  # augmentation shows whole-pixel shifts of up to 2 pixels in x and y
N_FILTERS, FILTER_SIZE = 32, 5
POOL = 2  # the convolution features are max-pooled over POOL x POOL windows, stride POOL
DIRECTIONS = ((1, 0), (-1, 0), (0, 1), (0, -1))


def param_table() -> list[dict]:
    """Per image size of ``IMAGES``: the weights of a fully-connected neuron and layer, and
    of 3 x 3 and 5 x 5 convolution filters and layers of ``CONV_FILTERS`` filters."""
    rows = []
    for name, short, (h, w, c), n_train in IMAGES:
        per_neuron = h * w * c
        rows.append(
            {
                "images": name,
                "short": short,
                "shape": [h, w, c],
                "weights_per_neuron": per_neuron,
                "first_layer_100": 100 * (per_neuron + 1),
                "first_layer_1000": 1000 * (per_neuron + 1),
                "conv3_weights_per_filter": 3 * 3 * c,
                "conv5_weights_per_filter": 5 * 5 * c,
                "conv3_layer": conv_parameters(3, c, CONV_FILTERS),
                "conv5_layer": conv_parameters(5, c, CONV_FILTERS),
                "training_images": n_train,
            }
        )
    return rows


def conv_parameters(k: int, c_in: int, c_out: int) -> int:
    """Trainable parameters of a ``k x k`` convolution layer: ``k*k*c_in*c_out + c_out``.

    One ``k x k x c_in`` filter and one bias per output channel, shared by every
    position of the image, so the count does not depend on the image size.

    Examples
    --------
    >>> conv_parameters(3, 3, 64)  # VGG's first layer on RGB images
    1792
    >>> conv_parameters(5, 1, 6)  # LeNet-5's C1
    156
    """
    return k * k * c_in * c_out + c_out


def library_first_layer() -> dict:
    """Build the chapter's network on 100 x 100 x 3 inputs with ``chainrule.nn`` and read
    its first layer's shape (weights per neuron, parameters of the layer)."""
    n_in = 100 * 100 * 3
    model = nn.MLP([n_in, 100, 10], dtype=np.float32, rng=0)
    first = model.layers[0]
    n_params = sum(int(p.size) for p in first.parameters())
    return {"weights_per_neuron": int(first.W.shape[1]), "first_layer_100": n_params}


def place_on_canvas(X: np.ndarray, shape: tuple[int, int], margin: int) -> np.ndarray:
    """Flattened images put in the middle of a canvas ``margin`` pixels wider on each side.

    Examples
    --------
    >>> place_on_canvas(np.ones((1, 4)), (2, 2), 1).reshape(4, 4)
    array([[0., 0., 0., 0.],
           [0., 1., 1., 0.],
           [0., 1., 1., 0.],
           [0., 0., 0., 0.]])
    """
    h, w = shape
    out = np.zeros((len(X), h + 2 * margin, w + 2 * margin), dtype=X.dtype)
    out[:, margin : margin + h, margin : margin + w] = X.reshape(-1, h, w)
    return out.reshape(len(X), -1)


def shift_batch(
    X: np.ndarray, shape: tuple[int, int], rng: np.random.Generator, max_shift: int
) -> np.ndarray:
    """Move every image by its own whole-pixel shift, uniform in ``[-max_shift, max_shift]``
    along each axis (:func:`chainrule.data.shift_images`, a 0 border).

    Examples
    --------
    >>> X = np.arange(16.0).reshape(4, 4)
    >>> shift_batch(X, (2, 2), np.random.default_rng(0), max_shift=0).tolist() == X.tolist()
    True
    """
    d = rng.integers(-max_shift, max_shift + 1, size=(len(X), 2))
    out = X.copy()
    for axis in (0, 1):  # a shift by (dx, dy) is a shift by dx, then by dy
        for v in np.unique(d[:, axis]):
            if v == 0:
                continue
            rows = d[:, axis] == v
            dx, dy = (int(v), 0) if axis == 0 else (0, int(v))
            out[rows] = data.shift_images(out[rows], shape, dx, dy)
    return out


def filter_bank(rng: np.random.Generator, n: int, k: int) -> np.ndarray:
    """``n`` random ``k x k`` filters, each of zero mean and unit norm (never trained)."""
    bank = rng.standard_normal((n, k, k))
    bank -= bank.mean(axis=(1, 2), keepdims=True)
    return bank / np.linalg.norm(bank, axis=(1, 2), keepdims=True)


def conv_features(
    X: np.ndarray, shape: tuple[int, int], bank: np.ndarray, pool: int = POOL, chunk: int = 256
) -> np.ndarray:
    """Fixed convolution features: correlate with every filter, ReLU, max-pool locally.

    The correlation is "full" (every position where filter and image overlap,
    zero outside), so shifting an image whose ink stays inside it shifts the
    response maps without changing them. Each rectified map is then max-pooled
    over non-overlapping ``pool x pool`` windows (rows and columns that do not
    fill a window are dropped): a shift by a multiple of ``pool`` moves the
    pooled maps by whole cells, and only shifts inside a window can leave a
    feature unchanged. No invariance is built in beyond that.

    Parameters
    ----------
    X : numpy.ndarray
        Flattened images, shape (N, H * W).
    shape : tuple of int
        ``(H, W)``.
    bank : numpy.ndarray
        Filters, shape (F, k, k).
    pool : int
        The side (and stride) of the pooling windows.
    chunk : int
        Images per block (bounds the memory of the sliding windows).

    Returns
    -------
    numpy.ndarray
        Shape (N, R * C * F) with ``R = (H + k - 1) // pool`` and
        ``C = (W + k - 1) // pool``: the maximum of each rectified response map
        over each window, ordered by window row, window column, filter.

    Examples
    --------
    >>> img = np.zeros((1, 36)); img[0, 14] = 1.0  # one bright pixel on a 6 x 6 canvas
    >>> bank = np.ones((1, 3, 3))
    >>> f = conv_features(img, (6, 6), bank, pool=2).reshape(4, 4)
    >>> g = conv_features(np.roll(img, 2), (6, 6), bank, pool=2).reshape(4, 4)
    >>> np.array_equal(g[:, 1:], f[:, :-1]), np.array_equal(g, f)  # 2 pixels right: 1 cell
    (True, False)
    """
    h, w = shape
    n_f, k, _ = bank.shape
    rows, cols = h + k - 1, w + k - 1  # positions of the full correlation
    r, c = rows // pool, cols // pool  # pooling windows
    flat = bank.reshape(n_f, k * k).T.astype(np.float32)  # float32: half the memory traffic
    out = np.empty((len(X), r * c * n_f))
    for s in range(0, len(X), chunk):
        imgs = X[s : s + chunk].reshape(-1, h, w).astype(np.float32)
        imgs = np.pad(imgs, ((0, 0), (k - 1, k - 1), (k - 1, k - 1)))
        patches = np.empty((len(imgs), rows, cols, k * k), dtype=np.float32)
        for i in range(k):
            for j in range(k):
                patches[..., i * k + j] = imgs[:, i : i + rows, j : j + cols]
        resp = np.maximum(patches.reshape(-1, k * k) @ flat, 0.0)
        resp = resp.reshape(len(imgs), rows, cols, n_f)[:, : r * pool, : c * pool]
        cells = resp.reshape(len(imgs), r, pool, c, pool, n_f).max(axis=(2, 4))
        out[s : s + chunk] = cells.reshape(len(imgs), -1)
    return out


Transform = Callable[[np.ndarray], np.ndarray]


def train_model(
    ctx: Context,
    key: str,
    X: np.ndarray,
    y: np.ndarray,
    sizes: list[int],
    steps: int,
    augment: Transform | None = None,
) -> nn.MLP:
    """Adam on the cross-entropy, ``steps`` random mini-batches; ``augment`` moves each batch."""
    model = nn.MLP(sizes, activation="relu", dtype=np.float64, rng=ctx.rng(key), init="he_normal")
    opt = optim.Adam(model.parameters(), lr=LR)
    rng = ctx.rng(key + " batches")
    for _ in range(steps):
        idx = rng.choice(len(X), size=min(BATCH, len(X)), replace=False)
        xb = X[idx] if augment is None else augment(X[idx])
        opt.zero_grad()
        nn.F.softmax_cross_entropy(model(xb), y[idx]).backward()
        opt.step()
    return model


def shift_curve(
    model: nn.MLP, features: Transform, X: np.ndarray, y: np.ndarray, shape: tuple[int, int]
) -> dict:
    """Test accuracy on unshifted images and at each shift (mean over 4 directions)."""

    def acc(Xs: np.ndarray) -> float:
        return train.accuracy(y, model.predict(features(Xs)))

    res = {"test_accuracy": acc(X)}
    for k in TEST_SHIFTS:
        accs = [acc(data.shift_images(X, shape, dx * k, dy * k)) for dx, dy in DIRECTIONS]
        res[f"shift{k}_accuracy"] = float(np.mean(accs))
    return res
