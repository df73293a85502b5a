"""One playground session: its data, network, optimiser and training state.

A session trains in whole epochs (one pass over the shuffled training part
in mini-batches, as TensorFlow Playground's step button) and describes itself
as *frames*: losses, the output heat map, every hidden neuron's heat map, the
weights and the per-layer norms of ``delta^(l)`` and ``dL/dW^(l)``. It is not
thread-safe; the server holds ``lock`` around every call.
"""

from __future__ import annotations

import base64
import math
import threading
import time
from typing import Any

import numpy as np

import chainrule as cr
from chainrule.playground import datasets
from chainrule.playground.config import Config, FieldError, parse_config
from chainrule.playground.network import (
    build_model,
    data_loss,
    forward,
    make_optimizer,
    penalty,
    skips,
)

#: resolution of the output heat map and of each neuron's small heat map
GRID, NEURON_GRID = 48, 16


def _encode(values: np.ndarray, lo: float, hi: float) -> str:
    """Values mapped from [lo, hi] to bytes 0..255, base64 (compact frames)."""
    q = np.clip((values - lo) / (hi - lo), 0.0, 1.0)
    q = np.nan_to_num(q, nan=0.5)
    return base64.b64encode((q * 255 + 0.5).astype(np.uint8).tobytes()).decode("ascii")


def _grid(n: int) -> np.ndarray:
    """Cell centres of an n x n grid over the plane, row 0 at the top (x2 = +6)."""
    c = (np.arange(n) + 0.5) / n * 2 * datasets.EXTENT - datasets.EXTENT
    x1, x2 = np.meshgrid(c, c[::-1])
    return np.stack([x1.ravel(), x2.ravel()], axis=1)


