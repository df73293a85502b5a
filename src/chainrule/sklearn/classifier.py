"""MLPClassifier: scikit-learn's classifier interface over a chainrule MLP."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets, type_of_target, unique_labels
from sklearn.utils.validation import column_or_1d, validate_data

from chainrule.train import metrics

from .base import BaseMLP

__all__ = ["MLPClassifier"]


class MLPClassifier(ClassifierMixin, BaseMLP):
    """Multi-layer perceptron classifier trained with chainrule, in scikit-learn's clothes.

    Parameters
    ----------
    hidden_layer_sizes : int or tuple of int
        Hidden layer widths, e.g. ``(64, 32)``.
    activation : str
        Hidden activation: ``identity``, ``logistic``, ``tanh``, ``relu`` (and
        chainrule's ``leaky_relu``, ``elu``, ``softplus``, ``swish``, ``gelu``,
        ``hard_logistic``, ``hard_tanh``).
    solver : {"adam", "sgd"}
        Optimizer.
    alpha : float
        L2 penalty, scaled as in scikit-learn: each mini-batch minimises
        ``loss + alpha / (2 * n_batch) * sum ||W||_F^2`` (the chapter's
        ``lambda = alpha / n_batch``), with scikit-learn's loss: the mean
        cross-entropy (summed over the labels of a multi-label row).
    batch_size : int or "auto"
        Mini-batch size; ``auto`` is ``min(200, n_samples)``.
    learning_rate : {"constant", "invscaling", "adaptive"}
        Step-size schedule of ``solver="sgd"`` (Adam keeps its step):
        ``invscaling`` uses ``learning_rate_init / (t_ + 1) ** power_t`` after
        every epoch; ``adaptive`` divides the step by 5 instead of stopping when
        ``n_iter_no_change`` epochs bring no ``tol`` improvement, down to 1e-6.
    learning_rate_init : float
        Initial step size.
    power_t : float
        Exponent of ``invscaling``.
    max_iter : int
        Maximum number of epochs.
    shuffle : bool
        Reshuffle the samples every epoch.
    random_state : int, RandomState or None
        Seeds the weights (scikit-learn's Glorot-uniform initialisation of
        weights and biases), the validation split and the shuffling.
    tol : float
        Improvement below which an epoch counts as no progress.
    verbose : bool
        Print the loss of every epoch.
    warm_start : bool
        Continue from the previous fit's weights.
    momentum, nesterovs_momentum : float, bool
        For ``solver="sgd"``.
    early_stopping : bool
        Hold out ``validation_fraction`` of the data, stop when its accuracy
        stops improving and keep the best weights.
    validation_fraction : float
        See ``early_stopping``.
    beta_1, beta_2, epsilon : float
        Adam's parameters.
    n_iter_no_change : int
        Epochs without ``tol`` improvement before stopping.
    backend : {"auto", "tape", "textbook", "numba"}
        Gradients by reverse-mode autodiff (``"tape"``) or by the chapter's
        delta recursion (``"textbook"``); ``"numba"`` runs whole epochs of
        autodiff and update in one native function (``pip install
        "chainrule[fast]"``; see ``train.fit(compile=)``), compiled on the first
        fit of an architecture (10-30 s; then cached on disk under
        ``$CHAINRULE_CACHE`` and loaded by fits of any number of rows and batch
        size; a model it cannot compile trains on the tape, with a warning).
        ``"auto"`` (default) is ``"numba"`` when Numba is installed, the network
        is small (batch size times weights at most ``AUTO_NATIVE_MACS`` = 2**21
        multiply-adds per step: overhead-bound, not arithmetic-bound) and either
        its machine code is compiled already for this architecture, at any data
        or batch size (in this process or an earlier one: compiled architectures
        are recorded in the cache directory, so looking costs nothing for one
        never compiled) or the fit may run
        ``AUTO_COMPILE_STEPS`` = 50,000 mini-batch steps or more (``max_iter``
        times batches per epoch; one epoch for ``partial_fit``), enough to pay
        back the compile; otherwise ``"tape"``, silently (also when Numba is
        missing or the cache directory is unusable: a fit on the tape neither
        creates nor writes it). Short of that many steps it only loads recorded
        machine code, never compiles it: a cache Numba cannot load (a corrupt
        or truncated file) means ``"tape"``, a forgotten record and one
        RuntimeWarning naming the cache directory. Both give the same results to rounding
        (float64: within 1e-12; float32: within float32 rounding), so the
        choice changes the speed, not the model; ``backend_`` says which ran.
        Fits are bit-for-bit reproducible for a fixed backend only: as
        ``"auto"`` depends on what is compiled already, the same
        ``random_state`` can give weights that differ in the last bits between
        a cold and a warm cache (measured on breast_cancer, 30 epochs: 1e-16 in
        float64, 1e-7 in float32) and, on a near-tie, another prediction; pass
        ``backend="tape"`` (or ``"numba"``) where bit-for-bit reruns matter.

    Attributes
    ----------
    classes_ : ndarray
        Class labels.
    loss_ : float
        Training objective (loss plus penalty, averaged over the epoch's
        mini-batches) of the last epoch.
    loss_curve_ : list of float
        Training objective per epoch.
    n_iter_ : int
        Epochs run by the last call to ``fit`` or ``partial_fit``.
    t_ : int
        Training samples seen.
    coefs_, intercepts_ : list of ndarray
        Weights (n_in, n_out) and biases per layer, as in scikit-learn.
    best_loss_ : float or None
        Lowest training loss; None when early stopping.
    validation_scores_, best_validation_score_ : list, float or None
        Validation accuracy per epoch and its best value (early stopping).
    n_layers_, n_outputs_ : int
        Layers (input and output included) and output units.
    out_activation_ : str
        ``softmax``, ``logistic`` (binary or multi-label) or ``identity``.
    n_features_in_ : int
        Number of input features.
    feature_names_in_ : ndarray of str
        Column names, when ``X`` had string column names.
    model_ : chainrule.nn.MLP
        The trained network (returns logits).
    backend_ : str
        The backend the last ``fit`` or ``partial_fit`` used: ``"numba"``,
        ``"tape"`` or ``"textbook"`` (see ``backend``).
    compile_time_ : float
        Seconds the last call spent tracing and compiling the native code (or
        loading it from Numba's disk cache); included in the call's wall time,
        0.0 when nothing was compiled.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from chainrule.sklearn import MLPClassifier
    >>> X, y = load_digits(return_X_y=True)
    >>> clf = MLPClassifier((32,), max_iter=100, random_state=0).fit(X / 16, y)
    >>> clf.score(X / 16, y) > 0.95, clf.coefs_[0].shape
    (True, (64, 32))
    """

    def _encode(self, y: np.ndarray) -> tuple[np.ndarray, int, str]:
        if self._multilabel:
            return y.astype(np.float64), y.shape[1], "logistic"
        idx = np.searchsorted(self.classes_, y)
        if len(self.classes_) == 2:
            return idx.astype(np.float64), 1, "logistic"
        return idx.astype(np.int64), len(self.classes_), "softmax"

    def _prepare(self, X, y, reset: bool, classes=None):
        X, y = validate_data(
            self, X, y, reset=reset, dtype=[np.float64, np.float32], multi_output=True
        )
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        check_classification_targets(y)
        multilabel = type_of_target(y) == "multilabel-indicator"
        if reset:
            self._multilabel = multilabel
            labels = (
                np.arange(y.shape[1])
                if multilabel
                else unique_labels(y if classes is None else classes)
            )
            if len(labels) < 2:
                raise ValueError(
                    f"{type(self).__name__} needs samples of at least 2 classes; "
                    f"got 1 class: {labels!r}"
                )
            self.classes_ = labels
        elif not multilabel:
            unknown = np.setdiff1d(np.unique(y), self.classes_)
            if len(unknown):
                raise ValueError(
                    f"`y` has classes not in `self.classes_`: {unknown!r}; "
                    f"expected {self.classes_!r}"
                )
        return X, y

    def fit(self, X: Any, y: Any) -> MLPClassifier:
        """Train on ``(X, y)`` (labels, or a 0/1 indicator matrix for multi-label)."""
        X, y = self._prepare(X, y, reset=True)
        T, n_out, output = self._encode(y)
        self._start(X, n_out, output, incremental=False)
        self._fit(X, T, incremental=False)
        return self

    def partial_fit(self, X: Any, y: Any, classes: Any = None) -> MLPClassifier:
        """One epoch over ``(X, y)``; ``classes`` is required on the first call."""
        first = not hasattr(self, "model_")
        if first and classes is None:
            raise ValueError("classes must be passed on the first call to partial_fit.")
        X, y = self._prepare(X, y, reset=first, classes=classes)
        T, n_out, output = self._encode(y)
        self._start(X, n_out, output, incremental=True)
        self._fit(X, T, incremental=True)
        return self

    def _loss_scale(self) -> float:
        # scikit-learn sums the logistic losses of the labels of a multi-label row
        return float(self.model_.layers[-1].W.shape[0]) if self._multilabel else 1.0

    def _score_targets(self, X: np.ndarray, T: np.ndarray) -> float:
        z = self._logits(X)
        if self.model_.output == "softmax":
            return float(np.mean(z.argmax(axis=1) == T))
        pred = (z > 0).astype(np.float64)
        return float(np.mean(np.all(pred == T.reshape(pred.shape), axis=1)))

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, shape (n_samples, n_classes)."""
        X = self._validate_X(X)
        p = metrics.predict_proba(self._logits(X), self.model_.output)
        if self.model_.output == "logistic" and not self._multilabel:
            return np.hstack([1.0 - p, p])
        return p

    def predict_log_proba(self, X: Any) -> np.ndarray:
        """Logarithm of :meth:`predict_proba`."""
        return np.log(self.predict_proba(X))

    def predict(self, X: Any) -> np.ndarray:
        """Predicted class labels."""
        X = self._validate_X(X)
        z = self._logits(X)
        if self._multilabel:
            return (z > 0).astype(np.int64)
        if self.model_.output == "softmax":
            return self.classes_[z.argmax(axis=1)]
        return self.classes_[(z[:, 0] > 0).astype(np.int64)]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags
