"""scikit-learn estimators backed by chainrule: :class:`MLPClassifier` and :class:`MLPRegressor`.

They follow scikit-learn's ``MLPClassifier``/``MLPRegressor`` (parameters,
attributes, stopping rules) and pass scikit-learn's estimator checks, but
compute gradients with chainrule's reverse mode (``backend="tape"``) or the
chapter's delta recursion (``backend="textbook"``), or run whole epochs in
native code (``backend="numba"``; the default ``"auto"`` picks it for a small
network when Numba is installed: see :class:`MLPClassifier`).

Examples
--------
>>> from sklearn.datasets import load_iris
>>> from chainrule.sklearn import MLPClassifier
>>> X, y = load_iris(return_X_y=True)
>>> clf = MLPClassifier(hidden_layer_sizes=(16,), max_iter=300, random_state=0).fit(X, y)
>>> clf.score(X, y) > 0.9
True
"""

from .base import AUTO_COMPILE_STEPS, AUTO_NATIVE_MACS
from .classifier import MLPClassifier
from .regressor import MLPRegressor

__all__ = ["AUTO_COMPILE_STEPS", "AUTO_NATIVE_MACS", "MLPClassifier", "MLPRegressor"]
