"""Shared training logic of the scikit-learn estimators."""

from __future__ import annotations

import importlib.util
import time
import warnings
from numbers import Integral
from pathlib import Path
from typing import Any, cast

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.utils.validation import (
    check_is_fitted,
    check_random_state,
    validate_data,
)

from chainrule import nn
from chainrule.core import no_grad, tensor
from chainrule.nn.activations import ACTIVATION_NAMES
from chainrule.symbolic.native import NotNative, warn_fallback
from chainrule.symbolic.native_cache import require_numba, user_stacklevel
from chainrule.train.config import FitConfig
from chainrule.train.native_epochs import CompiledEpochs, compiled_before, compiled_targets
from chainrule.train.objective import Objective
from chainrule.train.steps import config_optimizer, train_step

__all__ = ["AUTO_COMPILE_STEPS", "AUTO_NATIVE_MACS", "BaseMLP", "numba_installed"]

# backend="auto": the native backend for a network of at most this many multiply-adds per
# mini-batch (batch size times the weights), where NumPy's per-operation overhead dominates,
AUTO_NATIVE_MACS = 2**21
# once its machine code is compiled (in this process or Numba's disk cache; once per
# architecture: any number of rows, any batch size), or at once when the fit may run this
# many mini-batch steps: enough to pay back a first compile (~10-30 s)
AUTO_COMPILE_STEPS = 50_000


def numba_installed() -> bool:
    """Whether Numba can be imported (found without importing it: that takes a while)."""
    return importlib.util.find_spec("numba") is not None


class BaseMLP(BaseEstimator):
    """Shared training logic; see :class:`MLPClassifier` for the parameters."""

    # fitted state (the network and its optimizer are chainrule objects)
    model_: Any
    _optimizer: Any
    _best_weights: dict[str, np.ndarray] | None

    def __init__(
        self,
        hidden_layer_sizes: Any = (100,),
        activation: str = "relu",
        *,
        solver: str = "adam",
        alpha: float = 1e-4,
        batch_size: int | str = "auto",
        learning_rate: str = "constant",
        learning_rate_init: float = 1e-3,
        power_t: float = 0.5,
        max_iter: int = 200,
        shuffle: bool = True,
        random_state: Any = None,
        tol: float = 1e-4,
        verbose: bool = False,
        warm_start: bool = False,
        momentum: float = 0.9,
        nesterovs_momentum: bool = True,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-8,
        n_iter_no_change: int = 10,
        backend: str = "auto",
    ) -> None:
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.backend = backend

    # ------------------------------------------------------------ validation
    def _hidden(self) -> list[int]:
        h = self.hidden_layer_sizes
        sizes = [h] if isinstance(h, Integral) else list(h)
        if any(not isinstance(s, Integral) or isinstance(s, bool) or s <= 0 for s in sizes):
            raise ValueError(f"hidden_layer_sizes must be positive integers, got {h!r}")
        return [int(s) for s in sizes]

    def _check_params(self) -> None:
        name = type(self).__name__
        checks = [
            (self.activation in ACTIVATION_NAMES, f"activation must be one of {ACTIVATION_NAMES}"),
            (
                self.solver in ("sgd", "adam"),
                "solver must be 'sgd' or 'adam' (lbfgs is not offered)",
            ),
            (
                self.backend in ("auto", "tape", "textbook", "numba"),
                "backend must be 'auto', 'tape', 'textbook' or 'numba'",
            ),
            (self.alpha >= 0, "alpha must be >= 0"),
            (self.learning_rate_init > 0, "learning_rate_init must be > 0"),
            (
                self.learning_rate in ("constant", "invscaling", "adaptive"),
                "learning_rate must be 'constant', 'invscaling' or 'adaptive'",
            ),
            (self.power_t >= 0, "power_t must be >= 0"),
            (isinstance(self.max_iter, Integral) and self.max_iter >= 1, "max_iter must be >= 1"),
            (0 <= self.momentum <= 1, "momentum must be in [0, 1]"),
            (0 < self.validation_fraction < 1, "validation_fraction must be in (0, 1)"),
            (0 <= self.beta_1 < 1 and 0 <= self.beta_2 < 1, "beta_1 and beta_2 must be in [0, 1)"),
            (self.epsilon > 0, "epsilon must be > 0"),
            (
                isinstance(self.n_iter_no_change, Integral) and self.n_iter_no_change >= 1,
                "n_iter_no_change must be >= 1",
            ),
            (self.tol >= 0, "tol must be >= 0"),
            (
                self.batch_size == "auto"
                or (isinstance(self.batch_size, Integral) and self.batch_size >= 1),
                "batch_size must be 'auto' or a positive integer",
            ),
        ]
        for ok, msg in checks:
            if not ok:
                raise ValueError(f"{name}: {msg}")
        self._hidden()

    # ------------------------------------------------------------ model state
    def _build(self, n_features: int, n_outputs: int, output: str, dtype: Any, rng) -> None:
        sizes = [n_features, *self._hidden(), n_outputs]
        # rng=0: the initial weights are replaced by scikit-learn's below
        self.model_ = nn.MLP(sizes, activation=self.activation, output=output, dtype=dtype, rng=0)
        self.model_.load_state_dict(self._glorot_uniform(sizes, dtype, rng))
        self._optimizer = None
        self.n_iter_, self.t_ = 0, 0
        self.loss_curve_: list[float] = []
        self._no_improvement_count = 0
        if self.early_stopping:
            self.validation_scores_: list[float] | None = []
            self.best_validation_score_: float | None = -np.inf
            self.best_loss_: float | None = None
        else:
            self.validation_scores_ = self.best_validation_score_ = None
            self.best_loss_ = np.inf

    def _glorot_uniform(self, sizes: list[int], dtype: Any, rng) -> dict[str, np.ndarray]:
        """scikit-learn's initialisation: weights and biases ~ U(-b, b), b = sqrt(k / (in + out)),
        k = 2 for the logistic activation and 6 otherwise, drawn layer by layer from ``rng``."""
        factor = 2.0 if self.activation == "logistic" else 6.0
        state = {}
        for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
            bound = np.sqrt(factor / (fan_in + fan_out))
            W = rng.uniform(-bound, bound, (fan_in, fan_out))  # noqa: N806
            state[f"layers.{i}.W"] = np.ascontiguousarray(W.T, dtype=dtype)
            state[f"layers.{i}.b"] = rng.uniform(-bound, bound, fan_out).astype(dtype)
        return state

    def _loss_scale(self) -> float:
        """Factor from chainrule's mean loss to scikit-learn's (1/2 for squared error)."""
        raise NotImplementedError

    def _fit_config(self, n: int | None = None) -> FitConfig:
        """The optimisation options of this estimator as chainrule's :class:`FitConfig`
        (``n``: the number of training rows, which sets the batch size)."""
        sgd = self.solver == "sgd"
        return FitConfig(
            optimizer=self.solver,
            lr=self.learning_rate_init,
            momentum=self.momentum if sgd else FitConfig.momentum,
            nesterov=bool(sgd and self.nesterovs_momentum and self.momentum > 0),
            betas=(self.beta_1, self.beta_2),
            eps=self.epsilon,
            backend="textbook" if self.backend == "textbook" else "tape",
            compile="numba" if self.backend == "numba" else None,
            batch_size=FitConfig.batch_size if n is None else self._batch_size(n),
            shuffle=bool(self.shuffle),
            epochs=self.max_iter,
            progress=False,
        )

    def _make_optimizer(self) -> Any:
        return config_optimizer(self.model_, self._fit_config())

    @property
    def coefs_(self) -> list[np.ndarray]:
        """Weight matrices like scikit-learn's: shape (n_in, n_out) per layer (``W.T``)."""
        check_is_fitted(self, "model_")
        return [np.array(layer.W.data.T) for layer in self.model_.layers]

    @property
    def intercepts_(self) -> list[np.ndarray]:
        """Bias vectors, one per layer."""
        check_is_fitted(self, "model_")
        return [np.array(layer.b.data) for layer in self.model_.layers if layer.b is not None]

    @property
    def n_layers_(self) -> int:
        """Number of layers, input and output included."""
        check_is_fitted(self, "model_")
        return len(self.model_.layers) + 1

    @property
    def n_outputs_(self) -> int:
        """Width of the output layer."""
        check_is_fitted(self, "model_")
        return int(self.model_.layers[-1].W.shape[0])

    @property
    def out_activation_(self) -> str:
        """``softmax``, ``logistic`` or ``identity`` (scikit-learn's names)."""
        check_is_fitted(self, "model_")
        return {"linear": "identity"}.get(self.model_.output, self.model_.output)

    def __getstate__(self) -> dict:
        # store the network as plain arrays, so pickles do not depend on Tensor internals
        state = self.__dict__.copy()
        state.pop("_compiled", None)  # native code is rebuilt (or loaded from disk) on demand
        model = state.pop("model_", None)
        opt = state.pop("_optimizer", None)
        if model is not None:
            state["_model_config"] = model.config()
            state["_model_weights"] = model.state_dict()
            state["_optimizer_state"] = None if opt is None else opt.state_dict()
        return state

    def __setstate__(self, state: dict) -> None:
        cfg = state.pop("_model_config", None)
        weights = state.pop("_model_weights", None)
        opt_state = state.pop("_optimizer_state", None)
        self.__dict__.update(state)
        if cfg is not None:
            self.model_ = nn.MLP.from_config(cfg)
            self.model_.load_state_dict(weights)
            self._optimizer = None
            if opt_state is not None:
                self._optimizer = self._make_optimizer()
                self._optimizer.load_state_dict(opt_state)

    # ------------------------------------------------------------ training
    def _batch_size(self, n: int) -> int:
        if self.batch_size == "auto":
            return min(200, n)
        if int(self.batch_size) > n:
            warnings.warn(
                "Got `batch_size` less than 1 or larger than sample size. It is going "
                "to be clipped",
                stacklevel=3,
            )
        return int(np.clip(int(self.batch_size), 1, n))

    def _compiled_epochs(
        self, n: int, bs: int, scale: float, auto: bool, epochs: int
    ) -> CompiledEpochs | None:
        """The native epoch function for ``n`` rows (None: the uncompiled loop). With
        ``backend="numba"`` it is compiled (a model Numba cannot compile falls back, with a
        warning); with ``"auto"`` only when ready or worth it for a call of up to ``epochs``
        epochs (see :class:`MLPClassifier`)."""
        key = (n, bs, scale, self.alpha, id(self._optimizer))
        cached = self.__dict__.get("_compiled")
        if cached is not None and cached[0] == key:
            return cast(CompiledEpochs | None, cached[1])
        start = time.perf_counter()  # compile time: importing Numba, tracing, compiling
        setup: dict[str, Any] = dict(
            n_rows=n, batch_size=bs, lam=lambda rows: self.alpha / (scale * rows), scale=scale
        )
        worth_compiling = epochs * -(-n // bs) >= AUTO_COMPILE_STEPS
        if auto and not numba_installed():
            return None  # no Numba: the tape, silently
        if auto and not worth_compiling:
            # cheap (no Numba import, no tracing): a setup never compiled stays on the tape
            if not compiled_before(self.model_, self._objective, self._optimizer, **setup):
                return None
        try:
            require_numba()
        except ImportError:
            if auto:
                return None  # no Numba: the tape, silently
            raise
        compiled: CompiledEpochs | None = None
        try:
            compiled = CompiledEpochs(
                self.model_, self._objective, self._optimizer, compile=False, **setup
            )
            if auto and not worth_compiling:  # only what loads: never a surprise compile
                if not compiled.ready:  # recorded, but not in Numba's cache (any more)
                    compiled.forget()
                    compiled = None
                elif not compiled.load():  # there, but unreadable
                    compiled.forget()
                    self._warn_unloadable(compiled.cache_location)
                    compiled = None
            else:
                compiled.compile()
        except NotNative as e:
            if not auto:
                warn_fallback(e.prim, e.reason)
            compiled = None
        finally:
            self.compile_time_ += time.perf_counter() - start
        if compiled is not None or not auto:  # a miss of "auto" looks at the cache again
            self._compiled = (key, compiled)
        return compiled

    def _warn_unloadable(self, folder: Path) -> None:
        """Say that ``backend="auto"`` runs the tape because the recorded machine code in
        ``folder`` cannot be loaded (once: the record is forgotten)."""
        warnings.warn(
            f"{type(self).__name__}: backend='auto' found the native epochs of this "
            f"architecture recorded as compiled, but Numba could not load their machine code "
            f"from {folder} (a corrupt or truncated cache file, or one written by another "
            "Numba version); this fit runs on the tape and the record is forgotten. To run "
            "natively again, fit once with backend='numba' (it compiles the code again, "
            f"10-30 s) or delete {folder}.",
            RuntimeWarning,
            stacklevel=user_stacklevel(),
        )

    def _choose_backend(self, n: int, scale: float, epochs: int) -> CompiledEpochs | None:
        """Set ``backend_`` and ``compile_time_`` for a call of up to ``epochs`` epochs over
        ``n`` rows; the native epochs or None."""
        self.compile_time_ = 0.0
        bs = self._batch_size(n)
        compiled = None
        if self.backend == "numba":
            compiled = self._compiled_epochs(n, bs, scale, auto=False, epochs=epochs)
        elif self.backend == "auto":
            sizes = self.model_.layer_sizes
            macs = bs * sum(a * b for a, b in zip(sizes[:-1], sizes[1:], strict=False))
            if macs <= AUTO_NATIVE_MACS:
                compiled = self._compiled_epochs(n, bs, scale, auto=True, epochs=epochs)
        if compiled is not None:
            self.backend_ = "numba"
        else:
            self.backend_ = "textbook" if self.backend == "textbook" else "tape"
        return compiled

    def _epoch(self, X: np.ndarray, T: np.ndarray, order: np.ndarray, native: Any) -> float:
        n = len(X)
        bs = self._batch_size(n)
        scale = self._loss_scale()
        total = 0.0
        if native is not None:  # (compiled epochs, X and targets as they take them)
            compiled, Xc, Tc = native  # noqa: N806
            losses, _, done = compiled.run(Xc, Tc, order)
            if done < -(-n // bs):
                raise ValueError(
                    f"{type(self).__name__}: the loss became {losses[done]} at iteration "
                    f"{self.n_iter_ + 1}; lower learning_rate_init or standardise X"
                )
            for k, loss in enumerate(losses.tolist()):  # summed as the uncompiled loop does
                total += loss * min(bs, n - k * bs)
            self.t_ += n
            return total / n
        for start in range(0, n, bs):
            idx = order[start : start + bs]
            # scikit-learn's objective, scale * chainrule's loss + alpha / (2 n_batch) ||W||^2,
            # is scale * (loss + lam / 2 ||W||^2) with lam = alpha / (scale n_batch)
            loss, _ = train_step(
                self.model_,
                self._objective,
                X[idx],
                T[idx],
                lam=self.alpha / (scale * len(idx)),
                backend=self.backend_,
            )
            loss *= scale
            if scale != 1.0:
                for p in self.model_.parameters():
                    p.grad = p.grad * scale
            if not np.isfinite(loss):
                raise ValueError(
                    f"{type(self).__name__}: the loss became {loss} at iteration "
                    f"{self.n_iter_ + 1}; lower learning_rate_init or standardise X"
                )
            self._optimizer.step()
            total += loss * len(idx)
        self.t_ += n
        return total / n

    def _fit(self, X: np.ndarray, T: np.ndarray, incremental: bool) -> None:
        rng = self._random_state
        if self._optimizer is None or not incremental:
            self._optimizer = self._make_optimizer()
        Xv = Tv = None
        if self.early_stopping:
            if incremental:
                raise ValueError("partial_fit does not support early_stopping=True")
            # as scikit-learn: stratified for a classifier with one output unit only
            strat = T if isinstance(self, ClassifierMixin) and self.n_outputs_ == 1 else None
            X, Xv, T, Tv = train_test_split(
                X, T, test_size=self.validation_fraction, random_state=rng, stratify=strat
            )
            if len(Xv) < 2:
                raise ValueError(
                    "The validation set is too small. Increase 'validation_fraction' "
                    "or the size of your dataset."
                )
        # as scikit-learn: n_iter_ counts the epochs of this call, t_ every sample ever seen
        self.n_iter_ = 0
        epochs = 1 if incremental else self.max_iter
        order = np.arange(len(X))
        compiled = self._choose_backend(len(X), self._loss_scale(), epochs)
        native = None
        if compiled is not None:  # the arrays as the native code takes them, once per call
            dtype = self.model_.layers[0].W.dtype
            Xc = np.ascontiguousarray(X, dtype=dtype)  # noqa: N806
            native = (compiled, Xc, compiled_targets(self._objective, T, dtype))
        for _ in range(epochs):
            if self.shuffle:  # scikit-learn reshuffles the previous epoch's order
                order = order[rng.permutation(len(X))]
            loss = self._epoch(X, T, order, native)
            self.n_iter_ += 1
            self.loss_ = float(loss)
            self.loss_curve_.append(self.loss_)
            if self.verbose:
                print(f"Iteration {self.n_iter_}, loss = {loss:.8f}")
            if self.solver == "sgd" and self.learning_rate == "invscaling":
                self._optimizer.lr = self.learning_rate_init / (self.t_ + 1) ** self.power_t
            if self._converged(Xv, Tv) or incremental:
                break
        else:
            warnings.warn(
                f"Stochastic Optimizer: Maximum iterations ({self.max_iter}) reached and the "
                "optimization hasn't converged yet.",
                ConvergenceWarning,
                stacklevel=3,
            )
        if self.early_stopping and self._best_weights is not None:
            self.model_.load_state_dict(self._best_weights)

    def _converged(self, Xv, Tv) -> bool:
        """scikit-learn's rule: ``n_iter_no_change`` epochs without a ``tol`` improvement."""
        if self.early_stopping:
            score = float(self._score_targets(Xv, Tv))
            assert self.validation_scores_ is not None and self.best_validation_score_ is not None
            self.validation_scores_.append(score)
            if score < self.best_validation_score_ + self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if score > self.best_validation_score_:
                self.best_validation_score_ = score
                self._best_weights = self.model_.state_dict()
        else:
            loss = self.loss_curve_[-1]
            best = np.inf if self.best_loss_ is None else self.best_loss_
            if loss > best - self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            self.best_loss_ = min(best, loss)
        if self._no_improvement_count <= self.n_iter_no_change:
            return False
        what = "Validation score" if self.early_stopping else "Training loss"
        msg = f"{what} did not improve more than tol={self.tol} for {self.n_iter_no_change} "
        msg += "consecutive epochs."
        # scikit-learn's adaptive schedule: divide the step by 5 instead of stopping, down to 1e-6
        if self.solver == "sgd" and self.learning_rate == "adaptive" and self._optimizer.lr > 1e-6:
            self._optimizer.lr /= 5.0
            self._no_improvement_count = 0
            if self.verbose:
                print(f"{msg} Setting learning rate to {self._optimizer.lr:f}")
            return False
        if self.verbose:
            print(f"{msg} Stopping.")
        return True

    def _start(self, X: np.ndarray, n_outputs: int, output: str, incremental: bool) -> None:
        self._check_params()
        fresh = not hasattr(self, "model_") or (not self.warm_start and not incremental)
        # one stream per call, as scikit-learn: initial weights, validation split, shuffling;
        # an int random_state restarts it on every fit and partial_fit
        self._random_state = check_random_state(self.random_state)
        if fresh:
            self._build(X.shape[1], n_outputs, output, X.dtype, self._random_state)
        self._objective = Objective(self.model_.output, None, n_outputs)
        self._best_weights = None
        self._no_improvement_count = 0

    def _logits(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=self.model_.layers[0].W.dtype)
        with no_grad():
            return np.asarray(self.model_(tensor(X)).data)

    def _validate_X(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "model_")
        return validate_data(self, X, reset=False, dtype=[np.float64, np.float32])

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = False
        return tags
