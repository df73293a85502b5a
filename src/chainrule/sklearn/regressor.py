"""MLPRegressor: scikit-learn's regressor interface over a chainrule MLP."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import RegressorMixin
from sklearn.utils.validation import column_or_1d, validate_data

from chainrule.train.metrics import r2_score

from .base import BaseMLP

__all__ = ["MLPRegressor"]


class MLPRegressor(RegressorMixin, BaseMLP):
    """Multi-layer perceptron regressor (squared error) trained with chainrule.

    Parameters and attributes as :class:`MLPClassifier` (no ``classes_``;
    ``validation_scores_`` hold R^2). The output layer is linear and the
    objective is scikit-learn's: half the mean squared error plus
    ``alpha / (2 n_batch) * sum ||W||_F^2``, so ``loss_``, ``loss_curve_`` and
    ``alpha`` mean what they mean in ``sklearn.neural_network.MLPRegressor``.

    Examples
    --------
    >>> import numpy as np
    >>> from chainrule.sklearn import MLPRegressor
    >>> X = np.linspace(-1, 1, 64).reshape(-1, 1)
    >>> reg = MLPRegressor((16,), activation="tanh", max_iter=300, learning_rate_init=0.01,
    ...                    batch_size=16, random_state=0).fit(X, X.ravel() ** 2)
    >>> reg.score(X, X.ravel() ** 2) > 0.9
    True
    """

    def _prepare(self, X, y, reset: bool):
        X, y = validate_data(
            self,
            X,
            y,
            reset=reset,
            dtype=[np.float64, np.float32],
            multi_output=True,
            y_numeric=True,
        )
        if y.ndim == 2 and y.shape[1] == 1:  # as scikit-learn: one target, predicted as (n,)
            y = column_or_1d(y, warn=True)
        if reset:
            self._y_1d = y.ndim == 1
        T = y.reshape(len(y), -1).astype(X.dtype)
        return X, T

    def fit(self, X: Any, y: Any) -> MLPRegressor:
        """Train on ``(X, y)``; ``y`` of shape (n,) or (n, n_targets)."""
        X, T = self._prepare(X, y, reset=True)
        self._start(X, T.shape[1], "linear", incremental=False)
        self._fit(X, T, incremental=False)
        return self

    def partial_fit(self, X: Any, y: Any) -> MLPRegressor:
        """One epoch over ``(X, y)``."""
        X, T = self._prepare(X, y, reset=not hasattr(self, "model_"))
        self._start(X, T.shape[1], "linear", incremental=True)
        self._fit(X, T, incremental=True)
        return self

    def _loss_scale(self) -> float:
        return 0.5

    def _score_targets(self, X: np.ndarray, T: np.ndarray) -> float:
        return r2_score(T, self._logits(X))

    def predict(self, X: Any) -> np.ndarray:
        """Predicted values, shape (n,) or (n, n_targets) like the training targets."""
        X = self._validate_X(X)
        z = self._logits(X)
        return z.ravel() if self._y_1d else z

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        return tags