_GRID_POINTS = _grid(GRID)
_STRIDE = GRID // NEURON_GRID
_NEURON_CELLS = (
    np.arange(GRID * GRID)
    .reshape(GRID, GRID)[_STRIDE // 2 :: _STRIDE, _STRIDE // 2 :: _STRIDE]
    .ravel()
)


class Session:
    """A playground session (one browser tab).

    Examples
    --------
    >>> s = Session(Config(dataset="circle"))
    >>> s.train_epochs(5)["epoch"]
    5
    >>> sorted(s.frame())[:4]
    ['delta', 'epoch', 'grad_w', 'message']
    """

    def __init__(self, cfg: Config | None = None) -> None:
        self.lock = threading.Lock()
        # an action holds ``turn`` while it waits for ``lock``; the stream passes through
        # ``turn`` before each training slice, so a waiting action gets ``lock`` next
        # (a plain Lock is not fair: the stream could retake it slice after slice)
        self.turn = threading.Lock()
        self.changed = threading.Event()
        self.last_seen = time.monotonic()
        self.streams = 0
        self.hidden = False  # the tab is hidden and closed its stream (see the server)
        self.stream_id = 0
        self.version = 0
        self.custom: tuple[np.ndarray, np.ndarray] = (np.zeros((0, 2)), np.zeros(0))
        self.custom_problem = "classification"
        self.cfg = cfg or Config()
        self.playing = False
        self.message = ""
        self.data_version = 0
        self._load_data()
        self._rebuild()

    # ------------------------------------------------------------ data and network
    @property
    def task(self) -> str:
        return datasets.task_of(self.cfg.dataset, self.cfg.problem)

    def _load_data(self) -> None:
        c = self.cfg
        if c.dataset == "custom":
            X, y = self.custom  # noqa: N806
        else:
            X, y = datasets.generate(c.dataset, c.noise, c.seed)  # noqa: N806
        self.X_train, self.y_train, self.X_test, self.y_test = datasets.split(X, y, c.ratio, c.seed)
        self.data_version += 1

    def _rebuild(self) -> None:
        c = self.cfg
        self.model = build_model(c, len(c.features), self.task)
        self.params: list[tuple[Any, Any]] = [(layer.W, layer.b) for layer in self.model.layers]
        self.skip = skips(self.model.layer_sizes, c.residual)
        self.opt = make_optimizer(c.optimizer, self.model.parameters(), c.lr)
        self.rng = np.random.default_rng(c.seed + 2)
        self.epoch = self.steps = self.cursor = 0
        self._last_loss = 0.0
        self.order = self.rng.permutation(len(self.X_train))
        self.history: list[tuple[int, float, float]] = []
        self.delta_norms: list[float] = []
        self.grad_norms: list[float] = []
        self.playing = False
        self.message = ""
        self._features()
        self.version += 1

    def _features(self) -> None:
        names = self.cfg.features
        self.F_train = datasets.features(self.X_train, names)
        self.F_test = datasets.features(self.X_test, names)
        self.F_grid = datasets.features(_GRID_POINTS, names)
        self.Y_train = self.y_train.reshape(-1, 1)
        self.Y_test = self.y_test.reshape(-1, 1)

    def configure(self, raw: Any, new_data: bool = False) -> None:
        """Apply new settings (validated): the network is rebuilt, the data too when its
        settings change or with ``new_data``."""
        if not isinstance(raw, dict):
            raise FieldError("config", f"expected an object of settings, got {type(raw).__name__}")
        n = len(self.custom[0]) if raw.get("dataset") == "custom" else datasets.N_POINTS
        cfg = parse_config(raw, n_points=max(n, 1))
        if cfg.dataset == "custom" and len(self.custom[0]) < 2:
            raise FieldError(
                "dataset", "custom data needs at least 2 points: draw them or load a CSV"
            )
        old, self.cfg = self.cfg, cfg
        data_keys = ("dataset", "noise", "ratio", "seed", "problem")
        if new_data or any(getattr(old, k) != getattr(cfg, k) for k in data_keys):
            self._load_data()
        self._rebuild()

    def regenerate(self) -> None:
        """New points from the next seed (TF Playground's "regenerate"), network reset."""
        raw = self.cfg.to_dict()
        raw["seed"] = (self.cfg.seed + 1) % (2**31 - 1)
        self.configure(raw)

    def set_custom(self, X: np.ndarray, y: np.ndarray, problem: str) -> None:  # noqa: N803
        """Use the given points (drawn or from a CSV) as the dataset."""
        if len(X) > datasets.MAX_POINTS:
            raise FieldError("points", f"at most {datasets.MAX_POINTS} points")
        self.custom = (np.asarray(X, dtype=np.float64), np.asarray(y, dtype=np.float64))
        self.custom_problem = problem
        raw = self.cfg.to_dict()
        raw.update(dataset="custom", problem=problem)
        raw["batch"] = min(raw["batch"], max(1, int(round(self.cfg.ratio * max(len(X), 1)))))
        if len(X) >= 2:
            self.configure(raw, new_data=True)

    def add_point(self, x1: float, x2: float, label: float, problem: str) -> None:
        """Add one drawn point (class 0/1, or a value in [-1, 1]) to the custom data."""
        X, y = self.custom  # noqa: N806
        if self.custom_problem != problem:
            X, y = np.zeros((0, 2)), np.zeros(0)  # noqa: N806  (a fresh drawing)
        self.custom = (np.vstack([X, [[x1, x2]]]), np.append(y, label))
        if len(self.custom[0]) > datasets.MAX_POINTS:
            self.custom = (X, y)
            raise FieldError("points", f"at most {datasets.MAX_POINTS} points")
        self.set_custom(*self.custom, problem=problem)

    # ------------------------------------------------------------ training
    def _step(self, idx: np.ndarray, taps: list[Any] | None = None) -> float:
        logits, _ = forward(self.params, self.F_train[idx], self.cfg.activation, self.skip, taps)
        loss = data_loss(self.task, logits, self.Y_train[idx])
        reg = penalty([W for W, _ in self.params], self.cfg.regularization, self.cfg.reg_rate)
        total = loss + reg if not isinstance(reg, float) else loss
        total.backward()
        if taps is not None:
            self.delta_norms = [float(np.linalg.norm(np.asarray(t.grad))) for t in taps]
            self.grad_norms = [float(np.linalg.norm(np.asarray(W.grad))) for W, _ in self.params]
        self.opt.step()
        self.opt.zero_grad()
        self.steps += 1
        self._last_loss = float(loss.numpy())
        return self._last_loss

    def _last_batch_of_epoch(self) -> bool:
        return self.cursor + 2 * self.cfg.batch > len(self.F_train)

    def _train_step(self, with_taps: bool) -> None:
        """One mini-batch step; after a pass's last full batch the epoch counts and reshuffles."""
        bs = self.cfg.batch
        idx = self.order[self.cursor : self.cursor + bs]
        taps = None
        if with_taps:
            taps = [
                cr.tensor(np.zeros((len(idx), w)), requires_grad=True)
                for w in self.model.layer_sizes[1:]
            ]
        self._step(idx, taps)
        self.cursor += bs
        if self.cursor + bs > len(self.F_train):  # the rest, smaller than a batch, is dropped
            self.order, self.cursor = self.rng.permutation(len(self.F_train)), 0
            self.epoch += 1

    def losses(self) -> tuple[float, float]:
        """Data loss (no penalty) on the training and the test part."""
        with cr.no_grad():
            out = []
            for F, Y in ((self.F_train, self.Y_train), (self.F_test, self.Y_test)):  # noqa: N806
                if len(F) == 0:
                    out.append(float("nan"))
                    continue
                logits, _ = forward(self.params, F, self.cfg.activation, self.skip)
                out.append(float(data_loss(self.task, logits, Y).numpy()))
        return out[0], out[1]

    def train_epochs(self, epochs: int = 1, budget_s: float | None = None) -> dict[str, Any]:
        """Train ``epochs`` whole epochs, or for ``budget_s`` seconds (at least one step).

        With a budget training stops between mini-batches, so the page gets
        frames at a steady rate; the epoch counter counts finished passes.
        The last step records the per-layer norms of ``delta^(l)`` and
        ``dL/dW^(l)``. A loss that is not finite stops training and says why
        in ``message``; it is returned as None (JSON has no NaN).
        """
        with np.errstate(over="ignore", invalid="ignore"):  # divergence is reported below
            tr, te = self._train(epochs, budget_s)
        self.history.append((self.epoch, tr, te))
        if len(self.history) > 2000:
            self.history = self.history[::2]
        if not (math.isfinite(tr) and all(math.isfinite(v) for v in self.delta_norms)):
            self.playing = False
            self.message = (
                f"the loss became NaN or infinite at epoch {self.epoch}: training paused; "
                f"lower the learning rate (now {self.cfg.lr:g}) and press reset"
            )
        self.version += 1
        return {"epoch": self.epoch, "train_loss": _finite(tr), "test_loss": _finite(te)}

    def _train(self, epochs: int, budget_s: float | None) -> tuple[float, float]:
        start = time.perf_counter()
        if budget_s is None:
            target = self.epoch + epochs
            while self.epoch < target and math.isfinite(self._last_loss):
                self._train_step(with_taps=self.epoch == target - 1 and self._last_batch_of_epoch())
        else:
            while math.isfinite(self._last_loss):
                done = time.perf_counter() - start >= budget_s
                self._train_step(with_taps=done)
                if done:
                    break
        return self.losses()

    # ------------------------------------------------------------ what the page draws
    def frame(self) -> dict[str, Any]:
        """The state the page draws, JSON-serialisable and compact."""
        with cr.no_grad(), np.errstate(over="ignore", invalid="ignore"):
            logits, hidden = forward(self.params, self.F_grid, self.cfg.activation, self.skip)
            out = logits.numpy()[:, 0]
        if self.task == "classification":
            surface = _encode(1.0 / (1.0 + np.exp(-np.clip(out, -50, 50))), 0.0, 1.0)
        else:
            surface = _encode(out, -1.0, 1.0)
        neurons = [
            [_encode(h.numpy()[_NEURON_CELLS, j], -1.0, 1.0) for j in range(h.shape[1])]
            for h in hidden
        ]
        tr, te = self.history[-1][1:] if self.history else self.losses()
        return {
            "type": "frame",
            "epoch": self.epoch,
            "steps": self.steps,
            "playing": self.playing,
            "message": self.message,
            "train_loss": _finite(tr),
            "test_loss": _finite(te),
            "surface": surface,
            "neurons": neurons,
            "weights": [
                {"W": _drawable(W.numpy()), "b": _drawable(b.numpy())} for W, b in self.params
            ],
            "skip": self.skip,
            "sizes": self.model.layer_sizes,
            "delta": [_finite(v) for v in self.delta_norms],
            "grad_w": [_finite(v) for v in self.grad_norms],
        }

    def data_frame(self) -> dict[str, Any]:
        """The points (sent when the data changes): ``[x1, x2, label]`` rows, train and test."""
        return {
            "type": "data",
            "task": self.task,
            "config": self.cfg.to_dict(),
            "train": np.column_stack([self.X_train, self.y_train]).round(4).tolist(),
            "test": np.column_stack([self.X_test, self.y_test]).round(4).tolist(),
            "history": [[e, _finite(a), _finite(b)] for e, a, b in self.history],
        }


def _drawable(a: np.ndarray) -> list:
    """Rounded values for the page; a diverged NaN or infinity becomes a finite stand-in."""
    return np.round(np.nan_to_num(a, nan=0.0, posinf=1e6, neginf=-1e6), 5).tolist()


def _finite(v: float) -> float | None:
    return v if math.isfinite(v) else None
