"""Audit of nn.from_sklearn on the estimators scikit-learn users fit most: binary and regression."""

from __future__ import annotations

import numpy as np
import pytest

from chainrule import nn

neural_network = pytest.importorskip("sklearn.neural_network")
X = np.random.default_rng(0).normal(size=(40, 4))


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_binary_classifier_is_one_logistic_output_with_the_positive_class():
    y = np.where(X[:, 0] + X[:, 1] > 0, "yes", "no")
    sk = neural_network.MLPClassifier((6,), max_iter=50, random_state=0).fit(X, y)
    m = nn.from_sklearn(sk)
    assert m.output == "logistic" and m.layer_sizes == [4, 6, 1]
    np.testing.assert_allclose(m.predict_proba(X)[:, 0], sk.predict_proba(X)[:, 1], atol=1e-12)
    np.testing.assert_array_equal(sk.classes_[m.predict(X)], sk.predict(X))


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_regressor_predicts_the_same_values():
    sk = neural_network.MLPRegressor(
        hidden_layer_sizes=(6, 3), activation="tanh", max_iter=50, random_state=0
    )
    sk.fit(X, X[:, 0] - X[:, 2])
    m = nn.from_sklearn(sk)
    assert m.output == "linear" and m.activation == "tanh"
    np.testing.assert_allclose(m.predict(X)[:, 0], sk.predict(X), rtol=0, atol=1e-12)
